// The FDE kernels (project_rows, signed_sums, project_lanes, sign_partitions, lane_sums,
// to_lanes) for AVX-512 (F, BW, DQ, VL).
#include <immintrin.h>

#include <algorithm>

#include "lane_templates.h"
#include "tile_templates.h"
#include "vector_avx512.h"

namespace latefold {
namespace kernels {

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

}  // namespace kernels
}  // namespace latefold
