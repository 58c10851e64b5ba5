// MaxSim over int8 tokens (maxsim_i8) on the AMX tile units: a 16 x 16 x 64 tile product
// (tdpbssd, signed by signed bytes, exact in int32) per block of 16 document rows, query group
// and 64 bytes of depth, 16 times the multiply-adds of an AVX-512 VNNI instruction. The tile
// plan is in amx_tiles.h; the results are the same bits as the scalar twin's.
#include "amx_tiles.h"

#include <algorithm>
#include <cmath>

#include "layouts.h"
#include "table.h"

namespace latefold {
namespace kernels {

void maxsim_i8_avx512vnni(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                          const std::int8_t* tokens, const float* scales, std::size_t stride,
                          const std::int64_t* offsets, std::size_t count, float* out);

void maxsim_i8_amx(const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,
                   const std::int8_t* tokens, const float* scales, std::size_t stride,
                   const std::int64_t* offsets, std::size_t count, float* out) {
    if (dim % 4 || dim > max_tile_row_bytes)
        return maxsim_i8_avx512vnni(query, query_scales, padded, dim, tokens, scales, stride, offsets, count, out);
    const std::size_t chunks = dim / 64, group_bytes = dim / 4 * 64, n_groups = padded / lane_group;
    const bool tail = dim % 64 != 0;
    const auto* base = reinterpret_cast<const std::uint8_t*>(tokens);
    const auto* q = reinterpret_cast<const std::uint8_t*>(query);
    alignas(64) std::uint8_t spare[16 * max_tile_row_bytes];
    alignas(64) std::int32_t c[2][16][16];
    const TileScope scope{TileConfig(dim)};
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
                prefetch_ahead(base, stride, dim, r0);
                std::size_t a_stride = 0;
                const std::uint8_t* a = block_rows(base, stride, dim, r0, n, spare, a_stride);
                _tile_zero(4);
                if (two) _tile_zero(5);
                for (std::size_t ch = 0; ch < chunks; ++ch) {
                    _tile_loadd(0, a + ch * 64, a_stride);
                    _tile_loadd(2, b0 + ch * 1024, 64);
                    _tile_dpbssd(4, 0, 2);
                    if (two) {
                        _tile_loadd(3, b1 + ch * 1024, 64);
                        _tile_dpbssd(5, 0, 3);
                    }
                }
                if (tail) {
                    _tile_loadd(1, a + chunks * 64, a_stride);
                    _tile_loadd(6, b0 + chunks * 1024, 64);
                    _tile_dpbssd(4, 1, 6);
                    if (two) {
                        _tile_loadd(7, b1 + chunks * 1024, 64);
                        _tile_dpbssd(5, 1, 7);
                    }
                }
                _tile_stored(4, c[0], 64);
                if (two) _tile_stored(5, c[1], 64);
                for (std::size_t j = 0; j < n; ++j) {
                    const __m512 s = _mm512_set1_ps(scales[r0 + j]);
                    best[0] = _mm512_max_ps(best[0], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[0][j])), s));
                    if (two)
                        best[1] = _mm512_max_ps(best[1], _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[1][j])), s));
                }
            }
            for (std::size_t p = 0; p < (two ? 2u : 1u); ++p) {
                alignas(64) float lane[16];
                _mm512_store_ps(lane, _mm512_mul_ps(best[p], _mm512_loadu_ps(query_scales + (g + p) * 16)));
                for (float v : lane) total += v;
            }
        }
        out[i] = total;
    }
}

}  // namespace kernels
}  // namespace latefold
