// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16) for AVX2 + FMA + F16C.
#include <immintrin.h>

#include "dot_rows_template.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

void f16_to_f32_avx2(const half_bits* src, float* dst, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i,
                         _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    if (i < n) {
        half_bits tail[8] = {};
        float out[8];
        for (std::size_t j = i; j < n; ++j) tail[j - i] = src[j];
        _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tail))));
        for (std::size_t j = i; j < n; ++j) dst[j] = out[j - i];
    }
}

void dot_rows_f32_avx2(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx2(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

}  // namespace kernels
}  // namespace latefold
