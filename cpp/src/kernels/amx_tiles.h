// Private: the AMX tile plan shared by the MaxSim kernels over int8 and bfloat16 tokens (included
// only by the *_amx.cc files).
//
// A = 16 document rows x 64 bytes of depth (read in place, `stride` apart), B = 64 bytes of depth
// of a query group in the lane layout (layouts.h: 16 rows of 64 bytes), C = 16 x 16 results,
// document rows by query tokens. Tiles: 0 A, 1 A's tail (the depth past the last 64 bytes),
// 2 and 3 B of two groups, 4 and 5 their C, 6 and 7 B's tails.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>

namespace latefold {
namespace kernels {
namespace {

struct alignas(64) TileConfig {
    std::uint8_t palette = 1, start_row = 0, reserved[14] = {};
    std::uint16_t colsb[16] = {};
    std::uint8_t rows[16] = {};

    // `row_bytes` of depth per document row (a multiple of 4, at most max_tile_row_bytes); a B
    // row holds 4 bytes of depth per query token (4 int8 or 2 bfloat16 values).
    explicit TileConfig(std::size_t row_bytes) {
        const std::size_t tail = row_bytes % 64;
        for (int t : {0, 2, 3, 4, 5}) rows[t] = 16, colsb[t] = 64;
        if (tail) {
            rows[1] = 16, colsb[1] = std::uint16_t(tail);
            rows[6] = rows[7] = std::uint8_t(tail / 4), colsb[6] = colsb[7] = 64;
        }
    }
};

/// Documents whose last block of rows is copied (so that A never reads past the rows) are at most
/// this many bytes of depth; wider ones go to the vector kernels.
constexpr std::size_t max_tile_row_bytes = 1024;

/// Loads the configuration for this thread and releases the tiles on leaving the scope (another
/// user of AMX in the same thread, such as a BLAS, configures its own).
class TileScope {
public:
    explicit TileScope(const TileConfig& config) { _tile_loadconfig(&config); }
    ~TileScope() { _tile_release(); }
    TileScope(const TileScope&) = delete;
    TileScope& operator=(const TileScope&) = delete;
};

/// Blocks of rows ahead of r0 whose cache lines are requested before they are needed: one query
/// streams its documents from memory at a tile product per block, too fast for the hardware
/// prefetchers alone. (A prefetch past the last row is harmless: it never faults.)
constexpr std::size_t prefetch_blocks = 2;

[[gnu::always_inline]] inline void prefetch_ahead(const std::uint8_t* tokens, std::size_t stride_bytes,
                                                  std::size_t row_bytes, std::size_t r0) {
    const std::uint8_t* ahead = tokens + (r0 + 16 * prefetch_blocks) * stride_bytes;
    for (std::size_t j = 0; j < 16; ++j)
        for (std::size_t b = 0; b < row_bytes; b += 64) _mm_prefetch(reinterpret_cast<const char*>(ahead + j * stride_bytes + b), _MM_HINT_T0);
}

/// The A rows of block [r0, r0 + n) of a document: in place when n == 16, else copied into
/// `spare` (16 rows of row_bytes; rows past n left as they are: their results are not read).
inline const std::uint8_t* block_rows(const std::uint8_t* tokens, std::size_t stride_bytes, std::size_t row_bytes,
                                      std::size_t r0, std::size_t n, std::uint8_t* spare, std::size_t& a_stride) {
    const std::uint8_t* first = tokens + r0 * stride_bytes;
    if (n == 16) {
        a_stride = stride_bytes;
        return first;
    }
    for (std::size_t j = 0; j < n; ++j) std::memcpy(spare + j * row_bytes, first + j * stride_bytes, row_bytes);
    a_stride = row_bytes;
    return spare;
}

/// MaxSim of one query against `count` documents on the tiles (both kernels' loop): for each
/// document, pair of query groups and block of 16 rows, C = rows x query group over the depth
/// (`int8`: tdpbssd on bytes, exact int32, each row's result times its scale; else tdpbf16ps on
/// bfloat16 pairs, float32), then the running maximum of each query token over the block's rows;
/// out[i] = sum over tokens, in order, of (query_scales[t] or 1) * that maximum. `row_bytes` is a
/// multiple of 4 and at most max_tile_row_bytes; `stride_bytes` is the distance between rows.
template <bool int8>
inline void tile_maxsim(const std::uint8_t* query, const float* query_scales, std::size_t padded,
                        std::size_t row_bytes, const std::uint8_t* tokens, std::size_t stride_bytes,
                        const float* scales, const std::int64_t* offsets, std::size_t count, float* out) {
    const std::size_t chunks = row_bytes / 64, group_bytes = row_bytes / 4 * 64, n_groups = padded / 16;
    const bool tail = row_bytes % 64 != 0;
    alignas(64) std::uint8_t spare[16 * max_tile_row_bytes];
    alignas(64) std::uint32_t c[2][16][16];  // int32 or float32 results, by type
    const TileScope scope{TileConfig(row_bytes)};
// The tile instruction of the type (tile numbers must be literals: the intrinsics paste them).
#define LATEFOLD_TILE_PRODUCT(c, a, b) \
    do {                                \
        if constexpr (int8)             \
            _tile_dpbssd(c, a, b);      \
        else                            \
            _tile_dpbf16ps(c, a, b);    \
    } while (0)
    for (std::size_t i = 0; i < count; ++i) {
        const std::size_t first = std::size_t(offsets[i]), last = std::size_t(offsets[i + 1]);
        float total = 0.0f;
        for (std::size_t g = 0; g < n_groups; g += 2) {
            const bool two = g + 1 < n_groups;
            const std::uint8_t* b0 = query + g * group_bytes;
            const std::uint8_t* b1 = b0 + group_bytes;
            __m512 best[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)};
            for (std::size_t r0 = first; r0 < last; r0 += 16) {
                const std::size_t n = std::min<std::size_t>(16, last - r0);
                prefetch_ahead(tokens, stride_bytes, row_bytes, r0);
                std::size_t a_stride = 0;
                const std::uint8_t* a = block_rows(tokens, stride_bytes, row_bytes, r0, n, spare, a_stride);
                _tile_zero(4);
                if (two) _tile_zero(5);
                for (std::size_t ch = 0; ch < chunks; ++ch) {
                    _tile_loadd(0, a + ch * 64, a_stride);
                    _tile_loadd(2, b0 + ch * 1024, 64);
                    LATEFOLD_TILE_PRODUCT(4, 0, 2);
                    if (two) {
                        _tile_loadd(3, b1 + ch * 1024, 64);
                        LATEFOLD_TILE_PRODUCT(5, 0, 3);
                    }
                }
                if (tail) {
                    _tile_loadd(1, a + chunks * 64, a_stride);
                    _tile_loadd(6, b0 + chunks * 1024, 64);
                    LATEFOLD_TILE_PRODUCT(4, 1, 6);
                    if (two) {
                        _tile_loadd(7, b1 + chunks * 1024, 64);
                        LATEFOLD_TILE_PRODUCT(5, 1, 7);
                    }
                }
                _tile_stored(4, c[0], 64);
                if (two) _tile_stored(5, c[1], 64);
                for (std::size_t j = 0; j < n; ++j)
                    for (int p = 0; p < (two ? 2 : 1); ++p) {
                        __m512 v;
                        if constexpr (int8)
                            v = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c[p][j])), _mm512_set1_ps(scales[r0 + j]));
                        else
                            v = _mm512_castsi512_ps(_mm512_load_si512(c[p][j]));
                        best[p] = _mm512_max_ps(best[p], v);
                    }
            }
            for (int p = 0; p < (two ? 2 : 1); ++p) {
                alignas(64) float lane[16];
                const __m512 b = query_scales ? _mm512_mul_ps(best[p], _mm512_loadu_ps(query_scales + (g + p) * 16)) : best[p];
                _mm512_store_ps(lane, b);
                for (float v : lane) total += v;
            }
        }
        out[i] = total;
    }
#undef LATEFOLD_TILE_PRODUCT
}

}  // namespace
}  // namespace kernels
}  // namespace latefold
