// The scalar twin of the MaxSim kernel (maxsim_packed): per query token, its inner products
// summed in increasing k, as on every path.
// Plain loops, compiled without auto-vectorisation: the oracle the SIMD paths are tested against.
#include <cmath>
#include <vector>

#include "table.h"

namespace latefold {
namespace kernels {

float maxsim_packed_scalar(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride, bool /*stream*/, bool flag) {
    if (flag)
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t k = 0; k < dim; ++k)
                if (!std::isfinite(doc[r * row_stride + k])) return NAN;
    float total = 0.0f;
    for (std::size_t start = 0; start < padded;) {
        const std::size_t width = start + query_group_rows <= padded ? query_group_rows
                                                                     : query_pad_rows;
        const float* group = packed + start * dim;
        for (std::size_t j = 0; j < width; ++j) {
            float best = -INFINITY;
            for (std::size_t r = 0; r < rows; ++r) {
                const float* x = doc + r * row_stride;
                float dot = 0.0f;
                for (std::size_t k = 0; k < dim; ++k) dot += group[k * width + j] * x[k];
                best = std::fmax(best, dot);
            }
            total += best;
        }
        start += width;
    }
    return total;
}

// The rows widened first (exactly), then the float twin: the bits of maxsim_packed over them.
float maxsim_packed_f16_scalar(const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc,
                               std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    std::vector<float> wide(rows * dim);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t k = 0; k < dim; ++k) wide[r * dim + k] = half_to_float(doc[r * row_stride + k]);
    return maxsim_packed_scalar(packed, padded, dim, wide.data(), rows, dim, stream, flag);
}

}  // namespace kernels
}  // namespace latefold
