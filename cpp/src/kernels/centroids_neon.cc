// The centroid interaction kernel for NEON.
#include "centroid_template.h"
#include "vector_neon.h"

namespace latefold {
namespace kernels {

float centroid_maxsim_neon(const float* table, std::size_t padded, std::size_t m, const std::uint16_t* codes,
                           std::size_t count, std::size_t levels, float* best) {
    return centroid_maxsim<Neon>(table, padded, m, codes, count, levels, best);
}

}  // namespace kernels
}  // namespace latefold
