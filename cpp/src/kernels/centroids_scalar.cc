// The centroid interaction kernel, scalar: the oracle of the SIMD paths.
#include <cmath>

#include "table.h"

namespace latefold {
namespace kernels {

float centroid_maxsim_scalar(const float* table, std::size_t padded, std::size_t m, const std::uint16_t* codes,
                             std::size_t count, std::size_t levels, float* best) {
    for (std::size_t j = 0; j < padded; ++j) {
        float b = -INFINITY;
        for (std::size_t t = 0; t < count; ++t) {
            float r = table[std::size_t(codes[t * levels]) * padded + j];
            for (std::size_t l = 1; l < levels; ++l) r += table[std::size_t(codes[t * levels + l]) * padded + j];
            b = std::fmax(b, r);
        }
        best[j] = b;
    }
    float sum = 0.0f;
    for (std::size_t j = 0; j < m; ++j) sum += best[j];
    return sum;
}

}  // namespace kernels
}  // namespace latefold
