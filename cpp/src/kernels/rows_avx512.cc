// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16) for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include "dot_rows_template.h"
#include "vector_avx512.h"

namespace latefold {
namespace kernels {

void f16_to_f32_avx512(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(
                                      reinterpret_cast<const __m256i*>(src + i))));
    if (i < n) {
        const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + i)));
    }
}

void dot_rows_f32_avx512(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx512(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

}  // namespace kernels
}  // namespace latefold
