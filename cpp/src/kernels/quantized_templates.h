// Private: MaxSim over int8 and bfloat16 tokens (maxsim_i8, maxsim_bf16) for the paths without
// int8 or bfloat16 dot-product instructions (AVX2, AVX-512 F/BW), written once over a vector type
// `V` (vector_<isa>.h; besides the float members of tile_templates.h: V::ireg, V::izero(),
// V::iload(p), V::broadcast_pair(p), V::madd16(a, b), V::iadd(a, b), V::to_float(a), V::mul(a, b)).
//
// Both widen first, into per-thread buffers, so that the tile loops read values ready to use: the
// query once per call, a document's rows a chunk at a time (about chunk_bytes of widened rows,
// which stay in L1 while every group of the query passes over them; the running maxima of the
// query tokens are kept in a per-thread array from one chunk to the next).
//   int8 to int16 pairs: vpmaddwd multiplies the two int16 of each 32-bit lane and adds the
//   products into one int32, exactly (|product| <= 2^14), and int32 accumulators hold the inner
//   products exactly (dim <= 2^16), so every result has the scalar twin's bits: the same
//   scales[r] * float(dot), max, query-scale products and sum in increasing token order.
//   bfloat16 to float32 (exact: the 16 bits above 16 zeros): products are exact in float32 and
//   each FMA adds one, in increasing depth, as the scalar twin does.
// The tiles are those of tile_templates.h: G groups of 16 query tokens (16 / V::lanes registers
// each) times N document rows broadcast a value (int8: a pair) at a time; a last partial tile
// repeats its last row (a repeated row cannot change a max), with N / 2 rows when that is enough.
//
// Widened layouts. int8 query: per group of 16 tokens, ceil(dim / 2) rows of 16 lanes, lane t
// the int16 pair (q_t[2r], q_t[2r + 1]) (zero past dim); int8 rows: dim rounded up to even int16
// values, the last one zero. bfloat16 query: per group, dim rows of 16 floats (q_t[k] in lane t);
// bfloat16 rows: dim floats.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "latefold/common.h"
#include "layouts.h"

