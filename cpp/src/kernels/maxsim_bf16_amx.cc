// MaxSim over bfloat16 tokens (maxsim_bf16) on the AMX tile units: a 16 x 16 x 32 tile product
// (tdpbf16ps, float32 accumulation) per block of 16 document rows, query group and 32 values of
// depth. The tile plan is in amx_tiles.h.
#include "amx_tiles.h"

#include <algorithm>
#include <cmath>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_bf16_avx512bf16(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                            std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out);

void maxsim_bf16_amx(const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,
                     std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t row_bytes = 2 * dim;
    if (dim % 2 || row_bytes > max_tile_row_bytes)
        return maxsim_bf16_avx512bf16(query, padded, dim, tokens, stride, offsets, count, out);
    const std::size_t chunks = row_bytes / 64, group_bytes = dim / 2 * 64, n_groups = padded / lane_group;
    const bool tail = row_bytes % 64 != 0;
    const auto* base = reinterpret_cast<const std::uint8_t*>(tokens);
    const auto* q = reinterpret_cast<const std::uint8_t*>(query);
    alignas(64) std::uint8_t spare[16 * max_tile_row_bytes];
    alignas(64) float c[2][16][16];
    const TileScope scope{TileConfig(row_bytes)};
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        float total = 0.0f;
        for (std::size_t g = 0; g < n_groups; g += 2) {
            const bool two = g + 1 < n_groups;
            const std::uint8_t* b0 = q + g * group_bytes;
            const std::uint8_t* b1 = b0 + group_bytes;
            __m512 best[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)};
            for (std::size_t r0 = first; r0 < last; r0 += 16) {
                const std::size_t n = std::min<std::size_t>(16, last - r0);
                prefetch_ahead(base, 2 * stride, row_bytes, r0);
                std::size_t a_stride = 0;
                const std::uint8_t* a = block_rows(base, 2 * stride, row_bytes, r0, n, spare, a_stride);
                bf16_tile_product(a, a_stride, b0, b1, two, chunks, tail);
                _tile_stored(4, c[0], 64);
                if (two) _tile_stored(5, c[1], 64);
                for (std::size_t j = 0; j < n; ++j) {
                    best[0] = _mm512_max_ps(best[0], _mm512_load_ps(c[0][j]));
                    if (two) best[1] = _mm512_max_ps(best[1], _mm512_load_ps(c[1][j]));
                }
            }
            for (std::size_t p = 0; p < (two ? 2u : 1u); ++p) {
                alignas(64) float lane[16];
                _mm512_store_ps(lane, best[p]);
                for (float v : lane) total += v;
            }
        }
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
