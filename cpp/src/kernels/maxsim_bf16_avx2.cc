// MaxSim over bfloat16 tokens (maxsim_bf16) for AVX2 + FMA, on CPUs without AVX512-BF16: values
// widened to float32 (exact) and FMA tiles (quantized_templates.h), each product added in turn in
// increasing depth as the scalar twin does; 16 query tokens (two registers) x N rows a tile.
#include "quantized_templates.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

void maxsim_bf16_avx2(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                      std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    // 16 registers: one group (2 registers) x 6 rows = 12 accumulators, as the float32 kernel.
    maxsim_bf16_widened<Avx2, 1, 6, 6>(query, padded, dim, tokens, stride, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
