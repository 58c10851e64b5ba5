// Private: the register-blocked tile kernels (MaxSim, token rows x a packed matrix, nearest
// column), written once over a vector type `V` (vector_<isa>.h) that supplies
//   V::reg, V::lanes, V::zero(), V::load(p), V::broadcast(p), V::fma(a, b, c) = a*b + c,
//   V::max(a, b), V::lowest() (all lanes -inf), V::sum(a) (horizontal sum), V::store(p, a),
//   V::set1(x), V::add(a, b), V::keep_less(v, c, best, best_c) (lanes where v < best take v, c),
//   V::load_row(p) for float and half_bits rows (half rows converted exactly).
//
// Shape of the work, as in a small GEMM: P query vectors (P * lanes query tokens, read from the
// packed [k][width] layout) times N document tokens (broadcast one element at a time) give
// P * N accumulators; after the dim-long loop each accumulator holds N inner products per query
// lane, which fold into a running max per query token. Per k step that is P + N loads for P * N
// FMAs, so the FMA units, not the loads, set the pace. A tail tile of fewer than N document rows
// repeats its last row: a repeated row cannot change a max.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "latefold/common.h"
#include "layouts.h"
#include "table.h"
#include "widen_template.h"

namespace latefold {
namespace kernels {

// Accumulates one tile: acc[p][j] = sum over k of q[k][p-th vector] * row[j][k], for N rows
// (pointers may repeat) and P vectors of a packed group (dim x P*lanes, row-major). Always
// inlined, as maxsim_tile: called from several kernels, the compiler may otherwise keep the
// accumulators in memory (measured 16 % slower).
template <class V, int P, int N>
[[gnu::always_inline]] inline void accumulate_tile(const float* q, std::size_t dim, const float* const (&row)[N],
                            typename V::reg (&acc)[P][N]) {
    constexpr int width = P * V::lanes;
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) acc[p][j] = V::zero();
    const float* qk = q;
    for (std::size_t k = 0; k < dim; ++k, qk += width) {
        typename V::reg qv[P];
        for (int p = 0; p < P; ++p) qv[p] = V::load(qk + p * V::lanes);
        for (int j = 0; j < N; ++j) {
            const typename V::reg x = V::broadcast(row[j] + k);
            for (int p = 0; p < P; ++p) acc[p][j] = V::fma(qv[p], x, acc[p][j]);
        }
    }
}

// Row pointers of rows [first, first + N), clamped to `last`: a repeated row cannot change a max.
template <int N>
inline void tile_rows(const float* base, std::size_t first, std::size_t last, std::size_t stride,
                      const float* (&row)[N]) {
    for (int j = 0; j < N; ++j) row[j] = base + std::min(first + std::size_t(j), last) * stride;
}

// One MaxSim tile: folds the N inner products per query lane into `best`.
template <class V, int P, int N>
[[gnu::always_inline]] inline void maxsim_tile(const float* q, std::size_t dim, const float* doc, std::size_t first,
                        std::size_t last, std::size_t row_stride, typename V::reg (&best)[P],
                        typename V::reg* poison = nullptr) {
    const float* row[N];
    tile_rows<N>(doc, first, last, row_stride, row);
    typename V::reg acc[P][N];
    accumulate_tile<V, P, N>(q, dim, row, acc);
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) best[p] = V::max(best[p], acc[p][j]);
    if (poison) {  // NaN from here on if a sum is not finite (see maxsim_group)
        typename V::reg sum = V::zero();
        for (int p = 0; p < P; ++p)
            for (int j = 0; j < N; ++j) sum = V::add(sum, acc[p][j]);
        *poison = V::fma(sum, V::zero(), *poison);
    }
}

// Requests the cache lines of rows [first, last) (`dim` floats each) of a document. One query
// reads a document from memory at a tile's compute per N rows: faster than the hardware
// prefetchers stream it alone (one query over a corpus in memory: 10-20 % faster).
template <class Row>
inline void prefetch_rows(const Row* doc, std::size_t first, std::size_t last, std::size_t row_stride,
                          std::size_t dim) {
    for (std::size_t r = first; r < last; ++r) prefetch_lines(doc + r * row_stride, dim * sizeof(Row));
}

// A float16 document read by maxsim_group: its rows, and the buffer (rows x dim floats) they are
// widened into tile by tile, just before the tile kernel reads them.
struct HalfRows {
    const half_bits* rows;
    std::size_t stride;
    float* wide;
};

