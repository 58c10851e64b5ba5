// MaxSim over int8 tokens (maxsim_i8) with AVX-512 VNNI: register tiles as in tile_templates.h,
// 16 query tokens per register (4 bytes of a token per lane), one document row broadcast 4 bytes
// at a time, vpdpbusd adding 4 products per lane and instruction (64 multiply-adds, 4x float32).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "accumulate_in_place.h"
#include "layouts.h"
#include "quantized_templates.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// vpdpbusd multiplies unsigned by signed bytes. The query's bytes are flipped to q + 128 (xor
// 0x80, once per call into a copy: flipping in the loop cost 8 % of a batch's time) and each
// accumulator of document row x starts at -128 * (the sum of x's values), which cancels the
// 128s: the accumulators end exactly at <q, x> (int32 arithmetic wraps, so partial sums may pass
// its range: the end result fits). The rows are broadcast straight from memory (a load, no
// arithmetic): flipping them instead would cost one instruction per row and step. The offset
// terms of a document are computed once for all groups of the query, 16 rows at a time (a
// horizontal sum per row, tile and group cost ~5 % of a batch's time).

// Lane j: the sum of the 16 lanes of v[j] (a transposing tree, 128-bit lanes last).
inline __m512i lane_totals(const __m512i (&v)[16]) {
    __m512i a[8], b[4], c[2];
    for (int i = 0; i < 8; ++i)  // lane l of 128 bits: v2i and v2i+1, values 0+2 and 1+3, interleaved
        a[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                                _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; ++i)  // lane l of 128 bits: the sums of lane l of v4i .. v4i+3
        b[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(a[2 * i], a[2 * i + 1]),
                                _mm512_unpackhi_epi64(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 2; ++i)
        c[i] = _mm512_add_epi32(_mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0x88),
                                _mm512_shuffle_i32x4(b[2 * i], b[2 * i + 1], 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88), _mm512_shuffle_i32x4(c[0], c[1], 0xdd));
}

// out[r - first] = -128 * (the sum of the values of row r), rows [first, last), 16 at a time.
inline void offset_terms(const std::int8_t* tokens, std::size_t stride, std::size_t dim, std::size_t first,
                         std::size_t last, std::int32_t* out) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (std::size_t r0 = first; r0 < last; r0 += 16) {
        const std::size_t n = std::min<std::size_t>(16, last - r0);
        const std::int8_t* row[16];  // past the last row: the last again (lanes not stored)
        for (int j = 0; j < 16; ++j) row[j] = tokens + std::min(r0 + std::size_t(j), last - 1) * stride;
        __m512i sum[16];
        for (int j = 0; j < 16; ++j) sum[j] = _mm512_setzero_si512();
        for (std::size_t k = 0; k < dim; k += 64) {
            const __mmask64 keep = dim - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (dim - k)) - 1;
            for (int j = 0; j < 16; ++j) sum[j] = dpbusd(sum[j], ones, _mm512_maskz_loadu_epi8(keep, row[j] + k));
        }
        const __m512i terms = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(lane_totals(sum), 7));
        _mm512_mask_storeu_epi32(out + (r0 - first), __mmask16((1u << n) - 1), terms);
    }
}

// 4 bytes of a row from byte k on (those below dim; zeros past it), in every lane.
inline __m512i row_quad(const std::int8_t* row, std::size_t k, std::size_t bytes) {
    std::int32_t v = 0;
    std::memcpy(&v, row + k, bytes);
    return _mm512_set1_epi32(v);
}

