// MaxSim over bfloat16 tokens (maxsim_bf16) with AVX512-BF16: register tiles (dpbf16_tile.h) as in
// tile_templates.h, 16 query tokens per register (2 values of a token per lane).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "dpbf16_tile.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// N document rows (pointers may repeat: a repeated row cannot change a max) against P groups.
template <int P, int N>
inline void tile(const std::uint16_t* q, std::size_t group_elems, std::size_t dim, const std::uint16_t* const (&row)[N],
                 __m512 (&best)[P]) {
    __m512 acc[P][N];
    dpbf16_tile<P, N>(q, group_elems, dim, row, acc);
    for (int p = 0; p < P; ++p)
        for (int j = 0; j < N; ++j) best[p] = _mm512_max_ps(best[p], acc[p][j]);
}

// P groups of the query against one document (rows [first, last)); adds to `total` in token order.
template <int P, int N>
inline void groups(const std::uint16_t* q, std::size_t group_elems, std::size_t dim, const std::uint16_t* tokens,
                   std::size_t stride, std::size_t first, std::size_t last, float& total) {
    __m512 best[P];
    for (int p = 0; p < P; ++p) best[p] = _mm512_set1_ps(-INFINITY);
    for (std::size_t r0 = first; r0 < last; r0 += N) {
        const std::uint16_t* row[N];
        for (int j = 0; j < N; ++j) row[j] = tokens + std::min(r0 + std::size_t(j), last - 1) * stride;
        tile<P, N>(q, group_elems, dim, row, best);
    }
    for (int p = 0; p < P; ++p) {
        alignas(64) float lane[16];
        _mm512_store_ps(lane, best[p]);
        for (float v : lane) total += v;
    }
}

}  // namespace

void maxsim_bf16_avx512bf16(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                            std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t group_elems = lane_rows(dim, 2) * 32, n_groups = padded / lane_group;
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        float total = 0.0f;
        std::size_t g = 0;
        for (; g + 2 <= n_groups; g += 2)
            groups<2, 12>(query + g * group_elems, group_elems, dim, tokens, stride, first, last, total);
        if (g < n_groups) groups<1, 16>(query + g * group_elems, group_elems, dim, tokens, stride, first, last, total);
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
