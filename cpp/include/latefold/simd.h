// Run-time selection of SIMD kernels.
//
// Each kernel exists once per instruction set, in a translation unit compiled with that set's
// flags (cpp/src/kernels/<family>_<isa>.cc); the library itself is built for the baseline ISA.
// The CPU is inspected once; the best path it supports is chosen unless LATEFOLD_SIMD names a
// lower one. Paths, best last:
//   scalar : plain C++, auto-vectorisation off: the oracle every other path is tested against
//   avx2   : x86-64 AVX2 + FMA + F16C
//   avx2vnni : avx2 + AVX-VNNI (the 256-bit VNNI of Alder Lake and later): int8 MaxSim
//   avx512 : x86-64 AVX-512 F, BW, DQ, VL
//   avx512vnni : avx512 + VBMI + VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later): the 4-bit
//                fast scan with byte permutations and dot products, MaxSim over int8 tokens, the
//                other kernels avx512's
//   avx512bf16 : avx512vnni + AVX512-BF16 (Cooper Lake's instructions; Sapphire Rapids, Zen 4):
//                MaxSim over bfloat16 tokens
//   amx    : avx512bf16 + AMX-TILE, AMX-INT8, AMX-BF16 (Sapphire Rapids and later), where the
//            operating system grants the tile state (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM)):
//            MaxSim over int8 and bfloat16 tokens on the tile units
//   neon   : aarch64 Advanced SIMD (with its half-precision conversions)
#pragma once

#include <string>
#include <vector>

namespace latefold {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3, avx512vnni = 4, avx512bf16 = 5, amx = 6, avx2vnni = 7 };

const char* isa_name(Isa isa) noexcept;

/// Paths compiled into this build.
std::vector<Isa> compiled_isas();
/// Paths compiled in and supported by this CPU (and its operating system).
std::vector<Isa> supported_isas();
/// The path that kernels use now.
Isa active_isa() noexcept;
/// Makes `name` the active path ("scalar", "avx2", ...; "best" picks the best supported one).
/// Throws std::invalid_argument when the path is unknown or this CPU cannot run it.
void set_active_isa(const std::string& name);
/// A short description of the CPU (vendor/model string where the platform gives one).
std::string cpu_description();

}  // namespace latefold
