// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "fastscan_block_avx512.h"
#include "tile_kernel.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx512 {
    using reg = __m512;
    static constexpr int lanes = 16;
    static reg set1(float v) { return _mm512_set1_ps(v); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
    static void keep_less(reg v, reg c, reg& best, reg& best_c) {
        const __mmask16 less = _mm512_cmp_ps_mask(v, best, _CMP_LT_OQ);
        best = _mm512_mask_mov_ps(best, less, v);
        best_c = _mm512_mask_mov_ps(best_c, less, c);
    }
    static reg zero() { return _mm512_setzero_ps(); }
    static reg lowest() { return _mm512_set1_ps(-INFINITY); }
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static reg load_row(const float* p) { return _mm512_loadu_ps(p); }
    static reg load_row(const half_bits* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static void store(float* p, reg a) { _mm512_storeu_ps(p, a); }
    static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
    static float sum(reg a) { return _mm512_reduce_add_ps(a); }
};

}  // namespace

float maxsim_packed_avx512(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride) {
    // 32-row groups: 2 x 8 = 16 accumulators; 16-row groups: 1 x 12.
    return maxsim_packed<Avx512, 8, 12>(packed, padded, dim, doc, rows, row_stride);
}

void project_rows_avx512(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Avx512, 8, 12>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_avx512(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Avx512>(x, columns, index, sign, start, outputs, out);
}

void project_lanes_avx512(const float* x, std::size_t step, std::size_t depth, const float* m,
                   std::size_t columns, float* out) {
    project_lanes<Avx512, 4, 4>(x, step, depth, m, columns, out);
}

void sign_partitions_avx512(const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k,
                     const float* norms, const float* bounds, std::uint32_t* part,
                     std::uint32_t* uncertain) {
    sign_partitions<Avx512>(sketch, lanes, reps, k, norms, bounds, part, uncertain);
}

namespace {

// In-register transpose of a 16 x 16 float tile: r[i] lane j <-> r[j] lane i.
inline void transpose16(__m512 (&r)[16]) {
    __m512 t[16], u[16], v[16];
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) {
            v[8 * i + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0x88);
            v[8 * i + 4 + j] = _mm512_shuffle_f32x4(u[8 * i + j], u[8 * i + 4 + j], 0xDD);
        }
    for (int j = 0; j < 8; ++j) {
        r[j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(v[j], v[8 + j], 0xDD);
    }
}

}  // namespace

void lane_sums_avx512(const float* v, std::size_t step, std::size_t width, std::size_t reps,
                      std::size_t count, const std::uint32_t* part, std::size_t part_stride, float* out,
                      std::size_t rep_stride, std::size_t out_stride) {
    // 16 tokens at a time: one tile of all reps * width rows, transposed; then per token and
    // repetition, its lanes moved down to lane 0 and one add. Widths 16 and 8 read and write
    // with plain (unmasked) moves: a masked store does not forward to the next token's load of
    // the same partition, which then waits for the store to reach the cache.
    const std::size_t rows = reps * width;
    const __mmask16 keep = __mmask16((1u << width) - 1u);
    __m512i shift[16];
    for (std::size_t q = 0; q < reps; ++q)
        shift[q] = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                    _mm512_set1_epi32(int(q * width)));
    auto add = [&](float* o, __m512 x) __attribute__((always_inline)) {
        if (width == 16) {
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), x));
        } else if (width == 8) {
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm512_castps512_ps256(x)));
        } else {
            _mm512_mask_storeu_ps(o, keep, _mm512_add_ps(_mm512_maskz_loadu_ps(keep, o), x));
        }
    };
    for (std::size_t t0 = 0; t0 < count; t0 += 16) {
        __m512 r[16];
        for (std::size_t i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_loadu_ps(v + i * step + t0) : _mm512_setzero_ps();
        transpose16(r);
        const std::size_t tokens = std::min<std::size_t>(16, count - t0);
        for (std::size_t j = 0; j < tokens; ++j) add(out + part[t0 + j] * out_stride, r[j]);
        for (std::size_t q = 1; q < reps; ++q)
            for (std::size_t j = 0; j < tokens; ++j)
                add(out + q * rep_stride + part[q * part_stride + t0 + j] * out_stride,
                    _mm512_permutexvar_ps(shift[q], r[j]));
    }
}

void to_lanes_avx512(const float* rows, std::size_t count, std::size_t stride, std::size_t dim,
                     float* out, std::size_t step, float* squares) {
    // 16 tokens x 16 coordinates at a time, transposed in registers (tails masked).
    for (std::size_t t0 = 0; t0 < step; t0 += 16) {
        __m512 sum = _mm512_setzero_ps();
        for (std::size_t i0 = 0; i0 < dim; i0 += 16) {
            const std::size_t width = std::min<std::size_t>(16, dim - i0);
            const __mmask16 cols = __mmask16((1u << width) - 1u);
            __m512 r[16];
            for (std::size_t t = 0; t < 16; ++t)
                r[t] = t0 + t < count ? _mm512_maskz_loadu_ps(cols, rows + (t0 + t) * stride + i0) : _mm512_setzero_ps();
            // The same line of the next 16 rows (read in this order, they escape the streamer).
            for (std::size_t t = t0 + 16; t < std::min(count, t0 + 32); ++t) prefetch_lines(rows + t * stride + i0, 64);
            transpose16(r);
            for (std::size_t i = 0; i < width; ++i) {
                _mm512_storeu_ps(out + (i0 + i) * step + t0, r[i]);
                sum = _mm512_fmadd_ps(r[i], r[i], sum);
            }
        }
        _mm512_storeu_ps(squares + t0, sum);
    }
}

void nearest_rows_avx512(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, const float* bias,
                        std::size_t width, std::uint32_t* index, float* value) {
    nearest_rows<Avx512, 8, 12>(rows, count, row_stride, depth, packed, bias, width, index, value);
}

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
