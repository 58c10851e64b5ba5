// Private: the centroid interaction kernel (centroid_maxsim, table.h), written once over a vector
// type `V` (vector_<isa>.h). Each document token adds one row of the query's centroid table to a
// running maximum: two vectors of columns at a time stay in registers while the tokens stream.
#pragma once

#include <cstddef>
#include <cstdint>

#include "table.h"

namespace latefold {
namespace kernels {

template <class V>
inline float centroid_maxsim(const float* table, std::size_t padded, std::size_t m,
                             const std::uint16_t* codes, std::size_t count, float* best) {
    std::size_t j = 0;
    for (; j + 2 * V::lanes <= padded; j += 2 * V::lanes) {
        typename V::reg a = V::lowest(), b = V::lowest();
        for (std::size_t t = 0; t < count; ++t) {
            const float* row = table + std::size_t(codes[t]) * padded + j;
            a = V::max(a, V::load(row));
            b = V::max(b, V::load(row + V::lanes));
        }
        V::store(best + j, a);
        V::store(best + j + V::lanes, b);
    }
    for (; j < padded; j += V::lanes) {
        typename V::reg a = V::lowest();
        for (std::size_t t = 0; t < count; ++t) a = V::max(a, V::load(table + std::size_t(codes[t]) * padded + j));
        V::store(best + j, a);
    }
    float sum = 0.0f;
    for (std::size_t q = 0; q < m; ++q) sum += best[q];
    return sum;
}

}  // namespace kernels
}  // namespace latefold
