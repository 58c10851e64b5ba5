// Private: the AVX512-BF16 register tile shared by the bfloat16 MaxSim (maxsim_bf16_avx512bf16.cc)
// and the bfloat16 centroid table (centroids_avx512bf16.cc): N rows of bfloat16 values against P
// groups of 16 query tokens in the lane layout (layouts.h), each row broadcast 2 values at a time,
// vdpbf16ps adding 2 products per lane and instruction (twice float32 FMA's). Included only by
// *_avx512bf16.cc files.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace latefold {
namespace kernels {
namespace {

// acc[p][j] = the inner products of row j with the 16 tokens of group p (groups group_elems
// apart); rows `dim` values long, pointers may repeat.
template <int P, int N>
[[gnu::always_inline]] inline void dpbf16_tile(const std::uint16_t* q, std::size_t group_elems, std::size_t dim,
                                               const std::uint16_t* const (&row)[N], __m512 (&acc)[P][N]) {
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) acc[p][j] = _mm512_setzero_ps();
    auto step = [&](std::size_t r, std::size_t values) {
        __m512bh qv[P];
        for (int p = 0; p < P; ++p) qv[p] = (__m512bh)_mm512_loadu_si512(q + p * group_elems + r * 32);
        for (int j = 0; j < N; ++j) {
            std::uint32_t v = 0;  // the pair from value 2r on (a last odd value with a zero)
            std::memcpy(&v, row[j] + 2 * r, 2 * values);
            const __m512bh x = (__m512bh)_mm512_set1_epi32(std::int32_t(v));
            for (int p = 0; p < P; ++p) acc[p][j] = _mm512_dpbf16_ps(acc[p][j], qv[p], x);
        }
    };
    const std::size_t pairs = dim / 2;
    for (std::size_t r = 0; r < pairs; ++r) step(r, 2);
    if (dim % 2) step(pairs, 1);
}

}  // namespace
}  // namespace kernels
}  // namespace latefold
