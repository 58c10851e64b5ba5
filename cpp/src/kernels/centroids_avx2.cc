// The centroid interaction kernel for AVX2 + FMA + F16C.
#include "centroid_template.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

float centroid_maxsim_avx2(const float* table, std::size_t padded, std::size_t m, const std::uint16_t* codes,
                           std::size_t count, std::size_t levels, float* best) {
    return centroid_maxsim<Avx2>(table, padded, m, codes, count, levels, best);
}

}  // namespace kernels
}  // namespace latefold