namespace latefold {
namespace kernels {
namespace {

// The tile loop of both kernels: rows [first, last) in tiles of N rows, the last partial tile of
// N or N / 2 rows; tile(row_index_array) gets the N row indices (the last repeated).
template <int N, class Tile, class HalfTile>
inline void row_tiles(std::size_t first, std::size_t last, Tile&& tile, HalfTile&& half_tile) {
    std::size_t r0 = first;
    for (; r0 + N <= last; r0 += N) {
        std::size_t row[N];
        for (int j = 0; j < N; ++j) row[j] = r0 + std::size_t(j);
        tile(row);
    }
    if (r0 == last) return;
    if (N >= 2 && last - r0 <= std::size_t(N / 2)) {
        std::size_t row[N >= 2 ? N / 2 : 1];
        for (int j = 0; j < (N >= 2 ? N / 2 : 1); ++j) row[j] = std::min(r0 + std::size_t(j), last - 1);
        half_tile(row);
    } else {
        std::size_t row[N];
        for (int j = 0; j < N; ++j) row[j] = std::min(r0 + std::size_t(j), last - 1);
        tile(row);
    }
}

// int8: N widened rows (row j at doc + index[j] * row_elems, scale scales[index[j]]) against G
// groups (widened query at q, group_elems apart); folds scales[r] * float(dot) into best.
template <class V, int G, int N>
inline void i8_tile(const std::int16_t* q, std::size_t group_elems, std::size_t pairs, const std::int16_t* doc,
                    std::size_t row_elems, const float* scales, const std::size_t (&index)[N],
                    typename V::reg (&best)[G * int(lane_group) / V::lanes]) {
    constexpr int R = int(lane_group) / V::lanes, P = G * R;
    const std::int16_t* row[N];
    for (int j = 0; j < N; ++j) row[j] = doc + index[j] * row_elems;
    typename V::ireg acc[P][N];
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) acc[p][j] = V::izero();
    for (std::size_t r = 0; r < pairs; ++r) {
        typename V::ireg qv[P];
        for (int g = 0; g < G; ++g)
            for (int h = 0; h < R; ++h) qv[g * R + h] = V::iload(q + g * group_elems + r * 32 + h * 2 * V::lanes);
        for (int j = 0; j < N; ++j) {
            const typename V::ireg x = V::broadcast_pair(row[j] + 2 * r);
            for (int p = 0; p < P; ++p) acc[p][j] = V::iadd(acc[p][j], V::madd16(qv[p], x));
        }
    }
    for (int j = 0; j < N; ++j) {
        const typename V::reg s = V::set1(scales[index[j]]);
        // max(v, best): v where v > best, as the scalar twin's comparison.
        for (int p = 0; p < P; ++p) best[p] = V::max(V::mul(V::to_float(acc[p][j]), s), best[p]);
    }
}

// int8: G groups against widened rows [0, rows) (a chunk of a document); the running maxima
// of the G * 16 tokens are read from and written back to `kept`.
template <class V, int G, int N>
inline void i8_groups(const std::int16_t* q, std::size_t group_elems, std::size_t pairs, const std::int16_t* doc,
                      std::size_t row_elems, const float* scales, std::size_t rows, float* kept) {
    constexpr int P = G * int(lane_group) / V::lanes;
    typename V::reg best[P];
    for (int p = 0; p < P; ++p) best[p] = V::load(kept + p * V::lanes);
    row_tiles<N>(
        0, rows,
        [&](const std::size_t(&index)[N]) {
            i8_tile<V, G, N>(q, group_elems, pairs, doc, row_elems, scales, index, best);
        },
        [&](const std::size_t(&index)[N >= 2 ? N / 2 : 1]) {
            i8_tile<V, G, (N >= 2 ? N / 2 : 1)>(q, group_elems, pairs, doc, row_elems, scales, index, best);
        });
    for (int p = 0; p < P; ++p) V::store(kept + p * V::lanes, best[p]);
}

/// Rows of a chunk: about chunk_bytes of widened rows (so that they stay in L1 while every group
/// of the query passes over them), a multiple of both tile heights (a partial tile only at a
/// document's end).
constexpr std::size_t chunk_bytes = 16384;
template <int N2, int N1>
inline std::size_t chunk_rows(std::size_t row_bytes) {
    const std::size_t step = std::size_t(N2) * std::size_t(N1) / std::gcd(std::size_t(N2), std::size_t(N1));
    return std::max<std::size_t>(1, chunk_bytes / row_bytes / step) * step;
}

/// maxsim_i8 (table.h): each document in chunks of rows widened in turn; over each chunk,
/// groups of G2 then of 1 in tiles of N2 and N1 rows.
template <class V, int G2, int N2, int N1>
inline void maxsim_i8_widened(const std::int8_t* query, const float* query_scales, std::size_t padded,
                              std::size_t dim, const std::int8_t* tokens, const float* scales, std::size_t stride,
                              const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t quads = lane_rows(dim, 4), pairs = lane_rows(dim, 2), n_groups = padded / lane_group;
    const std::size_t group_elems = pairs * 32, row_elems = 2 * pairs;
    const std::size_t chunk = chunk_rows<N2, N1>(row_elems * sizeof(std::int16_t));
    thread_local std::vector<std::int16_t> query_buffer, row_buffer;
    thread_local std::vector<float> best_buffer;
    std::vector<std::int16_t>& wide_query = query_buffer;
    std::vector<std::int16_t>& wide_rows = row_buffer;
    std::vector<float>& best = best_buffer;
    if (wide_query.size() < n_groups * group_elems) wide_query.resize(n_groups * group_elems);
    if (wide_rows.size() < chunk * row_elems) wide_rows.resize(chunk * row_elems);
    if (best.size() < padded) best.resize(padded);
    // Lane layout (layouts.h) to int16 pairs; zeros past dim are in the lane layout already.
    for (std::size_t g = 0; g < n_groups; ++g)
        for (std::size_t r = 0; r < pairs; ++r)
            for (std::size_t t = 0; t < lane_group; ++t)
                for (std::size_t b = 0; b < 2; ++b) {
                    const std::size_t k = 2 * r + b;
                    wide_query[g * group_elems + r * 32 + t * 2 + b] = query[(g * quads + k / 4) * 64 + t * 4 + k % 4];
                }
    for (std::size_t i = 0; i < count; ++i) {
        std::fill(best.begin(), best.begin() + std::ptrdiff_t(padded), -INFINITY);
        for (std::size_t c0 = std::size_t(offsets[i]), end = std::size_t(offsets[i + 1]); c0 < end; c0 += chunk) {
            const std::size_t rows = std::min(chunk, end - c0);
            for (std::size_t r = 0; r < rows; ++r) {
                const std::int8_t* x = tokens + (c0 + r) * stride;
                std::int16_t* w = wide_rows.data() + r * row_elems;
                for (std::size_t k = 0; k < dim; ++k) w[k] = x[k];
                if (dim % 2) w[dim] = 0;
            }
            std::size_t g = 0;
            for (; g + G2 <= n_groups; g += G2)
                i8_groups<V, G2, N2>(wide_query.data() + g * group_elems, group_elems, pairs, wide_rows.data(),
                                     row_elems, scales + c0, rows, best.data() + g * lane_group);
            for (; g < n_groups; ++g)
                i8_groups<V, 1, N1>(wide_query.data() + g * group_elems, group_elems, pairs, wide_rows.data(),
                                    row_elems, scales + c0, rows, best.data() + g * lane_group);
        }
        // The tokens' terms in increasing token order, as the scalar twin adds them.
        float total = 0.0f;
        for (std::size_t t = 0; t < padded; t += V::lanes) {
            float lane[V::lanes];
            V::store(lane, V::mul(V::load(best.data() + t), V::load(query_scales + t)));
            for (float v : lane) total += v;
        }
        out[i] = total;
    }
}

// bfloat16: N widened rows against G groups; folds the inner products into best.
template <class V, int G, int N>
inline void bf16_tile(const float* q, std::size_t group_elems, std::size_t dim, const float* doc,
                      const std::size_t (&index)[N], typename V::reg (&best)[G * int(lane_group) / V::lanes]) {
    constexpr int R = int(lane_group) / V::lanes, P = G * R;
    const float* row[N];
    for (int j = 0; j < N; ++j) row[j] = doc + index[j] * dim;
    typename V::reg acc[P][N];
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) acc[p][j] = V::zero();
    for (std::size_t k = 0; k < dim; ++k) {
        typename V::reg qv[P];
        for (int g = 0; g < G; ++g)
            for (int h = 0; h < R; ++h) qv[g * R + h] = V::load(q + g * group_elems + k * lane_group + h * V::lanes);
        for (int j = 0; j < N; ++j) {
            const typename V::reg x = V::broadcast(row[j] + k);
            for (int p = 0; p < P; ++p) acc[p][j] = V::fma(qv[p], x, acc[p][j]);
        }
    }
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) best[p] = V::max(acc[p][j], best[p]);
}

