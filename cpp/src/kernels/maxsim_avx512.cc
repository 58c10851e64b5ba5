// The MaxSim kernels (maxsim_packed, maxsim_packed_f16) for AVX-512 (F, BW, DQ, VL).
#include "tile_templates.h"
#include "vector_avx512.h"

namespace latefold {
namespace kernels {

float maxsim_packed_avx512(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    // 32-row groups: 2 x 8 = 16 accumulators; 16-row groups: 1 x 12.
    return maxsim_packed<Avx512, 8, 12>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

float maxsim_packed_f16_avx512(const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc,
                             std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    return maxsim_packed_f16<Avx512, 8, 12>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

}  // namespace kernels
}  // namespace latefold
