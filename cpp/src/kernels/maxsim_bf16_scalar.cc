// The scalar twin of MaxSim over bfloat16 tokens (maxsim_bf16): products of bfloat16 values are
// exact in float32; each token pair is added in turn, as the BF16 dot-product instructions do.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD and tile paths are tested against.
#include <cmath>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_bf16_scalar(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                        std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t rows = lane_rows(dim, 2);
    for (std::size_t i = 0; i < count; ++i) {
        float total = 0.0f;
        for (std::size_t t = 0; t < padded; ++t) {
            const std::uint16_t* lanes = query + (t / lane_group) * rows * 32 + t % lane_group * 2;
            float best = -INFINITY;
            for (std::int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
                const std::uint16_t* x = tokens + std::size_t(r) * stride;
                float dot = 0.0f;
                for (std::size_t k = 0; k < dim; ++k)
                    dot += bfloat16_to_float(lanes[k / 2 * 32 + k % 2]) * bfloat16_to_float(x[k]);
                best = dot > best ? dot : best;
            }
            total += best;
        }
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
