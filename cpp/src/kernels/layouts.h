// Private: the data layouts the kernels read, and so every implementation of them must share
// (the CPU paths here, a GPU one later): the packed query layout and the 4-bit fast scan's codes
// and tables. No instruction-set code.
//
// The functions have internal linkage: the instruction-set files compile them with their own
// flags, and a copy built for one path must never be linked into the code of another.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace latefold {
namespace kernels {

// Packed query layout (shared by every path):
//   the m query tokens are padded with zero rows to `padded` = m rounded up to 16, then cut into
//   groups of 32 rows (the last group has 16 rows when `padded` is an odd multiple of 16).
//   Group g, starting at token row s_g with width w_g, is stored at packed + s_g * dim as a
//   dim x w_g row-major matrix: element [k][j] = query[s_g + j][k].
// Zero rows contribute exactly 0 to the MaxSim sum (0 * x = 0 for finite x).
// Any depth x width matrix read by columns (projections, centroids) is packed the same way.
constexpr std::size_t query_group_rows = 32;
constexpr std::size_t query_pad_rows = 16;

/// Rows of the packed form of an m-token query.
static inline std::size_t padded_query_rows(std::size_t m) noexcept {
    return (m + query_pad_rows - 1) / query_pad_rows * query_pad_rows;
}

/// Writes the n columns of a depth x n matrix, value(c, k) = element [k][c], in the packed
/// layout (columns padded with zeros to padded_query_rows(n)); `out` holds that many * depth.
template <class Value>
void pack_columns(std::size_t n, std::size_t depth, Value value, float* out) {
    const std::size_t padded = padded_query_rows(n);
    for (std::size_t start = 0; start < padded;) {
        const std::size_t width = start + query_group_rows <= padded ? query_group_rows : query_pad_rows;
        float* group = out + start * depth;
        for (std::size_t j = 0; j < width; ++j) {
            const std::size_t c = start + j;
            for (std::size_t k = 0; k < depth; ++k) group[k * width + j] = c < n ? value(c, k) : 0.0f;
        }
        start += width;
    }
}

// Lane layout of an int8 or bfloat16 query (the MaxSim kernels over int8 and bfloat16 tokens):
//   the m tokens padded with zero rows to `padded` = padded_query_rows(m), cut into groups of 16;
//   each 32-bit lane holds `per` = 4 / sizeof(T) consecutive values of one token (4 int8 or 2
//   bfloat16), so group g is lane_rows(dim, per) rows of 16 lanes (64 bytes):
//     element [r][t][b] = query[16 g + t][r * per + b]  (0 past the token's dim values)
//   at out + (g * lane_rows + r) * 16 * per + t * per + b. This is the form that VNNI / BF16 dot
//   products take as a register and AMX as a B tile (a row of 64 bytes per 4 or 2 depth steps).
constexpr std::size_t lane_group = 16;

static inline std::size_t lane_rows(std::size_t dim, std::size_t per) noexcept { return (dim + per - 1) / per; }

/// Elements of the lane layout of an m-token query.
static inline std::size_t lane_layout_size(std::size_t m, std::size_t dim, std::size_t per) noexcept {
    return padded_query_rows(m) * lane_rows(dim, per) * per;
}

/// Writes an m-token query, value(t, k) its element k of token t, in the lane layout.
template <class T, class Value>
void pack_lanes(std::size_t m, std::size_t dim, Value value, T* out) {
    constexpr std::size_t per = 4 / sizeof(T);
    const std::size_t rows = lane_rows(dim, per), padded = padded_query_rows(m);
    for (std::size_t g = 0; g < padded / lane_group; ++g)
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t t = 0; t < lane_group; ++t)
                for (std::size_t b = 0; b < per; ++b) {
                    const std::size_t token = g * lane_group + t, k = r * per + b;
                    out[((g * rows + r) * lane_group + t) * per + b] = token < m && k < dim ? value(token, k) : T(0);
                }
}

// 4-bit fast-scan codes, blocked: per block of 32 vectors, for each pair p of subspaces (pairs
// even: padded with zero codes), 32 bytes, byte j = code(j, 2p) | code(j, 2p + 1) << 4.
// Tables: per query, 16 entries T(s) per subspace s, each at most 127 (so that two add in a
// byte), per group g of four pairs 128 bytes
//   [T(8g) T(8g+2) T(8g+4) T(8g+6) | T(8g+1) T(8g+3) T(8g+5) T(8g+7)]
// (the low-nibble tables of the group's pairs, then the high-nibble ones: one 64-byte register
// of each for the VBMI kernel, a 16-byte load per pair and nibble for the others). The tables of
// padding subspaces, up to the end of the last group, are zero.

/// Bytes of one query's tables.
static inline std::size_t fastscan_table_bytes(std::size_t pairs) noexcept { return (pairs + 3) / 4 * 128; }
/// Subspaces in a table, padding included.
static inline std::size_t fastscan_table_subspaces(std::size_t pairs) noexcept {
    return fastscan_table_bytes(pairs) / 16;
}
/// Offset of T(s) in a table.
static inline std::size_t fastscan_table_offset(std::size_t s) noexcept {
    return s / 8 * 128 + (s & 1) * 64 + (s >> 1 & 3) * 16;
}
/// Writes the 16 entries of subspace s into a table.
static inline void set_fastscan_table(std::uint8_t* table, std::size_t s, const std::uint8_t* entries) noexcept {
    std::memcpy(table + fastscan_table_offset(s), entries, 16);
}

/// The fast-scan kernels add in 16 bits: no vector's sum of entries may exceed this.
constexpr std::size_t fastscan_sum_limit = 65535;
/// The most sub-quantizers a fast scan takes (so that fastscan_step leaves room for rounding).
constexpr std::size_t fastscan_max_m = fastscan_sum_limit / 2;

/// The step of a query's fast-scan tables: the widest range of a subspace over qmax, or, when the
/// entries of all subspaces could then add up past fastscan_sum_limit, the sum of the ranges over
/// (limit - m) (m <= fastscan_max_m; rounding adds at most m / 2); 1 when every range is 0.
static inline float fastscan_step(float widest, float total, std::size_t m, float qmax) noexcept {
    if (!(widest > 0.0f)) return 1.0f;
    const float by_sum = total / float(fastscan_sum_limit - m);
    return widest / qmax > by_sum ? widest / qmax : by_sum;
}

/// A fast scan's candidates in a block: bit j set when low < sums[j] < high, for 32 sums.
static inline std::uint32_t fastscan_mask(const std::uint16_t* sums, std::int32_t low, std::int32_t high) {
    std::uint32_t mask = 0;
    for (int j = 0; j < 32; ++j) mask |= std::uint32_t(sums[j] > low && sums[j] < high) << j;
    return mask;
}

}  // namespace kernels
}  // namespace latefold
