// Private: the centroid interaction kernel (centroid_maxsim, table.h), written once over an int16
// vector type `I` (defined by each centroids_<isa>.cc): each document token adds one row of the
// query's quantized table to a running maximum, two registers of columns at a time while the
// tokens stream. int16 rows are a quarter of float32's bytes and a register holds twice the
// columns: 3-5x faster than the float table (the table's rows are read at random from L2).
#pragma once

#include <cstddef>
#include <cstdint>

#include "table.h"

namespace latefold {
namespace kernels {

// Sum of the column maxima of columns [j, j + N * I::lanes).
template <class I, int Levels, int N>
inline std::int64_t column_maxima(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                  std::size_t count, std::size_t j) {
    typename I::reg best[N];
    for (int v = 0; v < N; ++v) best[v] = I::lowest();
    for (std::size_t t = 0; t < count; ++t) {
        const std::int16_t* row[Levels];
        for (int l = 0; l < Levels; ++l) row[l] = table + std::size_t(codes[t * Levels + l]) * padded + j;
        for (int v = 0; v < N; ++v) {
            typename I::reg r = I::load(row[0] + v * I::lanes);
            for (int l = 1; l < Levels; ++l) r = I::add(r, I::load(row[l] + v * I::lanes));
            best[v] = I::max(best[v], r);
        }
    }
    std::int64_t sum = 0;
    for (int v = 0; v < N; ++v) sum += I::sum(best[v]);
    return sum;
}

// `Narrow` (half of `I`'s lanes, or `I` itself) takes the columns past the last whole register.
template <class I, class Narrow, int Levels>
inline std::int64_t centroid_maxsim_levels(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                           std::size_t count) {
    std::int64_t sum = 0;
    std::size_t j = 0;
    for (; j + 2 * I::lanes <= padded; j += 2 * I::lanes) sum += column_maxima<I, Levels, 2>(table, padded, codes, count, j);
    for (; j + I::lanes <= padded; j += I::lanes) sum += column_maxima<I, Levels, 1>(table, padded, codes, count, j);
    for (; j < padded; j += Narrow::lanes) sum += column_maxima<Narrow, Levels, 1>(table, padded, codes, count, j);
    return sum;
}

template <class I, class Narrow = I>
inline std::int64_t centroid_maxsim(const std::int16_t* table, std::size_t padded, const std::uint16_t* codes,
                                    std::size_t count, std::size_t levels) {
    switch (levels) {
        case 1: return centroid_maxsim_levels<I, Narrow, 1>(table, padded, codes, count);
        case 2: return centroid_maxsim_levels<I, Narrow, 2>(table, padded, codes, count);
        default: return centroid_maxsim_levels<I, Narrow, 3>(table, padded, codes, count);
    }
}

}  // namespace kernels
}  // namespace latefold
