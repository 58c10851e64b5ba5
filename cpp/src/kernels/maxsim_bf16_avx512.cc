// MaxSim over bfloat16 tokens (maxsim_bf16) for AVX-512 (F, BW), on CPUs without AVX512-BF16:
// values widened to float32 (exact) and FMA tiles (quantized_templates.h), each product added in
// turn in increasing depth as the scalar twin does; 16 query tokens a register.
#include "quantized_templates.h"
#include "vector_avx512.h"

namespace latefold {
namespace kernels {

void maxsim_bf16_avx512(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                        std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    // 32 registers: two groups x 12 rows = 24 accumulators; one group x 16 rows.
    maxsim_bf16_widened<Avx512, 2, 12, 16>(query, padded, dim, tokens, stride, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
