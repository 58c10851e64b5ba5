// MaxSim over int8 tokens (maxsim_i8) with AVX-VNNI, the 256-bit VNNI of CPUs without AVX-512
// (Alder Lake and later client cores; Sapphire Rapids has both): the AVX-512 VNNI kernel's
// scheme on 8-lane registers. A group of 16 query tokens is two registers (4 bytes of a token per
// lane); one document row is broadcast 4 bytes at a time; vpdpbusd adds 4 products per lane.
// Exact in int32, so the results are the scalar twin's bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "accumulate_in_place.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// vpdpbusd multiplies unsigned by signed bytes: the query's bytes are flipped to q + 128 and each
// accumulator of row x starts at -128 * (the sum of x's values), as in maxsim_int8_avx512vnni.cc,
// whose terms are also computed once per document for every group of the query.

// Lane j: the sum of the 8 lanes of v[j].
inline __m256i lane_totals(const __m256i (&v)[8]) {
    // Per 128-bit half h: [v0, v1, v2, v3] (then v4 .. v7) summed over lanes 4h .. 4h + 3.
    const __m256i low = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    const __m256i high = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(low, high, 0x20), _mm256_permute2x128_si256(low, high, 0x31));
}

// out[r - first] = -128 * (the sum of the values of row r), rows [first, last), 8 at a time.
inline void offset_terms(const std::int8_t* tokens, std::size_t stride, std::size_t dim, std::size_t first,
                         std::size_t last, std::int32_t* out) {
    const __m256i ones = _mm256_set1_epi8(1);
    for (std::size_t r0 = first; r0 < last; r0 += 8) {
        const std::size_t n = std::min<std::size_t>(8, last - r0);
        const std::int8_t* row[8];  // past the last row: the last again (its lanes not stored)
        for (int j = 0; j < 8; ++j) row[j] = tokens + std::min(r0 + std::size_t(j), last - 1) * stride;
        __m256i sum[8];
        for (int j = 0; j < 8; ++j) sum[j] = _mm256_setzero_si256();
        std::size_t k = 0;
        for (; k + 32 <= dim; k += 32)
            for (int j = 0; j < 8; ++j)
                sum[j] = dpbusd_vex(sum[j], ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[j] + k)));
        if (k < dim)
            for (int j = 0; j < 8; ++j) {
                alignas(32) std::int8_t rest[32] = {};
                std::memcpy(rest, row[j] + k, dim - k);
                sum[j] = dpbusd_vex(sum[j], ones, _mm256_load_si256(reinterpret_cast<const __m256i*>(rest)));
            }
        alignas(32) std::int32_t terms[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(terms),
                           _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(lane_totals(sum), 7)));
        std::memcpy(out + (r0 - first), terms, n * sizeof(std::int32_t));
    }
}

// N document rows (pointers may repeat: a repeated row cannot change a max) against one group.
template <int N>
inline void tile(const std::uint8_t* q, std::size_t dim, const std::int8_t* const (&row)[N], const float (&scale)[N],
                 const std::int32_t (&offset)[N], __m256 (&best)[2]) {
    __m256i acc[2][N];
    for (int j = 0; j < N; ++j) acc[0][j] = acc[1][j] = _mm256_set1_epi32(offset[j]);
    const std::size_t quads = dim / 4;
    const std::uint8_t* qk = q;
    for (std::size_t r = 0; r < quads; ++r, qk += 64) {
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk));
        const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 32));
        for (int j = 0; j < N; ++j) {
            std::int32_t v;
            std::memcpy(&v, row[j] + 4 * r, 4);
            const __m256i x = _mm256_set1_epi32(v);
            acc[0][j] = dpbusd_vex(acc[0][j], q0, x);
            acc[1][j] = dpbusd_vex(acc[1][j], q1, x);
        }
    }
    if (dim % 4) {  // the last values, zeros past dim
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk));
        const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 32));
        for (int j = 0; j < N; ++j) {
            std::int32_t v = 0;
            std::memcpy(&v, row[j] + 4 * quads, dim % 4);
            const __m256i x = _mm256_set1_epi32(v);
            acc[0][j] = dpbusd_vex(acc[0][j], q0, x);
            acc[1][j] = dpbusd_vex(acc[1][j], q1, x);
        }
    }
    for (int j = 0; j < N; ++j) {
        const __m256 s = _mm256_set1_ps(scale[j]);
        for (int h = 0; h < 2; ++h) best[h] = _mm256_max_ps(best[h], _mm256_mul_ps(_mm256_cvtepi32_ps(acc[h][j]), s));
    }
}

}  // namespace

void maxsim_i8_avx2vnni(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                        const std::int8_t* tokens, const float* scales, std::size_t stride,
                        const std::int64_t* offsets, std::size_t count, float* out) {
    constexpr int N = 5;  // 2 x 5 accumulators + 2 query registers + a row: 13 of 16 registers
    const std::size_t group_bytes = lane_rows(dim, 4) * 64, n_groups = padded / lane_group;
    // The query's bytes flipped once per call (in the loop the flips cost 10 % of a step's
    // instructions, and a register).
    thread_local AlignedVector<std::uint8_t> flipped_query;  // grows to the largest query, kept
    flipped_query.resize(n_groups * group_bytes);
    const __m256i flip = _mm256_set1_epi8(char(0x80));
    for (std::size_t v = 0; v < flipped_query.size(); v += 32)
        _mm256_store_si256(reinterpret_cast<__m256i*>(flipped_query.data() + v),
                           _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + v)), flip));
    thread_local std::vector<std::int32_t> row_terms;  // grows to the longest document, kept
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        if (row_terms.size() < last - first) row_terms.resize(last - first);
        offset_terms(tokens, stride, dim, first, last, row_terms.data());
        float total = 0.0f;
        for (std::size_t g = 0; g < n_groups; ++g) {
            __m256 best[2] = {_mm256_set1_ps(-INFINITY), _mm256_set1_ps(-INFINITY)};
            for (std::size_t r0 = first; r0 < last; r0 += N) {
                const std::int8_t* row[N];
                float scale[N];
                std::int32_t offset[N];
                for (int j = 0; j < N; ++j) {
                    const std::size_t r = std::min(r0 + std::size_t(j), last - 1);
                    row[j] = tokens + r * stride;
                    scale[j] = scales[r];
                    offset[j] = row_terms[r - first];
                }
                tile<N>(flipped_query.data() + g * group_bytes, dim, row, scale, offset, best);
            }
            alignas(32) float lane[16];
            const float* qs = query_scales + g * 16;
            _mm256_store_ps(lane, _mm256_mul_ps(best[0], _mm256_loadu_ps(qs)));
            _mm256_store_ps(lane + 8, _mm256_mul_ps(best[1], _mm256_loadu_ps(qs + 8)));
            for (float v : lane) total += v;
        }
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
