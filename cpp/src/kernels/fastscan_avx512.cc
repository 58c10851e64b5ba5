// The 4-bit fast-scan kernels (fastscan, fastscan_table) for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include <algorithm>

#include "fastscan_finish_avx512.h"
#include "fastscan_query_groups.h"
#include "table.h"

namespace latefold {
namespace kernels {

// Fast scan, 32 vectors per block, two subspace pairs per 512-bit register.
namespace {

// As the AVX2 kernel (NQ queries per load of codes, `words` / `highs` accumulators), with two
// pairs per 512-bit register, its 128-bit lanes ordered (pair p, vectors 0-15), (p + 1, 0-15),
// (p, 16-31), (p + 1, 16-31) to meet the tables [T(2p) T(2p+2)] broadcast from one 32-byte load.
template <int NQ>
void fastscan_queries_avx512(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                             const std::uint8_t* tables, const std::int32_t* low,
                             const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask,
                             std::size_t out_blocks) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    const __m512i nibble = _mm512_set1_epi8(0x0F);
    for (std::size_t b = 0; b < blocks; ++b) {
        __m512i words[NQ], highs[NQ];
        for (int q = 0; q < NQ; ++q) words[q] = highs[q] = _mm512_setzero_si512();
        const std::uint8_t* block = codes + b * pairs * 32;
        for (std::size_t p = 0; p < pairs; p += 2) {  // pairs is even
            const __m512i stored = _mm512_loadu_si512(block + p * 32);
            const __m512i c = _mm512_shuffle_i64x2(stored, stored, _MM_SHUFFLE(3, 1, 2, 0));
            const __m512i lo = _mm512_and_si512(c, nibble), hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), nibble);
            const std::size_t at = fastscan_table_offset(2 * p);
            for (int q = 0; q < NQ; ++q) {
                const std::uint8_t* t = tables + q * table_bytes + at;
                const __m512i r_lo = _mm512_shuffle_epi8(_mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t))), lo);
                const __m512i r_hi = _mm512_shuffle_epi8(_mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 64))), hi);
                const __m512i both = _mm512_add_epi8(r_lo, r_hi);  // entries <= 127: no carry
                words[q] = _mm512_add_epi16(words[q], both);
                highs[q] = _mm512_add_epi16(highs[q], _mm512_srli_epi16(both, 8));
            }
        }
        for (int q = 0; q < NQ; ++q) {
            // Lanes back to (p, 0-15), (p, 16-31), (p + 1, 0-15), (p + 1, 16-31); the halves add.
            const __m512i words_q = _mm512_shuffle_i64x2(words[q], words[q], _MM_SHUFFLE(3, 1, 2, 0));
            const __m512i highs_q = _mm512_shuffle_i64x2(highs[q], highs[q], _MM_SHUFFLE(3, 1, 2, 0));
            const __m512i even512 = _mm512_sub_epi16(words_q, _mm512_slli_epi16(highs_q, 8));
            const __m256i e = _mm256_add_epi16(_mm512_castsi512_si256(even512), _mm512_extracti64x4_epi64(even512, 1));
            const __m256i o = _mm256_add_epi16(_mm512_castsi512_si256(highs_q), _mm512_extracti64x4_epi64(highs_q, 1));
            // Interleave even / odd words back into vector order 0..31.
            const __m256i lo = _mm256_unpacklo_epi16(e, o), hi = _mm256_unpackhi_epi16(e, o);
            const __m256i first = _mm256_permute2x128_si256(lo, hi, 0x20), second = _mm256_permute2x128_si256(lo, hi, 0x31);
            mask[q * out_blocks + b] = finish_fastscan_block(out + (q * out_blocks + b) * 32, first, second, low[q], high[q]);
        }
    }
}

}  // namespace

void fastscan_avx512(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                     const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                     const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask) {
    const std::size_t table_bytes = fastscan_table_bytes(pairs);
    for_query_groups(nq, [&](std::size_t q, auto group) {
        fastscan_queries_avx512<decltype(group)::value>(codes, blocks, pairs, tables + q * table_bytes, low + q, high + q,
                                                     out + q * blocks * 32, mask + q * blocks, blocks);
    });
}

