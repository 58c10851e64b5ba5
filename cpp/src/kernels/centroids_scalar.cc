// The centroid kernels, scalar: the oracles of the SIMD paths.
#include <algorithm>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

std::int64_t centroid_maxsim_scalar(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                    std::size_t count, std::size_t levels) {
    std::int64_t sum = 0;
    for (std::size_t j = 0; j < padded; ++j) {
        int best = -32768;
        for (std::size_t t = 0; t < count; ++t) {
            int r = 0;
            for (std::size_t l = 0; l < levels; ++l) r += table[std::size_t(codes[t * levels + l]) * padded + j];
            best = std::max(best, r);
        }
        sum += best;
    }
    return sum;
}

void project_bf16_scalar(const std::uint16_t* rows, std::size_t count, std::size_t stride, std::size_t dim,
                         const std::uint16_t* query, std::size_t padded, float* out, std::size_t out_stride) {
    const std::size_t lanes = lane_rows(dim, 2);
    for (std::size_t r = 0; r < count; ++r)
        for (std::size_t j = 0; j < padded; ++j) {
            const std::uint16_t* q = query + (j / lane_group * lanes * lane_group + j % lane_group) * 2;
            float sum = 0.0f;
            for (std::size_t k = 0; k < dim; ++k)
                sum += bfloat16_to_float(rows[r * stride + k]) * bfloat16_to_float(q[k / 2 * lane_group * 2 + k % 2]);
            out[r * out_stride + j] = sum;
        }
}

}  // namespace kernels
}  // namespace latefold