// One query group against a whole document: full tiles of N rows, then the remainder in one
// tile of N or N/2 rows, whichever wastes less. `stream`, `flag`: see maxsim_packed. With
// `half`, the document is float16 (`doc` is then half->wide, row_stride dim): the same tiles
// over the same values as over rows widened beforehand, so the same bits.
template <class V, int P, int N>
inline float maxsim_group(const float* q, std::size_t dim, const float* doc, std::size_t rows,
                          std::size_t row_stride, bool stream, bool flag, const HalfRows* half = nullptr) {
    typename V::reg best[P];
    for (int p = 0; p < P; ++p) best[p] = V::lowest();
    // Flagged float rows: every value of the document enters each of its row's sums in this
    // group, so a value that is not finite makes every lane of them infinite or NaN (an infinity
    // times a query value of zero is NaN) and `poison` (+ sum * 0 per tile) NaN. So does a sum
    // of finite values that overflows: the caller tells the two apart. A separate pass over
    // every row, even from L1, cost 5-10 % of one query.
    typename V::reg poison = V::zero();
    typename V::reg* const poisoned = flag && !half ? &poison : nullptr;
    bool finite = true;  // flagged float16 rows
    // Before a tile of n rows: the next tile's rows requested, float16 rows widened.
    auto read = [&](std::size_t first, std::size_t n) {
        if (half) {
            if (stream) prefetch_rows(half->rows, first + N, std::min(rows, first + 2 * N), half->stride, dim);
            widen_rows<V>(half->rows, first, n, half->stride, dim, half->wide, flag, finite);
        } else if (stream) {
            prefetch_rows(doc, first + N, std::min(rows, first + 2 * N), row_stride, dim);
        }
    };
    std::size_t first = 0;
    for (; first + N <= rows; first += N) {
        read(first, N);
        maxsim_tile<V, P, N>(q, dim, doc, first, first + N - 1, row_stride, best, poisoned);
    }
    if (first < rows) {
        read(first, rows - first);
        if (N >= 2 && rows - first <= std::size_t(N / 2))
            maxsim_tile<V, P, (N >= 2 ? N / 2 : 1)>(q, dim, doc, first, rows - 1, row_stride, best, poisoned);
        else
            maxsim_tile<V, P, N>(q, dim, doc, first, rows - 1, row_stride, best, poisoned);
    }
    if (!finite || (poisoned && std::isnan(V::sum(poison)))) return NAN;
    float total = 0.0f;
    for (int p = 0; p < P; ++p) total += V::sum(best[p]);
    return total;
}

/// maxsim_packed over float16 rows (table.h maxsim_packed_f16): the first group widens the rows
/// tile by tile into a per-thread buffer, the others read them there.
template <class V, int N32, int N16>
inline float maxsim_packed_f16(const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc,
                               std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    constexpr int p32 = int(query_group_rows / V::lanes), p16 = int(query_pad_rows / V::lanes);
    thread_local AlignedVector<float> buffer;  // grows to the largest document, kept
    if (buffer.size() < rows * dim) buffer.resize(rows * dim);
    float* wide = buffer.data();
    float total = 0.0f;
    std::size_t start = 0;
    const HalfRows half{doc, row_stride, wide};
    if (padded >= query_group_rows) {
        total = maxsim_group<V, p32, N32>(packed, dim, wide, rows, dim, stream, flag, &half);
        start = query_group_rows;
    } else {
        total = maxsim_group<V, p16, N16>(packed, dim, wide, rows, dim, stream, flag, &half);
        start = query_pad_rows;
    }
    if (std::isnan(total) && flag) return total;
    for (; start + query_group_rows <= padded; start += query_group_rows)
        total += maxsim_group<V, p32, N32>(packed + start * dim, dim, wide, rows, dim, false, false);
    if (start < padded) total += maxsim_group<V, p16, N16>(packed + start * dim, dim, wide, rows, dim, false, false);
    return total;
}

/// The whole packed query against one document: groups of 32 rows, then a last one of 16. Only
/// the first group streams the rows from memory and flags values that are not finite.
template <class V, int N32, int N16>
inline float maxsim_packed(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride, bool stream, bool flag) {
    static_assert(query_group_rows % V::lanes == 0 && query_pad_rows % V::lanes == 0, "lanes");
    constexpr int p32 = int(query_group_rows / V::lanes), p16 = int(query_pad_rows / V::lanes);
    float total = 0.0f;
    std::size_t start = 0;
    for (; start + query_group_rows <= padded; start += query_group_rows)
        total += maxsim_group<V, p32, N32>(packed + start * dim, dim, doc, rows, row_stride, stream && start == 0,
                                           flag && start == 0);
    if (start < padded)
        total += maxsim_group<V, p16, N16>(packed + start * dim, dim, doc, rows, row_stride, stream && start == 0,
                                           flag && start == 0);
    return total;
}

