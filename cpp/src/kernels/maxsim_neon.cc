// The MaxSim kernels (maxsim_packed, maxsim_packed_f16) for aarch64 Advanced SIMD.
#include "tile_templates.h"
#include "vector_neon.h"

namespace latefold {
namespace kernels {

float maxsim_packed_neon(const float* packed, std::size_t padded, std::size_t dim,
                         const float* doc, std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    // 32 registers: 32-row groups 8 x 3 = 24 accumulators; 16-row groups 4 x 6 = 24.
    return maxsim_packed<Neon, 3, 6>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

float maxsim_packed_f16_neon(const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc,
                             std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    return maxsim_packed_f16<Neon, 3, 6>(packed, padded, dim, doc, rows, row_stride, stream, flag);
}

}  // namespace kernels
}  // namespace latefold
