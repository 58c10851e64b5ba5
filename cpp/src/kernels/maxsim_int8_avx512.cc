// MaxSim over int8 tokens (maxsim_i8) for AVX-512 (F, BW), on CPUs without VNNI: bytes widened to
// int16 pairs and vpmaddwd, two exact products per int32 lane (quantized_templates.h), so the
// results have the scalar twin's bits; 16 query tokens a register, as in the VNNI kernel.
#include "quantized_templates.h"
#include "vector_avx512.h"

namespace latefold {
namespace kernels {

void maxsim_i8_avx512(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                      const std::int8_t* tokens, const float* scales, std::size_t stride, const std::int64_t* offsets,
                      std::size_t count, float* out) {
    // 32 registers: two groups x 8 rows = 16 accumulators; one group x 12 rows (12 rows with two
    // groups spill: each vpmaddwd needs a register for its products before they are added).
    maxsim_i8_widened<Avx512, 2, 8, 12>(query, query_scales, padded, dim, tokens, scales, stride, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
