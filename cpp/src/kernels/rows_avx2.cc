// The row kernels (f16_to_f32, dot_rows_f32, dot_rows_f16, first_non_finite) for AVX2 + FMA + F16C.
#include <immintrin.h>

#include "dot_rows_template.h"
#include "vector_avx2.h"
#include "widen_template.h"

namespace latefold {
namespace kernels {

bool f16_to_f32_avx2(const half_bits* src, float* dst, std::size_t n) {
    bool finite = true;
    widen_rows<Avx2>(src, 0, 1, n, n, dst, true, finite);
    return finite;
}

void dot_rows_f32_avx2(const float* q, const float* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

void dot_rows_f16_avx2(const float* q, const half_bits* base, std::size_t stride,
                       const std::uint32_t* ids, std::size_t count, std::size_t dim, float* out) {
    dot_rows<Avx2>(q, base, stride, ids, count, dim, out);
}

// Lanes [0, n) of 8 (n <= 8): the mask of a masked load.
__m256i first_lanes(std::size_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// A value is NaN or infinite exactly when every exponent bit is set: the largest exponent field
// of a row (unsigned) is then the full mask. Masked-off lanes of the tail load as 0. Rows without
// gaps (stride == dim) are first read as one run, two accumulators wide, without a test per row;
// the row is looked for only when the run holds such a value.
std::size_t first_non_finite_avx2(const float* rows, std::size_t count, std::size_t stride, std::size_t dim) {
    const __m256i exponent = _mm256_set1_epi32(0x7F800000);
    auto exponents = [&](const float* p) { return _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(p)), exponent); };
    if (stride == dim) {
        const std::size_t n = count * dim;
        __m256i a = _mm256_setzero_si256(), b = _mm256_setzero_si256();
        std::size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            a = _mm256_max_epu32(a, exponents(rows + i));
            b = _mm256_max_epu32(b, exponents(rows + i + 8));
        }
        for (; i + 8 <= n; i += 8) a = _mm256_max_epu32(a, exponents(rows + i));
        if (i < n) {
            const __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(rows + i), first_lanes(n - i));
            b = _mm256_max_epu32(b, _mm256_and_si256(v, exponent));
        }
        const __m256i full = _mm256_cmpeq_epi32(_mm256_max_epu32(a, b), exponent);
        if (_mm256_testz_si256(full, full)) return count;
    }
    const std::size_t tail = dim % 8;
    const __m256i tail_lanes = first_lanes(tail);
    for (std::size_t t = 0; t < count; ++t) {
        const float* row = rows + t * stride;
        __m256i worst = _mm256_setzero_si256();
        std::size_t k = 0;
        for (; k + 8 <= dim; k += 8) worst = _mm256_max_epu32(worst, exponents(row + k));
        if (tail) {
            const __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(row + k), tail_lanes);
            worst = _mm256_max_epu32(worst, _mm256_and_si256(v, exponent));
        }
        if (!_mm256_testz_si256(_mm256_cmpeq_epi32(worst, exponent), _mm256_cmpeq_epi32(worst, exponent))) return t;
    }
    return count;
}

}  // namespace kernels
}  // namespace latefold
