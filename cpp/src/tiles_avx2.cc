// Tile kernels (MaxSim, token x matrix products) and half-precision conversion for AVX2 + FMA + F16C.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "tile_kernel.h"

namespace latefold {
namespace kernels {
namespace {

struct Avx2 {
    using reg = __m256;
    static constexpr int lanes = 8;
    static reg set1(float v) { return _mm256_set1_ps(v); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
    static void keep_less(reg v, reg c, reg& best, reg& best_c) {
        const __m256 less = _mm256_cmp_ps(v, best, _CMP_LT_OQ);
        best = _mm256_blendv_ps(best, v, less);
        best_c = _mm256_blendv_ps(best_c, c, less);
    }
    static reg zero() { return _mm256_setzero_ps(); }
    static reg lowest() { return _mm256_set1_ps(-INFINITY); }
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_row(const float* p) { return _mm256_loadu_ps(p); }
    static reg load_row(const half_bits* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static void store(float* p, reg a) { _mm256_storeu_ps(p, a); }
    static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
    static float sum(reg a) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
};

}  // namespace

float maxsim_packed_avx2(const float* packed, std::size_t padded, std::size_t dim,
                         const float* doc, std::size_t rows, std::size_t row_stride) {
    // 16 registers: 32-row groups 4 x 3 = 12 accumulators; 16-row groups 2 x 6 = 12.
    return maxsim_packed<Avx2, 3, 6>(packed, padded, dim, doc, rows, row_stride);
}

void project_rows_avx2(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, std::size_t width, float* out,
                        std::size_t out_stride) {
    project_rows<Avx2, 3, 6>(rows, count, row_stride, depth, packed, width, out, out_stride);
}

void signed_sums_avx2(const float* x, std::size_t columns, const std::uint32_t* index,
                       const float* sign, const std::uint32_t* start, std::size_t outputs,
                       float* out) {
    signed_sums<Avx2>(x, columns, index, sign, start, outputs, out);
}

void project_lanes_avx2(const float* x, std::size_t step, std::size_t depth, const float* m,
                   std::size_t columns, float* out) {
    project_lanes<Avx2, 3, 3>(x, step, depth, m, columns, out);
}

void sign_partitions_avx2(const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k,
                     const float* norms, const float* bounds, std::uint32_t* part,
                     std::uint32_t* uncertain) {
    sign_partitions<Avx2>(sketch, lanes, reps, k, norms, bounds, part, uncertain);
}

namespace {

// In-register transpose of an 8 x 8 float tile.
void transpose8(__m256 (&r)[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; ++j) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

}  // namespace

void lane_sums_avx2(const float* v, std::size_t step, std::size_t width, std::size_t reps,
                    std::size_t count, const std::uint32_t* part, std::size_t part_stride, float* out,
                    std::size_t rep_stride, std::size_t out_stride) {
    // Per repetition and group of 8 rows, 8 tokens at a time: one tile, transposed, then one
    // (masked) add per token.
    for (std::size_t q = 0; q < reps; ++q)
        for (std::size_t g = 0; g < width; g += 8) {
            const std::size_t in_group = std::min<std::size_t>(8, width - g);
            const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(in_group)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            const float* rows = v + (q * width + g) * step;
            for (std::size_t t0 = 0; t0 < count; t0 += 8) {
                __m256 r[8];
                for (std::size_t i = 0; i < 8; ++i)
                    r[i] = i < in_group ? _mm256_loadu_ps(rows + i * step + t0) : _mm256_setzero_ps();
                transpose8(r);
                for (std::size_t j = 0; j < 8 && t0 + j < count; ++j) {
                    float* o = out + q * rep_stride + part[q * part_stride + t0 + j] * out_stride + g;
                    _mm256_maskstore_ps(o, keep, _mm256_add_ps(_mm256_maskload_ps(o, keep), r[j]));
                }
            }
        }
}

void nearest_rows_avx2(const float* rows, std::size_t count, std::size_t row_stride,
                        std::size_t depth, const float* packed, const float* bias,
                        std::size_t width, std::uint32_t* index, float* value) {
    nearest_rows<Avx2, 3, 6>(rows, count, row_stride, depth, packed, bias, width, index, value);
}

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
