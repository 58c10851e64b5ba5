// Private: the AMX tile plan shared by the MaxSim kernels over int8 and bfloat16 tokens and the
// bfloat16 centroid table (included only by the *_amx.cc files).
//
// A = 16 document rows x 64 bytes of depth (read in place, `stride` apart), B = 64 bytes of depth
// of a query group in the lane layout (layouts.h: 16 rows of 64 bytes), C = 16 x 16 results,
// document rows by query tokens. Tiles: 0 A, 1 A's tail (the depth past the last 64 bytes),
// 2 and 3 B of two groups, 4 and 5 their C, 6 and 7 B's tails. The bfloat16 kernels share their
// tile loop (bf16_tile_product); the int8 one writes its own: one template for both (the
// instruction chosen at compile time) measured 7 % slower for bfloat16 batches.
#pragma once

#include <immintrin.h>

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

/// Tiles 4 (and 5, with `two`) = 16 rows at `a` (`a_stride` bytes apart) times the bfloat16 query
/// groups at b0 (and b1) in the lane layout (tdpbf16ps, float32 sums): `chunks` steps of 64 bytes
/// of depth, then with `tail` the rest (tiles 1, 6, 7).
[[gnu::always_inline]] inline void bf16_tile_product(const std::uint8_t* a, std::size_t a_stride, const std::uint8_t* b0,
                                                     const std::uint8_t* b1, bool two, std::size_t chunks, bool tail) {
    _tile_zero(4);
    if (two) _tile_zero(5);
    for (std::size_t ch = 0; ch < chunks; ++ch) {
        _tile_loadd(0, a + ch * 64, a_stride);
        _tile_loadd(2, b0 + ch * 1024, 64);
        _tile_dpbf16ps(4, 0, 2);
        if (two) {
            _tile_loadd(3, b1 + ch * 1024, 64);
            _tile_dpbf16ps(5, 0, 3);
        }
    }
    if (tail) {
        _tile_loadd(1, a + chunks * 64, a_stride);
        _tile_loadd(6, b0 + chunks * 1024, 64);
        _tile_dpbf16ps(4, 1, 6);
        if (two) {
            _tile_loadd(7, b1 + chunks * 1024, 64);
            _tile_dpbf16ps(5, 1, 7);
        }
    }
}

}  // namespace
}  // namespace kernels
}  // namespace latefold
