// The kernel tables, one per compiled path.
#include "kernels.h"

namespace latefold {
namespace kernels {

const KernelTable& kernels_for(Isa isa) noexcept {
    static const KernelTable scalar{maxsim_packed_scalar, project_rows_scalar, signed_sums_scalar, project_lanes_scalar, lane_sums_scalar, to_lanes_scalar, sign_partitions_scalar, nearest_rows_scalar, fastscan_scalar, fastscan_table_scalar,
                                       f16_to_f32_scalar, dot_rows_f32_scalar, dot_rows_f16_scalar};
    switch (isa) {
#ifdef LATEFOLD_HAVE_AVX2
        case Isa::avx2: {
            static const KernelTable t{maxsim_packed_avx2, project_rows_avx2, signed_sums_avx2, project_lanes_avx2, lane_sums_avx2, to_lanes_scalar, sign_partitions_avx2, nearest_rows_avx2, fastscan_avx2, fastscan_table_avx2,
                                       f16_to_f32_avx2, dot_rows_f32_avx2, dot_rows_f16_avx2};
            return t;
        }
#endif
#ifdef LATEFOLD_HAVE_AVX512
        case Isa::avx512: {
            static const KernelTable t{maxsim_packed_avx512, project_rows_avx512, signed_sums_avx512, project_lanes_avx512, lane_sums_avx512, to_lanes_avx512, sign_partitions_avx512, nearest_rows_avx512, fastscan_avx512, fastscan_table_avx512,
                                       f16_to_f32_avx512, dot_rows_f32_avx512, dot_rows_f16_avx512};
            return t;
        }
#endif
#if defined(LATEFOLD_HAVE_AVX512) && defined(LATEFOLD_HAVE_AVX512VNNI)
        case Isa::avx512vnni: {
            static const KernelTable t{maxsim_packed_avx512, project_rows_avx512, signed_sums_avx512, project_lanes_avx512, lane_sums_avx512, to_lanes_avx512, sign_partitions_avx512, nearest_rows_avx512, fastscan_avx512vnni, fastscan_table_avx512,
                                       f16_to_f32_avx512, dot_rows_f32_avx512, dot_rows_f16_avx512};
            return t;
        }
#endif
#ifdef LATEFOLD_HAVE_NEON
        case Isa::neon: {
            static const KernelTable t{maxsim_packed_neon, project_rows_neon, signed_sums_neon, project_lanes_neon, lane_sums_scalar, to_lanes_scalar, sign_partitions_neon, nearest_rows_neon, fastscan_neon, fastscan_table_neon,
                                       f16_to_f32_neon, dot_rows_f32_neon, dot_rows_f16_neon};
            return t;
        }
#endif
        default: return scalar;
    }
}

}  // namespace kernels
}  // namespace latefold
