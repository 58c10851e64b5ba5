// The kernel tables, one per compiled path: each is the scalar table with the kernels its path
// implements (the lists below) put in; a kernel a list leaves out stays the scalar twin.
#include "table.h"

namespace latefold {
namespace kernels {

// The function type of each kernel (<name>_kernel), to declare the paths' versions by name.
#define LATEFOLD_KERNEL_TYPE(name, result, parameters) using name##_kernel = result parameters;
LATEFOLD_KERNELS(LATEFOLD_KERNEL_TYPE)
#undef LATEFOLD_KERNEL_TYPE

#define LATEFOLD_DECLARE_KERNEL(name, isa) name##_kernel name##_##isa;
#define LATEFOLD_USE_KERNEL(name, isa) table.name = name##_##isa;

// Scalar: every kernel, plain loops (the oracle of the other paths).
#define LATEFOLD_SCALAR_KERNEL(name, result, parameters) LATEFOLD_DECLARE_KERNEL(name, scalar)
LATEFOLD_KERNELS(LATEFOLD_SCALAR_KERNEL)
#undef LATEFOLD_SCALAR_KERNEL

// Every SIMD path: the PQ kernels with float tables and the fast scan's blocked layout, in plain
// C++ built for the baseline (pq_scan_portable.cc; no path has intrinsics for them yet).
#define LATEFOLD_PORTABLE_KERNELS(X, isa) X(adc_rows, isa) X(adc_scan, isa) X(block_codes, isa)
LATEFOLD_PORTABLE_KERNELS(LATEFOLD_DECLARE_KERNEL, portable)

// AVX2 + FMA + F16C: the other kernels but to_lanes, whose scalar twin (in blocks of 16 tokens)
// it keeps: no AVX2 transposition has been written. int8 and bfloat16 MaxSim widen their values
// (to int16 pairs for vpmaddwd, to float32 for FMA), here and on the AVX-512 path.
#define LATEFOLD_AVX2_KERNELS(X, isa)                                                                 \
    X(maxsim_packed, isa) X(maxsim_packed_f16, isa) X(project_rows, isa) X(signed_sums, isa)          \
    X(project_lanes, isa) X(lane_sums, isa) X(sign_partitions, isa) X(nearest_rows, isa)              \
    X(fastscan, isa)                                                                                  \
    X(fastscan_table, isa) X(f16_to_f32, isa) X(dot_rows_f32, isa) X(dot_rows_f16, isa)              \
    X(first_non_finite, isa) X(centroid_maxsim, isa) X(maxsim_i8, isa) X(maxsim_bf16, isa)
// + AVX-VNNI: int8 MaxSim with 256-bit dot products.
#define LATEFOLD_AVX2VNNI_KERNELS(X, isa) X(maxsim_i8, isa)
// AVX-512 F, BW, DQ, VL: the other kernels.
#define LATEFOLD_AVX512_KERNELS(X, isa) LATEFOLD_AVX2_KERNELS(X, isa) X(to_lanes, isa)
// AVX-512 with VBMI and VNNI: the AVX-512 table with its own fast scan and int8 MaxSim (vpdpbusd).
#define LATEFOLD_AVX512VNNI_KERNELS(X, isa) X(fastscan, isa) X(maxsim_i8, isa)
// + AVX512-BF16: bfloat16 MaxSim and the bfloat16 centroid table (vdpbf16ps).
#define LATEFOLD_AVX512BF16_KERNELS(X, isa) X(maxsim_bf16, isa) X(project_bf16, isa)
// + AMX tiles: int8 and bfloat16 MaxSim and the bfloat16 centroid table on the tile units.
#define LATEFOLD_AMX_KERNELS(X, isa) X(maxsim_i8, isa) X(maxsim_bf16, isa) X(project_bf16, isa)
// NEON: the other kernels but lane_sums and to_lanes (scalar twins: no NEON transposition has
// been written).
#define LATEFOLD_NEON_KERNELS(X, isa)                                                                 \
    X(maxsim_packed, isa) X(maxsim_packed_f16, isa) X(project_rows, isa) X(signed_sums, isa)          \
    X(project_lanes, isa)                                                                             \
    X(sign_partitions, isa) X(nearest_rows, isa) X(fastscan, isa) X(fastscan_table, isa)              \
    X(f16_to_f32, isa) X(dot_rows_f32, isa) X(dot_rows_f16, isa) X(first_non_finite, isa)            \
    X(centroid_maxsim, isa)

#ifdef LATEFOLD_HAVE_AVX2
LATEFOLD_AVX2_KERNELS(LATEFOLD_DECLARE_KERNEL, avx2)
#endif
#ifdef LATEFOLD_HAVE_AVX2VNNI
LATEFOLD_AVX2VNNI_KERNELS(LATEFOLD_DECLARE_KERNEL, avx2vnni)
#endif
#ifdef LATEFOLD_HAVE_AVX512
LATEFOLD_AVX512_KERNELS(LATEFOLD_DECLARE_KERNEL, avx512)
#endif
#ifdef LATEFOLD_HAVE_AVX512VNNI
LATEFOLD_AVX512VNNI_KERNELS(LATEFOLD_DECLARE_KERNEL, avx512vnni)
#endif
#ifdef LATEFOLD_HAVE_AVX512BF16
LATEFOLD_AVX512BF16_KERNELS(LATEFOLD_DECLARE_KERNEL, avx512bf16)
#endif
#ifdef LATEFOLD_HAVE_AMX
LATEFOLD_AMX_KERNELS(LATEFOLD_DECLARE_KERNEL, amx)
#endif
#ifdef LATEFOLD_HAVE_NEON
LATEFOLD_NEON_KERNELS(LATEFOLD_DECLARE_KERNEL, neon)
#endif

namespace {

const KernelTable& scalar_table() {
#define LATEFOLD_SCALAR_ENTRY(name, result, parameters) name##_scalar,
    static const KernelTable table{LATEFOLD_KERNELS(LATEFOLD_SCALAR_ENTRY)};
#undef LATEFOLD_SCALAR_ENTRY
    return table;
}

// The starting point of every SIMD path's table (unused where no SIMD path is compiled).
[[maybe_unused]] KernelTable simd_base_table() {
    KernelTable table = scalar_table();
    LATEFOLD_PORTABLE_KERNELS(LATEFOLD_USE_KERNEL, portable)
    return table;
}

}  // namespace

// A case of kernels_for: the table of path `isa`, `base` with the kernels of `list` put in.
#define LATEFOLD_PATH_TABLE(isa, base, list)                                                          \
    case Isa::isa: {                                                                                  \
        static const KernelTable isa##_table = [] {                                                   \
            KernelTable table = base;                                                                 \
            list(LATEFOLD_USE_KERNEL, isa)                                                            \
            return table;                                                                             \
        }();                                                                                          \
        return isa##_table;                                                                           \
    }

const KernelTable& kernels_for(Isa isa) noexcept {
    switch (isa) {
#ifdef LATEFOLD_HAVE_AVX2
        LATEFOLD_PATH_TABLE(avx2, simd_base_table(), LATEFOLD_AVX2_KERNELS)
#ifdef LATEFOLD_HAVE_AVX2VNNI
        LATEFOLD_PATH_TABLE(avx2vnni, kernels_for(Isa::avx2), LATEFOLD_AVX2VNNI_KERNELS)
#endif
#endif
#ifdef LATEFOLD_HAVE_AVX512
        LATEFOLD_PATH_TABLE(avx512, simd_base_table(), LATEFOLD_AVX512_KERNELS)
#endif
#if defined(LATEFOLD_HAVE_AVX512) && defined(LATEFOLD_HAVE_AVX512VNNI)
        LATEFOLD_PATH_TABLE(avx512vnni, kernels_for(Isa::avx512), LATEFOLD_AVX512VNNI_KERNELS)
#if defined(LATEFOLD_HAVE_AVX512BF16)
        LATEFOLD_PATH_TABLE(avx512bf16, kernels_for(Isa::avx512vnni), LATEFOLD_AVX512BF16_KERNELS)
#if defined(LATEFOLD_HAVE_AMX)
        LATEFOLD_PATH_TABLE(amx, kernels_for(Isa::avx512bf16), LATEFOLD_AMX_KERNELS)
#endif
#endif
#endif
#ifdef LATEFOLD_HAVE_NEON
        LATEFOLD_PATH_TABLE(neon, simd_base_table(), LATEFOLD_NEON_KERNELS)
#endif
        default: return scalar_table();
    }
}

}  // namespace kernels
}  // namespace latefold
