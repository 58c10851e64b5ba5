// A query's centroid table from bfloat16 values (project_bf16) with AVX512-BF16: tiles of 12
// centroid rows against two groups of 16 query tokens (dpbf16_tile.h), stored into the table: twice
// the products per instruction of the float32 table (project_rows), for a table that only ranks
// documents approximately (TokenCentroids::query_table).
#include <algorithm>

#include "dpbf16_tile.h"
#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {
namespace {

// Rows [r0, r0 + n) against groups [g, g + P) (n <= N: the last rows repeated, their results unstored).
template <int P, int N>
inline void project_tile(const std::uint16_t* rows, std::size_t stride, std::size_t dim, const std::uint16_t* query,
                         std::size_t group_elems, std::size_t r0, std::size_t n, std::size_t g, float* out,
                         std::size_t out_stride) {
    const std::uint16_t* row[N];
    for (int j = 0; j < N; ++j) row[j] = rows + (r0 + std::min(std::size_t(j), n - 1)) * stride;
    __m512 acc[P][N];
    dpbf16_tile<P, N>(query + g * group_elems, group_elems, dim, row, acc);
    for (std::size_t j = 0; j < n; ++j)
        for (int p = 0; p < P; ++p)
            _mm512_storeu_ps(out + (r0 + j) * out_stride + (g + std::size_t(p)) * lane_group, acc[p][j]);
}

}  // namespace

void project_bf16_avx512bf16(const std::uint16_t* rows, std::size_t count, std::size_t stride, std::size_t dim,
                             const std::uint16_t* query, std::size_t padded, float* out, std::size_t out_stride) {
    constexpr std::size_t N = 12;  // 2 x 12 accumulators, 2 query registers and a broadcast: 27 of 32
    const std::size_t group_elems = lane_rows(dim, 2) * 32, n_groups = padded / lane_group;
    for (std::size_t r0 = 0; r0 < count; r0 += N) {
        const std::size_t n = std::min(N, count - r0);
        std::size_t g = 0;
        for (; g + 2 <= n_groups; g += 2)
            project_tile<2, N>(rows, stride, dim, query, group_elems, r0, n, g, out, out_stride);
        if (g < n_groups) project_tile<1, N>(rows, stride, dim, query, group_elems, r0, n, g, out, out_stride);
    }
}

}  // namespace kernels
}  // namespace latefold
