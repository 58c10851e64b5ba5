// The 4-bit fast-scan kernels (fastscan, fastscan_table) for AVX2 + FMA + F16C.
#include <immintrin.h>

#include <algorithm>

#include "fastscan_query_groups.h"
#include "table.h"

namespace latefold {
namespace kernels {

// Fast scan, 32 vectors per block: one shuffle per subspace scores all of them.
namespace {

// NQ queries share each load of codes. The two lookups of a pair add in bytes (entries <= 127);
// then per 16-bit word (vectors 2w and 2w + 1) `words` adds whole words and `highs` the high
// bytes: the even vectors' sums are words - (highs << 8) (mod 2^16), the odd ones' highs.
template <int NQ>
void fastscan_queries_avx2(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                           const std::uint8_t* tables, const std::int32_t* low,
                           const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask,
                           std::size_t out_blocks) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    for (std::size_t b = 0; b < blocks; ++b) {
        __m256i words[NQ], highs[NQ];
        for (int q = 0; q < NQ; ++q) words[q] = highs[q] = _mm256_setzero_si256();
        const std::uint8_t* block = codes + b * pairs * 32;
        for (std::size_t p = 0; p < pairs; ++p) {
            const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + p * 32));
            const __m256i lo = _mm256_and_si256(c, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble);
            const std::size_t at = fastscan_table_offset(2 * p);
            for (int q = 0; q < NQ; ++q) {
                const std::uint8_t* t = tables + q * table_bytes + at;
                const __m256i r_lo = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t))), lo);
                const __m256i r_hi = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 64))), hi);
                const __m256i both = _mm256_add_epi8(r_lo, r_hi);  // entries <= 127: no carry
                words[q] = _mm256_add_epi16(words[q], both);
                highs[q] = _mm256_add_epi16(highs[q], _mm256_srli_epi16(both, 8));
            }
        }
        for (int q = 0; q < NQ; ++q) {
            const __m256i even = _mm256_sub_epi16(words[q], _mm256_slli_epi16(highs[q], 8));
            // Interleave even / odd words back into vector order 0..31.
            const __m256i lo = _mm256_unpacklo_epi16(even, highs[q]), hi = _mm256_unpackhi_epi16(even, highs[q]);
            std::uint16_t* sums = out + (q * out_blocks + b) * 32;
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), _mm256_permute2x128_si256(lo, hi, 0x20));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
            mask[q * out_blocks + b] = fastscan_mask(sums, low[q], high[q]);
        }
    }
}

}  // namespace

void fastscan_avx2(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                   const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                   const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    for_query_groups(nq, [&](std::size_t q, auto group) {
        fastscan_queries_avx2<decltype(group)::value>(codes, blocks, pairs, tables + q * table_bytes, low + q, high + q,
                                                     out + q * blocks * 32, mask + q * blocks, blocks);
    });
}

namespace {

float horizontal_min(__m256 v) {
    __m128 x = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_min_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_min_ss(x, _mm_shuffle_ps(x, x, 1)));
}

float horizontal_max(__m256 v) {
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_max_ss(x, _mm_shuffle_ps(x, x, 1)));
}

}  // namespace

void fastscan_table_avx2(const float* lut, std::size_t m, float qmax, std::uint8_t* table,
                         float* base, float* delta) {
    float range = 0.0f, total = 0.0f, sum = 0.0f;
    for (std::size_t s = 0; s < m; ++s) {
        const __m256 a = _mm256_loadu_ps(lut + s * 16), b = _mm256_loadu_ps(lut + s * 16 + 8);
        const float lo = horizontal_min(_mm256_min_ps(a, b)), span = horizontal_max(_mm256_max_ps(a, b)) - lo;
        range = std::max(range, span);
        total += span;
        sum += lo;
    }
    const float step = fastscan_step(range, total, m, qmax);
    const __m256 scale = _mm256_set1_ps(1.0f / step), top = _mm256_set1_ps(qmax), half = _mm256_set1_ps(0.5f);
    for (std::size_t s = 0; s < m; ++s) {
        const __m256 a = _mm256_loadu_ps(lut + s * 16), b = _mm256_loadu_ps(lut + s * 16 + 8);
        const __m256 lo = _mm256_set1_ps(horizontal_min(_mm256_min_ps(a, b)));
        auto level = [&](__m256 v) {
            return _mm256_cvttps_epi32(_mm256_add_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_sub_ps(v, lo), scale), top), half));
        };
        // 2 x 8 int32 -> 16 int16 (lanes reordered back) -> 16 bytes; every level is <= 255.
        const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(level(a), level(b)), 0xD8);
        const __m128i entries = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
        std::uint8_t* out = table + fastscan_table_offset(s);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), entries);
    }
    *base = sum;
    *delta = step;
}

}  // namespace kernels
}  // namespace latefold
