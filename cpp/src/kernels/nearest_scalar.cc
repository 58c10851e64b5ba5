// The scalar twin of the nearest-column kernel (nearest_rows: k-means assignment, PQ encoding).
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include <cmath>

#include "table.h"

namespace latefold {
namespace kernels {

void nearest_rows_scalar(const float* rows, std::size_t count, std::size_t row_stride,
                         std::size_t depth, const float* packed, const float* bias,
                         std::size_t width, std::uint32_t* index, float* value) {
    for (std::size_t t = 0; t < count; ++t) {
        float best = INFINITY;
        std::uint32_t best_column = 0;
        for (std::size_t start = 0; start < width;) {
            const std::size_t group = start + query_group_rows <= width ? query_group_rows : query_pad_rows;
            const float* m = packed + start * depth;
            for (std::size_t c = 0; c < group; ++c) {
                float dot = 0.0f;
                for (std::size_t k = 0; k < depth; ++k) dot += rows[t * row_stride + k] * m[k * group + c];
                const float d = bias[start + c] - 2.0f * dot;
                if (d < best) best = d, best_column = std::uint32_t(start + c);
            }
            start += group;
        }
        index[t] = best_column;
        value[t] = best;
    }
}

}  // namespace kernels
}  // namespace latefold
