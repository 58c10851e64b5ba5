// Private: the register-blocked tile kernels (MaxSim, and token x matrix products), written once
// over a vector type `V`. Included only by the <kernel>_<isa>.cc files, which supply V:
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
#include <type_traits>

#include "kernels.h"

namespace latefold {
namespace kernels {

// Accumulates one tile: acc[p][j] = sum over k of q[k][p-th vector] * row[j][k], for N rows
// (pointers may repeat) and P vectors of a packed group (dim x P*lanes, row-major).
template <class V, int P, int N>
inline void accumulate_tile(const float* q, std::size_t dim, const float* const (&row)[N],
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
inline void maxsim_tile(const float* q, std::size_t dim, const float* doc, std::size_t first,
                        std::size_t last, std::size_t row_stride, typename V::reg (&best)[P]) {
    const float* row[N];
    tile_rows<N>(doc, first, last, row_stride, row);
    typename V::reg acc[P][N];
    accumulate_tile<V, P, N>(q, dim, row, acc);
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) best[p] = V::max(best[p], acc[p][j]);
}

// One query group against a whole document: full tiles of N rows, then the remainder in one
// tile of N or N/2 rows, whichever wastes less.
template <class V, int P, int N>
inline float maxsim_group(const float* q, std::size_t dim, const float* doc, std::size_t rows,
                          std::size_t row_stride) {
    typename V::reg best[P];
    for (int p = 0; p < P; ++p) best[p] = V::lowest();
    std::size_t first = 0;
    for (; first + N <= rows; first += N)
        maxsim_tile<V, P, N>(q, dim, doc, first, first + N - 1, row_stride, best);
    if (first < rows) {
        if (N >= 2 && rows - first <= std::size_t(N / 2))
            maxsim_tile<V, P, (N >= 2 ? N / 2 : 1)>(q, dim, doc, first, rows - 1, row_stride, best);
        else
            maxsim_tile<V, P, N>(q, dim, doc, first, rows - 1, row_stride, best);
    }
    float total = 0.0f;
    for (int p = 0; p < P; ++p) total += V::sum(best[p]);
    return total;
}

/// The whole packed query against one document: groups of 32 rows, then a last one of 16.
template <class V, int N32, int N16>
inline float maxsim_packed(const float* packed, std::size_t padded, std::size_t dim,
                           const float* doc, std::size_t rows, std::size_t row_stride) {
    static_assert(query_group_rows % V::lanes == 0 && query_pad_rows % V::lanes == 0, "lanes");
    constexpr int p32 = int(query_group_rows / V::lanes), p16 = int(query_pad_rows / V::lanes);
    float total = 0.0f;
    std::size_t start = 0;
    for (; start + query_group_rows <= padded; start += query_group_rows)
        total += maxsim_group<V, p32, N32>(packed + start * dim, dim, doc, rows, row_stride);
    if (start < padded)
        total += maxsim_group<V, p16, N16>(packed + start * dim, dim, doc, rows, row_stride);
    return total;
}

/// out[t * out_stride + c] = sum over k of rows[t][k] * m[k][c] for a matrix m packed like a
/// query (kernels.h: columns in groups of 32, then 16; `width` columns in all, a multiple of 16).
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

/// The nearest-column search of kernels.h (nearest_rows_fn): tiles of N rows x one group of
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

/// fn(std::integral_constant<int, n>()) for a run-time n in [1, N]; nothing for n = 0.
template <int N, class Fn>
inline void with_count(std::size_t n, Fn&& fn) {
    if constexpr (N > 0) {
        if (n == std::size_t(N)) return fn(std::integral_constant<int, N>());
        with_count<N - 1>(n, fn);
    }
}

/// The sparse signed projection of kernels.h (signed_sums_fn): G * V::lanes tokens at a time, one
/// accumulator chain per V::lanes tokens; the more tokens per pass, the more work each output's
/// (short, variable-length) loop over its input coordinates carries.
template <class V, int G>
inline void signed_sums_tile(const float* x, std::size_t columns, const std::uint32_t* index,
                             const float* sign, const std::uint32_t* start, std::size_t outputs,
                             std::size_t t, float* out) {
    constexpr std::size_t L = V::lanes;
    for (std::size_t j = 0; j < outputs; ++j) {
        // Two chains per accumulator (even and odd coordinates): half the dependent latency.
        typename V::reg acc[G], odd[G];
        for (int g = 0; g < G; ++g) acc[g] = odd[g] = V::zero();
        std::uint32_t m = start[j];
        for (; m + 2 <= start[j + 1]; m += 2) {
            const typename V::reg s0 = V::broadcast(sign + m), s1 = V::broadcast(sign + m + 1);
            const float* row0 = x + std::size_t(index[m]) * columns + t;
            const float* row1 = x + std::size_t(index[m + 1]) * columns + t;
            for (int g = 0; g < G; ++g) {
                acc[g] = V::fma(s0, V::load(row0 + std::size_t(g) * L), acc[g]);
                odd[g] = V::fma(s1, V::load(row1 + std::size_t(g) * L), odd[g]);
            }
        }
        if (m < start[j + 1]) {
            const typename V::reg s = V::broadcast(sign + m);
            const float* row = x + std::size_t(index[m]) * columns + t;
            for (int g = 0; g < G; ++g) acc[g] = V::fma(s, V::load(row + std::size_t(g) * L), acc[g]);
        }
        for (int g = 0; g < G; ++g) V::store(out + j * columns + t + std::size_t(g) * L, V::add(acc[g], odd[g]));
    }
}

template <class V>
inline void signed_sums(const float* x, std::size_t columns, const std::uint32_t* index,
                        const float* sign, const std::uint32_t* start, std::size_t outputs,
                        float* out) {
    constexpr std::size_t L = V::lanes;
    std::size_t t = 0;
    for (; t + 8 * L <= columns; t += 8 * L) signed_sums_tile<V, 8>(x, columns, index, sign, start, outputs, t, out);
    auto tail = [&](auto g_tag) { signed_sums_tile<V, decltype(g_tag)::value>(x, columns, index, sign, start, outputs, t, out); };
    with_count<7>((columns - t) / L, tail);  // the remaining 0..7 lane groups in one pass
}

/// The dense product with tokens in lanes of kernels.h (project_lanes_fn): tiles of C columns x
/// G * V::lanes tokens (C * G accumulators; C + G loads per C * G FMAs), then narrower tiles.
template <class V, int C, int G>
inline void lanes_tile(const float* x, std::size_t step, std::size_t depth, const float* m,
                       std::size_t t, float* out) {
    constexpr std::size_t L = V::lanes;
    typename V::reg acc[C][G];
    for (int c = 0; c < C; ++c)
        for (int g = 0; g < G; ++g) acc[c][g] = V::zero();
    for (std::size_t i = 0; i < depth; ++i) {
        typename V::reg xv[G];
        for (int g = 0; g < G; ++g) xv[g] = V::load(x + i * step + t + std::size_t(g) * L);
        for (int c = 0; c < C; ++c) {
            const typename V::reg w = V::broadcast(m + std::size_t(c) * depth + i);
            for (int g = 0; g < G; ++g) acc[c][g] = V::fma(w, xv[g], acc[c][g]);
        }
    }
    for (int c = 0; c < C; ++c)
        for (int g = 0; g < G; ++g) V::store(out + std::size_t(c) * step + t + std::size_t(g) * L, acc[c][g]);
}

template <class V, int C, int G>
inline void project_lanes(const float* x, std::size_t step, std::size_t depth, const float* m,
                          std::size_t columns, float* out) {
    constexpr std::size_t L = V::lanes;
    auto block = [&](auto c_tag, std::size_t c) {
        constexpr int n = decltype(c_tag)::value;
        std::size_t t = 0;
        for (; t + G * L <= step; t += G * L) lanes_tile<V, n, G>(x, step, depth, m + c * depth, t, out + c * step);
        with_count<G - 1>((step - t) / L, [&](auto g_tag) {  // the remaining lane groups in one tile
            lanes_tile<V, n, decltype(g_tag)::value>(x, step, depth, m + c * depth, t, out + c * step);
        });
    };
    std::size_t c = 0;
    for (; c + C <= columns; c += C) block(std::integral_constant<int, C>(), c);
    with_count<C - 1>(columns - c, [&](auto c_tag) { block(c_tag, c); });
}

/// The SimHash partitions of kernels.h (sign_partitions_fn) as loops along the lanes, which the
/// compiler vectorises for the path's instruction set.
template <class V>
inline void sign_partitions(const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k,
                            const float* norms, const float* bounds, std::uint32_t* part,
                            std::uint32_t* uncertain) {
    for (std::size_t t = 0; t < lanes; ++t) uncertain[t] = 0;
    for (std::size_t c = 0; c < reps * k; ++c) {
        const float* value = sketch + c * lanes;
        const float bound = bounds[c];
        for (std::size_t t = 0; t < lanes; ++t)
            uncertain[t] |= std::uint32_t(!(std::fabs(value[t]) > norms[t] * bound));
    }
    for (std::size_t r = 0; r < reps; ++r) {
        std::uint32_t* p = part + r * lanes;
        for (std::size_t t = 0; t < lanes; ++t) p[t] = 0;
        for (std::size_t j = 0; j < k; ++j) {
            const float* value = sketch + (r * k + j) * lanes;
            for (std::size_t t = 0; t < lanes; ++t) p[t] = (p[t] << 1) | std::uint32_t(value[t] > 0.0f);
        }
        for (std::size_t t = 0; t < lanes; ++t) p[t] = gray_decode(p[t]);
    }
}

/// fn(first, std::integral_constant<int, n>) with n = min(N, left) for the queries
/// [first, first + n).
template <int N, class Fn>
inline void query_group(std::size_t left, std::size_t first, Fn& fn) {
    if constexpr (N > 1)
        if (left < std::size_t(N)) return query_group<N - 1>(left, first, fn);
    fn(first, std::integral_constant<int, N>());
}

/// Calls fn for the queries [0, nq) by groups of Max (the last one smaller): the fast-scan
/// kernels take several queries per load of codes.
template <int Max = 4, class Fn>
inline void for_query_groups(std::size_t nq, Fn fn) {
    for (std::size_t q = 0; q < nq; q += Max) query_group<Max>(nq - q, q, fn);
}

inline float row_value(float x) { return x; }
inline float row_value(half_bits x) { return half_to_float(x); }

/// The gathered inner products of kernels.h (dot_rows_*_fn): four rows at a time, one
/// accumulator chain each, while the next four rows are prefetched (rows come from random
/// places in memory: a graph's neighbours).
template <class V, class Row>
inline void dot_rows(const float* q, const Row* base, std::size_t stride, const std::uint32_t* ids,
                     std::size_t count, std::size_t dim, float* out) {
    constexpr int G = 4;
    const std::size_t body = dim / V::lanes * V::lanes;
    const std::size_t bytes = std::min(dim * sizeof(Row), row_prefetch_bytes);
    auto prefetch = [&](std::size_t i) __attribute__((always_inline)) {
        for (std::size_t j = i; j < std::min(count, i + G); ++j) prefetch_lines(base + std::size_t(ids[j]) * stride, bytes);
    };
    prefetch(0);
    for (std::size_t i = 0; i < count; i += G) {
        prefetch(i + G);
        const int rows = int(std::min<std::size_t>(G, count - i));
        const Row* row[G];
        for (int j = 0; j < G; ++j) row[j] = base + std::size_t(ids[i + std::size_t(std::min(j, rows - 1))]) * stride;
        typename V::reg acc[G];
        for (int j = 0; j < G; ++j) acc[j] = V::zero();
        for (std::size_t k = 0; k < body; k += V::lanes) {
            const typename V::reg qv = V::load(q + k);
            for (int j = 0; j < G; ++j) acc[j] = V::fma(qv, V::load_row(row[j] + k), acc[j]);
        }
        for (int j = 0; j < rows; ++j) {
            float dot = V::sum(acc[j]);
            for (std::size_t k = body; k < dim; ++k) dot += q[k] * row_value(row[j][k]);
            out[i + std::size_t(j)] = dot;
        }
    }
}

}  // namespace kernels
}  // namespace latefold
