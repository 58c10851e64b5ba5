// The MaxSim kernels (maxsim_packed, maxsim_packed_f16) for AVX2 + FMA + F16C.
#include "tile_templates.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

float maxsim_packed_avx2(const float* packed, std::size_t padded, std::size_t dim,
                         const float* doc, std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    // 16 registers: 32-row groups 4 x 3 = 12 accumulators; 16-row groups 2 x 6 = 12.
    return maxsim_packed<Avx2, 3, 6>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

float maxsim_packed_f16_avx2(const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc,
                             std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    return maxsim_packed_f16<Avx2, 3, 6>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

}  // namespace kernels
}  // namespace latefold
