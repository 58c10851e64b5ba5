// MaxSim over int8 tokens (maxsim_i8) with AVX-512 VNNI: register tiles as in tile_templates.h,
// 16 query tokens per register (4 bytes of a token per lane), one document row broadcast 4 bytes
// at a time, vpdpbusd adding 4 products per lane and instruction (64 multiply-adds, 4x float32).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "accumulate_in_place.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// vpdpbusd multiplies unsigned by signed bytes. The query's bytes are flipped to q + 128 (xor
// 0x80, once per call into a copy: flipping in the loop cost 8 % of a batch's time) and each
// accumulator of document row x starts at -128 * (the sum of x's values), which cancels the
// 128s: the accumulators end exactly at <q, x> (int32 arithmetic wraps, so partial sums may pass
// its range: the end result fits). The rows are broadcast straight from memory (a load, no
// arithmetic): flipping them instead would cost one instruction per row and step.
inline std::int32_t row_sum(const std::int8_t* row, std::size_t dim) {
    const __m512i ones = _mm512_set1_epi8(1);
    __m512i sum = _mm512_setzero_si512();
    for (std::size_t k = 0; k < dim; k += 64) {
        const __mmask64 keep = dim - k >= 64 ? ~__mmask64(0) : (__mmask64(1) << (dim - k)) - 1;
        sum = _mm512_dpbusd_epi32(sum, ones, _mm512_maskz_loadu_epi8(keep, row + k));
    }
    return _mm512_reduce_add_epi32(sum);
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
                 const float (&scale)[N], __m512 (&best)[P]) {
    // The accumulators start with the offset terms and the last values (zeros past dim): the
    // loop is then the only code that changes them, and they stay in registers across it.
    const std::size_t quads = dim / 4;
    __m512i acc[P][N], last[P];
    for (int p = 0; p < P; ++p)
        last[p] = dim % 4 ? _mm512_loadu_si512(q + quads * 64 + p * group_bytes) : _mm512_setzero_si512();
    for (int j = 0; j < N; ++j) {
        const __m512i start = _mm512_set1_epi32(-128 * row_sum(row[j], dim));
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
                   const std::int8_t* tokens, const float* scales, std::size_t stride, std::size_t first,
                   std::size_t last, float& total) {
    __m512 best[P];
    for (int p = 0; p < P; ++p) best[p] = _mm512_set1_ps(-INFINITY);
    for (std::size_t r0 = first; r0 < last; r0 += N) {
        const std::int8_t* row[N];
        float scale[N];
        for (int j = 0; j < N; ++j) {
            const std::size_t r = std::min(r0 + std::size_t(j), last - 1);
            row[j] = tokens + r * stride;
            scale[j] = scales[r];
        }
        tile<P, N>(q, group_bytes, dim, row, scale, best);
    }
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
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        float total = 0.0f;
        std::size_t g = 0;
        for (; g + 2 <= n_groups; g += 2)
            groups<2, 8>(flipped + g * group_bytes, query_scales + g * 16, group_bytes, dim, tokens, scales, stride,
                          first, last, total);
        if (g < n_groups)
            groups<1, 12>(flipped + g * group_bytes, query_scales + g * 16, group_bytes, dim, tokens, scales, stride,
                          first, last, total);
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
