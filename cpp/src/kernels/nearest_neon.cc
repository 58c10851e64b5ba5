// The nearest-column kernel (nearest_rows) for aarch64 Advanced SIMD.
#include "tile_templates.h"
#include "vector_neon.h"

namespace latefold {
namespace kernels {

void nearest_rows_neon(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, const float* bias,
                        std::size_t width, std::uint32_t* index, float* value) {
    nearest_rows<Neon, 3, 6>(rows, count, row_stride, depth, packed, bias, width, index, value);
}

}  // namespace kernels
}  // namespace latefold
