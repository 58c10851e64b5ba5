// Private: the gathered inner products (dot_rows_f32, dot_rows_f16), written once over a vector
// type `V` (vector_<isa>.h; see tile_templates.h for what it supplies), and the exact scalar
// half-precision conversion their tails use.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "table.h"

namespace latefold {
namespace kernels {

static inline float row_value(float x) { return x; }
static inline float row_value(half_bits x) { return half_to_float(x); }

/// The gathered inner products of table.h (dot_rows_f32, dot_rows_f16): four rows at a time, one
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
