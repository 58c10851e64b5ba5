// Private: vpdpbusd for register-tiled loops. The instruction adds into its first operand (it
// has no three-operand form as FMA has), and GCC 12 compiles its intrinsic in such a loop into a
// copy of every accumulator from register to register at each step: a third of the loop's
// instructions (the int8 MaxSim tile ran at ~0.7 of its rate, batches 2.2x float32 instead of
// 2.5x). As the in-out operand of an asm statement the accumulator stays in its register. Other
// compilers get the intrinsics. For files compiled for the instruction's ISA.
#pragma once

#include <immintrin.h>

namespace latefold {
namespace kernels {

#if defined(__GNUC__) && !defined(__clang__)
#define LATEFOLD_ACCUMULATE_ASM 1
#endif

#if defined(__AVX512VNNI__) || defined(_MSC_VER)  // MSVC offers every intrinsic, names no ISA
/// acc + the sums of 4 products of unsigned bytes of `u` and signed bytes of `s`, per 32-bit lane.
[[gnu::always_inline]] inline __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#ifdef LATEFOLD_ACCUMULATE_ASM
    asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, u, s);
#endif
}
#endif

#if defined(__AVXVNNI__) || defined(_MSC_VER)
/// The same on 256-bit registers in the VEX encoding (AVX-VNNI; registers 0-15 only).
[[gnu::always_inline]] inline __m256i dpbusd_vex(__m256i acc, __m256i u, __m256i s) {
#ifdef LATEFOLD_ACCUMULATE_ASM
    asm("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
    return acc;
#else
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#endif
}
#endif

}  // namespace kernels
}  // namespace latefold