namespace {

// Per-subspace statistics of 16 subspaces at once, subspace i in lane i: a reduction tree over
// their 16 rows of 16 entries (7 shuffles per statistic and 2 subspaces, where a reduction per
// row takes 4 per subspace). The tree leaves row 4j + k in lane 4k + j, so row 4k + j is read
// into slot 4j + k.
inline std::size_t tree_row(int slot) { return std::size_t(slot % 4 * 4 + slot / 4); }

template <class Op>
__m512 reduce_tree(__m512* level, Op op) {  // 8 registers in, each two slots' halves combined
    __m512 two[4], four[2];
    for (int j = 0; j < 4; ++j)
        two[j] = op(_mm512_shuffle_f32x4(level[2 * j], level[2 * j + 1], 0x88),
                    _mm512_shuffle_f32x4(level[2 * j], level[2 * j + 1], 0xDD));
    for (int j = 0; j < 2; ++j)
        four[j] = op(_mm512_shuffle_ps(two[2 * j], two[2 * j + 1], 0x44), _mm512_shuffle_ps(two[2 * j], two[2 * j + 1], 0xEE));
    return op(_mm512_shuffle_ps(four[0], four[1], 0x88), _mm512_shuffle_ps(four[0], four[1], 0xDD));
}

const auto min_op = [](__m512 a, __m512 b) { return _mm512_min_ps(a, b); };
const auto max_op = [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); };

// Minima (and maxima when asked) of the 16 subspaces whose tables start at `lut`.
template <bool WithMax>
void chunk_min_max(const float* lut, __m512& mins, __m512& maxs) {
    __m512 low[8], high[8];
    for (int i = 0; i < 8; ++i) {
        const __m512 a = _mm512_loadu_ps(lut + tree_row(2 * i) * 16), b = _mm512_loadu_ps(lut + tree_row(2 * i + 1) * 16);
        const __m512 x = _mm512_shuffle_f32x4(a, b, 0x44), y = _mm512_shuffle_f32x4(a, b, 0xEE);
        low[i] = _mm512_min_ps(x, y);
        if (WithMax) high[i] = _mm512_max_ps(x, y);
    }
    mins = reduce_tree(low, min_op);
    if (WithMax) maxs = reduce_tree(high, max_op);
}

}  // namespace

void fastscan_table_avx512(const float* lut, std::size_t m, float qmax, std::uint8_t* table,
                           float* base, float* delta) {
    // Chunks of 16 subspaces through the trees, the rest one subspace at a time; the sums run
    // in subspace order (the scalar twin's rounding).
    const std::size_t chunked = m / 16 * 16;
    float range = 0.0f, total = 0.0f, sum = 0.0f;
    __m512 widest = _mm512_setzero_ps();
    alignas(64) float lows[16], spans[16];
    for (std::size_t s = 0; s < chunked; s += 16) {
        __m512 mins, maxs;
        chunk_min_max<true>(lut + s * 16, mins, maxs);
        const __m512 span = _mm512_sub_ps(maxs, mins);
        widest = _mm512_max_ps(widest, span);
        _mm512_store_ps(lows, mins);
        _mm512_store_ps(spans, span);
        for (int i = 0; i < 16; ++i) total += spans[i], sum += lows[i];
    }
    range = _mm512_reduce_max_ps(widest);
    for (std::size_t s = chunked; s < m; ++s) {
        const __m512 v = _mm512_loadu_ps(lut + s * 16);
        const float lo = _mm512_reduce_min_ps(v), span = _mm512_reduce_max_ps(v) - lo;
        range = std::max(range, span);
        total += span;
        sum += lo;
    }
    const float step = fastscan_step(range, total, m, qmax);
    const __m512 scale = _mm512_set1_ps(1.0f / step), top = _mm512_set1_ps(qmax), half = _mm512_set1_ps(0.5f);
    auto level = [&](const float* entries, __m512 lo) {
        return _mm512_cvttps_epi32(_mm512_add_ps(_mm512_min_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(entries), lo), scale), top), half));
    };
    // A chunk is two groups; each group's four low-nibble (then high-nibble) tables are 64
    // contiguous bytes: four subspaces' levels packed to bytes (lane L holding entries 4L-4L+3
    // of each), then the dwords put in table order.
    const __m512i table_order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (std::size_t s = 0; s < chunked; s += 16) {
        __m512 mins, unused;
        chunk_min_max<false>(lut + s * 16, mins, unused);
        _mm512_store_ps(lows, mins);
        for (std::size_t first = 0; first < 16; first += 8)
            for (std::size_t parity = 0; parity < 2; ++parity) {
                __m512i q[4];
                for (std::size_t j = 0; j < 4; ++j) {
                    const std::size_t i = first + parity + 2 * j;
                    q[j] = level(lut + (s + i) * 16, _mm512_set1_ps(lows[i]));
                }
                const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(q[0], q[1]), _mm512_packus_epi32(q[2], q[3]));
                _mm512_storeu_si512(table + fastscan_table_offset(s + first + parity),
                                    _mm512_permutexvar_epi32(table_order, bytes));
            }
    }
    for (std::size_t s = chunked; s < m; ++s) {
        const __m512 v = _mm512_loadu_ps(lut + s * 16);
        const __m128i entries = _mm512_cvtepi32_epi8(level(lut + s * 16, _mm512_set1_ps(_mm512_reduce_min_ps(v))));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(table + fastscan_table_offset(s)), entries);
    }
    *base = sum;
    *delta = step;
}

}  // namespace kernels
}  // namespace latefold
