// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16, first_non_finite) for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include "dot_rows_template.h"
#include "vector_avx512.h"
#include "widen_template.h"

namespace latefold {
namespace kernels {

bool f16_to_f32_avx512(const half_bits* src, float* dst, std::size_t n) {
    bool finite = true;
    widen_rows<Avx512>(src, 0, 1, n, n, dst, true, finite);
    return finite;
}

void dot_rows_f32_avx512(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx512(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx512>(q, base, stride, ids, count, dim, out);
}

// A value is NaN or infinite exactly when every exponent bit is set: the largest exponent field
// of a row (unsigned) is then the full mask. Masked-off lanes of the tail load as 0. Rows without
// gaps (stride == dim) are first read as one run, two accumulators wide, without a test per row;
// the row is looked for only when the run holds such a value.
std::size_t first_non_finite_avx512(const float* rows, std::size_t count, std::size_t stride, std::size_t dim) {
    const __m512i exponent = _mm512_set1_epi32(0x7F800000);
    if (stride == dim) {
        const std::size_t n = count * dim;
        __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
        std::size_t i = 0;
        for (; i + 32 <= n; i += 32) {
            a = _mm512_max_epu32(a, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(rows + i)), exponent));
            b = _mm512_max_epu32(b, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(rows + i + 16)), exponent));
        }
        for (; i < n; i += 16) {
            const __mmask16 lanes = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1u);
            a = _mm512_max_epu32(a, _mm512_and_si512(_mm512_maskz_loadu_epi32(lanes, rows + i), exponent));
        }
        if (!_mm512_cmpeq_epi32_mask(_mm512_max_epu32(a, b), exponent)) return count;
    }
    const std::size_t tail = dim % 16;
    const __mmask16 tail_lanes = static_cast<__mmask16>((1u << tail) - 1u);
    for (std::size_t t = 0; t < count; ++t) {
        const float* row = rows + t * stride;
        __m512i worst = _mm512_setzero_si512();
        std::size_t k = 0;
        for (; k + 16 <= dim; k += 16)
            worst = _mm512_max_epu32(worst, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(row + k)), exponent));
        if (tail)
            worst = _mm512_max_epu32(worst, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail_lanes, row + k), exponent));
        if (_mm512_cmpeq_epi32_mask(worst, exponent)) return t;
    }
    return count;
}

}  // namespace kernels
}  // namespace latefold