// bfloat16: G groups against widened rows [0, rows) (a chunk of a document); the running maxima
// are read from and written back to `kept`.
template <class V, int G, int N>
inline void bf16_groups(const float* q, std::size_t group_elems, std::size_t dim, const float* doc, std::size_t rows,
                        float* kept) {
    constexpr int P = G * int(lane_group) / V::lanes;
    typename V::reg best[P];
    for (int p = 0; p < P; ++p) best[p] = V::load(kept + p * V::lanes);
    row_tiles<N>(
        0, rows, [&](const std::size_t(&index)[N]) { bf16_tile<V, G, N>(q, group_elems, dim, doc, index, best); },
        [&](const std::size_t(&index)[N >= 2 ? N / 2 : 1]) {
            bf16_tile<V, G, (N >= 2 ? N / 2 : 1)>(q, group_elems, dim, doc, index, best);
        });
    for (int p = 0; p < P; ++p) V::store(kept + p * V::lanes, best[p]);
}

/// maxsim_bf16 (table.h): each document in chunks of rows widened in turn; over each chunk,
/// groups of G2 then of 1 in tiles of N2 and N1 rows.
template <class V, int G2, int N2, int N1>
inline void maxsim_bf16_widened(const std::uint16_t* query, std::size_t padded, std::size_t dim,
                                const std::uint16_t* tokens, std::size_t stride, const std::int64_t* offsets,
                                std::size_t count, float* out) {
    const std::size_t pairs = lane_rows(dim, 2), n_groups = padded / lane_group, group_elems = dim * lane_group;
    const std::size_t chunk = chunk_rows<N2, N1>(dim * sizeof(float));
    thread_local std::vector<float> query_buffer, row_buffer, best_buffer;
    std::vector<float>& wide_query = query_buffer;
    std::vector<float>& wide_rows = row_buffer;
    std::vector<float>& best = best_buffer;
    if (wide_query.size() < n_groups * group_elems) wide_query.resize(n_groups * group_elems);
    if (wide_rows.size() < chunk * dim) wide_rows.resize(chunk * dim);
    if (best.size() < padded) best.resize(padded);
    for (std::size_t g = 0; g < n_groups; ++g)
        for (std::size_t k = 0; k < dim; ++k)
            for (std::size_t t = 0; t < lane_group; ++t)
                wide_query[g * group_elems + k * lane_group + t] =
                    bfloat16_to_float(query[(g * pairs + k / 2) * 32 + t * 2 + k % 2]);
    for (std::size_t i = 0; i < count; ++i) {
        std::fill(best.begin(), best.begin() + std::ptrdiff_t(padded), -INFINITY);
        for (std::size_t c0 = std::size_t(offsets[i]), end = std::size_t(offsets[i + 1]); c0 < end; c0 += chunk) {
            const std::size_t rows = std::min(chunk, end - c0);
            for (std::size_t r = 0; r < rows; ++r) {
                const std::uint16_t* x = tokens + (c0 + r) * stride;
                float* w = wide_rows.data() + r * dim;
                for (std::size_t k = 0; k < dim; ++k) w[k] = bfloat16_to_float(x[k]);
            }
            std::size_t g = 0;
            for (; g + G2 <= n_groups; g += G2)
                bf16_groups<V, G2, N2>(wide_query.data() + g * group_elems, group_elems, dim, wide_rows.data(), rows,
                                       best.data() + g * lane_group);
            for (; g < n_groups; ++g)
                bf16_groups<V, 1, N1>(wide_query.data() + g * group_elems, group_elems, dim, wide_rows.data(), rows,
                                      best.data() + g * lane_group);
        }
        float total = 0.0f;  // in increasing token order
        for (std::size_t t = 0; t < padded; t += V::lanes) {
            float lane[V::lanes];
            V::store(lane, V::load(best.data() + t));
            for (float v : lane) total += v;
        }
        out[i] = total;
    }
}

}  // namespace
}  // namespace kernels
}  // namespace latefold
