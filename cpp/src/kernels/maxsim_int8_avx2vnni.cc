// MaxSim over int8 tokens (maxsim_i8) with AVX-VNNI, the 256-bit VNNI of CPUs without AVX-512
// (Alder Lake and later client cores; Sapphire Rapids has both): the AVX-512 VNNI kernel's
// scheme on 8-lane registers. A group of 16 query tokens is two registers (4 bytes of a token per
// lane); one document row is broadcast 4 bytes at a time; vpdpbusd adds 4 products per lane.
// Exact in int32, so the results are the scalar twin's bits.
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

// vpdpbusd multiplies unsigned by signed bytes: the query's bytes are flipped to q + 128 and each
// accumulator of row x starts at -128 * (the sum of x's values), as in maxsim_int8_avx512vnni.cc.
inline std::int32_t row_sum(const std::int8_t* row, std::size_t dim) {
    const __m256i ones = _mm256_set1_epi8(1);
    __m256i sum = _mm256_setzero_si256();
    std::size_t k = 0;
    for (; k + 32 <= dim; k += 32)
        sum = _mm256_dpbusd_avx_epi32(sum, ones, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k)));
    if (k < dim) {
        alignas(32) std::int8_t rest[32] = {};
        std::memcpy(rest, row + k, dim - k);
        sum = _mm256_dpbusd_avx_epi32(sum, ones, _mm256_load_si256(reinterpret_cast<const __m256i*>(rest)));
    }
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

// N document rows (pointers may repeat: a repeated row cannot change a max) against one group.
template <int N>
inline void tile(const std::int8_t* q, std::size_t dim, const std::int8_t* const (&row)[N], const float (&scale)[N],
                 __m256 (&best)[2]) {
    __m256i acc[2][N];
    for (int j = 0; j < N; ++j) acc[0][j] = acc[1][j] = _mm256_set1_epi32(-128 * row_sum(row[j], dim));
    const __m256i flip = _mm256_set1_epi8(char(0x80));
    const std::size_t quads = dim / 4;
    const std::int8_t* qk = q;
    for (std::size_t r = 0; r < quads; ++r, qk += 64) {
        const __m256i q0 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk)), flip);
        const __m256i q1 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 32)), flip);
        for (int j = 0; j < N; ++j) {
            std::int32_t v;
            std::memcpy(&v, row[j] + 4 * r, 4);
            const __m256i x = _mm256_set1_epi32(v);
            acc[0][j] = dpbusd_vex(acc[0][j], q0, x);
            acc[1][j] = dpbusd_vex(acc[1][j], q1, x);
        }
    }
    if (dim % 4) {  // the last values, zeros past dim
        const __m256i q0 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk)), flip);
        const __m256i q1 = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 32)), flip);
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
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        float total = 0.0f;
        for (std::size_t g = 0; g < n_groups; ++g) {
            __m256 best[2] = {_mm256_set1_ps(-INFINITY), _mm256_set1_ps(-INFINITY)};
            for (std::size_t r0 = first; r0 < last; r0 += N) {
                const std::int8_t* row[N];
                float scale[N];
                for (int j = 0; j < N; ++j) {
                    const std::size_t r = std::min(r0 + std::size_t(j), last - 1);
                    row[j] = tokens + r * stride;
                    scale[j] = scales[r];
                }
                tile<N>(query + g * group_bytes, dim, row, scale, best);
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
