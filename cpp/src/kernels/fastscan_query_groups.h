// Private: the fast-scan kernels' loop over queries, several per load of codes.
#pragma once

#include <cstddef>
#include <type_traits>

namespace latefold {
namespace kernels {

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

}  // namespace kernels
}  // namespace latefold
