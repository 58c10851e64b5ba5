// MaxSim over int8 tokens (maxsim_i8) for AVX2, on CPUs without AVX-512 VNNI: bytes widened to
// int16 pairs and vpmaddwd, two exact products per int32 lane (quantized_templates.h), so the
// results have the scalar twin's bits; 16 query tokens (two registers) x N document rows a tile.
#include "quantized_templates.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

void maxsim_i8_avx2(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                    const std::int8_t* tokens, const float* scales, std::size_t stride, const std::int64_t* offsets,
                    std::size_t count, float* out) {
    // 16 registers: one group (2 registers) x 4 rows = 8 accumulators (with 6 rows GCC spills:
    // each vpmaddwd needs a register for its products before they are added).
    maxsim_i8_widened<Avx2, 1, 4, 4>(query, query_scales, padded, dim, tokens, scales, stride, offsets, count, out);
}

}  // namespace kernels
}  // namespace latefold
