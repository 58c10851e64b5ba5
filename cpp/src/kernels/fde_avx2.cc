// The FDE kernels (project_rows, signed_sums, project_lanes, sign_partitions, lane_sums) for
// AVX2 + FMA + F16C; this path's to_lanes is the scalar twin.
#include <immintrin.h>

#include <algorithm>

#include "lane_templates.h"
#include "tile_templates.h"
#include "vector_avx2.h"

namespace latefold {
namespace kernels {

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

}  // namespace kernels
}  // namespace latefold
