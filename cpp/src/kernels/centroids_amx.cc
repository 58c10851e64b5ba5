// A query's centroid table (project_bf16) on the AMX tile units: per block of 16 centroid rows
// and pair of query groups, 16 x 16 x 32 tile products (tdpbf16ps) stored straight into the table.
// The tile plan is maxsim_bf16_amx's (amx_tiles.h), with the rows in place of a document's.
#include "amx_tiles.h"

#include <algorithm>
#include <cstring>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void project_bf16_scalar(const std::uint16_t* rows, std::size_t count, std::size_t stride, std::size_t dim,
                         const std::uint16_t* query, std::size_t padded, float* out, std::size_t out_stride);

void project_bf16_amx(const std::uint16_t* rows, std::size_t count, std::size_t stride, std::size_t dim,
                      const std::uint16_t* query, std::size_t padded, float* out, std::size_t out_stride) {
    const std::size_t row_bytes = 2 * dim;
    if (dim % 2 || row_bytes > max_tile_row_bytes)
        return project_bf16_scalar(rows, count, stride, dim, query, padded, out, out_stride);
    const std::size_t chunks = row_bytes / 64, group_bytes = dim / 2 * 64, n_groups = padded / lane_group;
    const bool tail = row_bytes % 64 != 0;
    const auto* base = reinterpret_cast<const std::uint8_t*>(rows);
    const auto* q = reinterpret_cast<const std::uint8_t*>(query);
    alignas(64) std::uint8_t spare[16 * max_tile_row_bytes];
    alignas(64) float c[16][16];
    const TileScope scope{TileConfig(row_bytes)};
    for (std::size_t r0 = 0; r0 < count; r0 += 16) {
        const std::size_t n = std::min<std::size_t>(16, count - r0);
        prefetch_ahead(base, 2 * stride, row_bytes, r0);
        std::size_t a_stride = 0;
        const std::uint8_t* a = block_rows(base, 2 * stride, row_bytes, r0, n, spare, a_stride);
        for (std::size_t g = 0; g < n_groups; g += 2) {
            const bool two = g + 1 < n_groups;
            const std::uint8_t* b0 = q + g * group_bytes;
            const std::uint8_t* b1 = b0 + group_bytes;
            bf16_tile_product(a, a_stride, b0, b1, two, chunks, tail);
            float* o = out + r0 * out_stride + g * lane_group;
            if (n == 16) {  // the results straight into the table
                _tile_stored(4, o, out_stride * sizeof(float));
                if (two) _tile_stored(5, o + lane_group, out_stride * sizeof(float));
                continue;
            }
            auto last_rows = [&](float* to) {  // of the last block: only n of them
                for (std::size_t j = 0; j < n; ++j) std::memcpy(to + j * out_stride, c[j], sizeof(c[j]));
            };
            _tile_stored(4, c, 64);
            last_rows(o);
            if (two) {
                _tile_stored(5, c, 64);
                last_rows(o + lane_group);
            }
        }
    }
}

}  // namespace kernels
}  // namespace latefold
