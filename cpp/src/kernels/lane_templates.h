// Private: the kernels on tokens stored in lanes (the FDE's sketches), written once over a vector
// type `V` (vector_<isa>.h; see tile_templates.h for what it supplies).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "table.h"

namespace latefold {
namespace kernels {

/// fn(std::integral_constant<int, n>()) for a run-time n in [1, N]; nothing for n = 0.
template <int N, class Fn>
inline void with_count(std::size_t n, Fn&& fn) {
    if constexpr (N > 0) {
        if (n == std::size_t(N)) return fn(std::integral_constant<int, N>());
        with_count<N - 1>(n, fn);
    }
}

/// The sparse signed projection of table.h (signed_sums): G * V::lanes tokens at a time, one
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

/// The dense product with tokens in lanes of table.h (project_lanes): tiles of C columns x
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

/// The SimHash partitions of table.h (sign_partitions) as loops along the lanes, which the
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

}  // namespace kernels
}  // namespace latefold