/// out[t * out_stride + c] = sum over k of rows[t][k] * m[k][c] for a matrix m packed like a
/// query (layouts.h: columns in groups of 32, then 16; `width` columns in all, a multiple of 16).
template <class V, int N32, int N16>
inline void project_rows(const float* rows, std::size_t count, std::size_t row_stride,
                         std::size_t depth, const float* packed, std::size_t width, float* out,
                         std::size_t out_stride) {
    constexpr int p32 = int(query_group_rows / V::lanes), p16 = int(query_pad_rows / V::lanes);
    auto group = [&](auto p_tag, auto n_tag, std::size_t start) {
        constexpr int P = decltype(p_tag)::value, N = decltype(n_tag)::value;
        const float* q = packed + start * depth;
        for (std::size_t first = 0; first < count; first += N) {
            const float* row[N];
            const std::size_t last = std::min(count, first + N) - 1;
            tile_rows<N>(rows, first, last, row_stride, row);
            typename V::reg acc[P][N];
            accumulate_tile<V, P, N>(q, depth, row, acc);
            for (std::size_t j = 0; j < std::size_t(N) && first + j <= last; ++j)
                for (int p = 0; p < P; ++p)
                    V::store(out + (first + j) * out_stride + start + std::size_t(p) * V::lanes, acc[p][j]);
        }
    };
    std::size_t start = 0;
    for (; start + query_group_rows <= width; start += query_group_rows)
        group(std::integral_constant<int, p32>(), std::integral_constant<int, N32>(), start);
    if (start < width)
        group(std::integral_constant<int, p16>(), std::integral_constant<int, N16>(), start);
}

/// The nearest-column search of table.h (nearest_rows): tiles of N rows x one group of
/// columns; a running minimum per row and lane, then one horizontal reduction per row.
template <class V, int N32, int N16>
inline void nearest_rows(const float* rows, std::size_t count, std::size_t row_stride,
                         std::size_t depth, const float* packed, const float* bias,
                         std::size_t width, std::uint32_t* index, float* value) {
    constexpr int p32 = int(query_group_rows / V::lanes), p16 = int(query_pad_rows / V::lanes);
    constexpr int N = N32 < N16 ? N32 : N16;  // rows per tile, the same for both group widths
    float lane[V::lanes];
    for (int l = 0; l < V::lanes; ++l) lane[l] = float(l);
    const typename V::reg lane_offset = V::load(lane), minus_two = V::set1(-2.0f);
    for (std::size_t first = 0; first < count; first += N) {
        const float* row[N];
        const std::size_t last = std::min(count, first + N) - 1;
        tile_rows<N>(rows, first, last, row_stride, row);
        // Per row and lane: the smallest value so far and its column (as a float: exact < 2^24).
        typename V::reg best[N], best_column[N];
        for (int j = 0; j < N; ++j) best[j] = V::set1(INFINITY), best_column[j] = V::zero();
        auto group = [&](auto p_tag, std::size_t start) {
            constexpr int P = decltype(p_tag)::value;
            typename V::reg acc[P][N];
            accumulate_tile<V, P, N>(packed + start * depth, depth, row, acc);
            for (int p = 0; p < P; ++p) {
                const std::size_t column = start + std::size_t(p) * V::lanes;
                const typename V::reg b = V::load(bias + column);
                const typename V::reg c = V::add(V::set1(float(column)), lane_offset);
                for (int j = 0; j < N; ++j)  // strict: the first (lowest) column wins a tie
                    V::keep_less(V::fma(minus_two, acc[p][j], b), c, best[j], best_column[j]);
            }
        };
        std::size_t start = 0;
        for (; start + query_group_rows <= width; start += query_group_rows)
            group(std::integral_constant<int, p32>(), start);
        if (start < width) group(std::integral_constant<int, p16>(), start);
        for (std::size_t j = 0; first + j <= last; ++j) {
            float v[V::lanes], c[V::lanes];
            V::store(v, best[j]);
            V::store(c, best_column[j]);
            float bv = v[0], bc = c[0];
            for (int l = 1; l < V::lanes; ++l)
                if (v[l] < bv || (v[l] == bv && c[l] < bc)) bv = v[l], bc = c[l];
            index[first + j] = std::uint32_t(bc);
            value[first + j] = bv;
        }
    }
}

}  // namespace kernels
}  // namespace latefold