// N document rows (pointers may repeat: a repeated row cannot change a max) against P groups of
// the flipped query `q`.
template <int P, int N>
inline void tile(const std::uint8_t* q, std::size_t group_bytes, std::size_t dim, const std::int8_t* const (&row)[N],
                 const float (&scale)[N], const std::int32_t (&offset)[N], __m512 (&best)[P]) {
    // The accumulators start with the offset terms and the last values (zeros past dim): the
    // loop is then the only code that changes them, and they stay in registers across it.
    const std::size_t quads = dim / 4;
    __m512i acc[P][N], last[P];
    for (int p = 0; p < P; ++p)
        last[p] = dim % 4 ? _mm512_loadu_si512(q + quads * 64 + p * group_bytes) : _mm512_setzero_si512();
    for (int j = 0; j < N; ++j) {
        const __m512i start = _mm512_set1_epi32(offset[j]);
        const __m512i x = row_quad(row[j], 4 * quads, dim % 4);
        for (int p = 0; p < P; ++p) acc[p][j] = dim % 4 ? dpbusd(start, last[p], x) : start;
    }
    const std::uint8_t* qk = q;
    for (std::size_t r = 0; r < quads; ++r, qk += 64) {
        __m512i qv[P];
        for (int p = 0; p < P; ++p) qv[p] = _mm512_loadu_si512(qk + p * group_bytes);
        for (int j = 0; j < N; ++j) {
            std::int32_t v;
            std::memcpy(&v, row[j] + 4 * r, 4);
            const __m512i x = _mm512_set1_epi32(v);
            for (int p = 0; p < P; ++p) acc[p][j] = dpbusd(acc[p][j], qv[p], x);
        }
    }
    for (int j = 0; j < N; ++j) {
        const __m512 s = _mm512_set1_ps(scale[j]);
        for (int p = 0; p < P; ++p) best[p] = _mm512_max_ps(best[p], _mm512_mul_ps(_mm512_cvtepi32_ps(acc[p][j]), s));
    }
}

// P groups of the query against one document (rows [first, last)); adds to `total` in token order.
template <int P, int N>
inline void groups(const std::uint8_t* q, const float* query_scales, std::size_t group_bytes, std::size_t dim,
                   const std::int8_t* tokens, const float* scales, const std::int32_t* terms, std::size_t stride,
                   std::size_t first, std::size_t last, float& total) {
    __m512 best[P];
    for (int p = 0; p < P; ++p) best[p] = _mm512_set1_ps(-INFINITY);
    // Tiles of N rows; the last partial one of N / 2 rows when that is enough.
    const auto tiles = [&](const auto& index) {
        constexpr int M = int(std::extent<std::remove_reference_t<decltype(index)>>::value);
        const std::int8_t* row[M];
        float scale[M];
        std::int32_t offset[M];
        for (int j = 0; j < M; ++j) {
            row[j] = tokens + index[j] * stride;
            scale[j] = scales[index[j]];
            offset[j] = terms[index[j] - first];
        }
        tile<P, M>(q, group_bytes, dim, row, scale, offset, best);
    };
    row_tiles<N>(first, last, tiles, tiles);
    for (int p = 0; p < P; ++p) {
        alignas(64) float lane[16];
        _mm512_store_ps(lane, _mm512_mul_ps(best[p], _mm512_loadu_ps(query_scales + 16 * p)));
        for (float v : lane) total += v;
    }
}

}  // namespace

void maxsim_i8_avx512vnni(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                          const std::int8_t* tokens, const float* scales, std::size_t stride,
                          const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t group_bytes = lane_rows(dim, 4) * 64, n_groups = padded / lane_group;
    thread_local AlignedVector<std::uint8_t> flipped_query;  // grows to the largest query, kept
    flipped_query.resize(n_groups * group_bytes);
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    for (std::size_t v = 0; v < flipped_query.size(); v += 64)
        _mm512_store_si512(flipped_query.data() + v, _mm512_xor_si512(_mm512_loadu_si512(query + v), flip));
    const std::uint8_t* flipped = flipped_query.data();
    thread_local std::vector<std::int32_t> row_terms;  // grows to the longest document, kept
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        if (row_terms.size() < last - first) row_terms.resize(last - first);
        offset_terms(tokens, stride, dim, first, last, row_terms.data());
        float total = 0.0f;
        std::size_t g = 0;
        for (; g + 2 <= n_groups; g += 2)
            groups<2, 8>(flipped + g * group_bytes, query_scales + g * 16, group_bytes, dim, tokens, scales,
                          row_terms.data(), stride, first, last, total);
        if (g < n_groups)
            groups<1, 12>(flipped + g * group_bytes, query_scales + g * 16, group_bytes, dim, tokens, scales,
                          row_terms.data(), stride, first, last, total);
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
