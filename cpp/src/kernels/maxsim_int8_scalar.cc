// The scalar twin of MaxSim over int8 tokens (maxsim_i8): exact int32 inner products, then the
// scale products, maxima and the sum in the order every path uses.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD and tile paths are tested against.
#include <cmath>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_i8_scalar(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                      const std::int8_t* tokens, const float* scales, std::size_t stride,
                      const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t rows = lane_rows(dim, 4);
    for (std::size_t i = 0; i < count; ++i) {
        float total = 0.0f;
        for (std::size_t t = 0; t < padded; ++t) {
            const std::int8_t* lanes = query + (t / lane_group) * rows * 64 + t % lane_group * 4;
            float best = -INFINITY;
            for (std::int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
                const std::int8_t* x = tokens + std::size_t(r) * stride;
                std::int32_t dot = 0;
                for (std::size_t k = 0; k < dim; ++k) dot += std::int32_t(lanes[k / 4 * 64 + k % 4]) * x[k];
                const float v = scales[r] * float(dot);
                best = v > best ? v : best;
            }
            total += query_scales[t] * best;
        }
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
