// Private: the centroid interaction kernel (centroid_maxsim, table.h), written once over a vector
// type `V` (vector_<isa>.h). Each document token adds one row of the query's centroid table to a
// running maximum: two vectors of columns at a time stay in registers while the tokens stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "table.h"

namespace latefold {
namespace kernels {

template <class V, int Levels>
inline float centroid_maxsim_levels(const float* table, std::size_t padded, std::size_t m,
                                    const std::uint16_t* codes, std::size_t count, float* best) {
    auto row = [&](std::size_t t, std::size_t j, std::size_t v) {
        typename V::reg r = V::load(table + std::size_t(codes[t * Levels]) * padded + j + v);
        if (Levels == 2) r = V::add(r, V::load(table + std::size_t(codes[t * Levels + 1]) * padded + j + v));
        return r;
    };
    std::size_t j = 0;
    for (; j + 2 * V::lanes <= padded; j += 2 * V::lanes) {
        typename V::reg a = V::lowest(), b = V::lowest();
        for (std::size_t t = 0; t < count; ++t) {
            a = V::max(a, row(t, j, 0));
            b = V::max(b, row(t, j, V::lanes));
        }
        V::store(best + j, a);
        V::store(best + j + V::lanes, b);
    }
    for (; j < padded; j += V::lanes) {
        typename V::reg a = V::lowest();
        for (std::size_t t = 0; t < count; ++t) a = V::max(a, row(t, j, 0));
        V::store(best + j, a);
    }
    float sum = 0.0f;
    for (std::size_t q = 0; q < m; ++q) sum += best[q];
    return sum;
}

template <class V>
inline float centroid_maxsim(const float* table, std::size_t padded, std::size_t m, const std::uint16_t* codes,
                             std::size_t count, std::size_t levels, float* best) {
    return levels == 2 ? centroid_maxsim_levels<V, 2>(table, padded, m, codes, count, best)
                       : centroid_maxsim_levels<V, 1>(table, padded, m, codes, count, best);
}

}  // namespace kernels
}  // namespace latefold
