// Private: the SIMD kernels, one set per instruction set, with identical signatures.
//
// Symbols are <kernel>_<isa>; the kernels of one ISA live in tiles_<isa>.cc, compiled with that
// ISA's flags.
// Only those files contain intrinsics. `kernels_for(isa)` returns the table for one path; the
// table of the active path is what the engines call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "latefold/common.h"
#include "latefold/simd.h"

namespace latefold {
namespace kernels {

/// Prefetches the cache lines of [p, p + bytes). Always inlined, and so must be any lambda that
/// calls it: GCC counts a prefetch as free of side effects, deems a function that only prefetches
/// "const" and deletes the calls to it.
[[gnu::always_inline]] inline void prefetch_lines(const void* p, std::size_t bytes) {
    const char* c = static_cast<const char*>(p);
    for (std::size_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b);
}

/// How much of a row read at random to prefetch: the hardware prefetcher streams the rest once
/// the row is read, and prefetching several whole 10 KB rows would hold every fill buffer.
constexpr std::size_t row_prefetch_bytes = 1024;

// Packed query layout (shared by every path):
//   the m query tokens are padded with zero rows to `padded` = m rounded up to 16, then cut into
//   groups of 32 rows (the last group has 16 rows when `padded` is an odd multiple of 16).
//   Group g, starting at token row s_g with width w_g, is stored at packed + s_g * dim as a
//   dim x w_g row-major matrix: element [k][j] = query[s_g + j][k].
// Zero rows contribute exactly 0 to the MaxSim sum (0 * x = 0 for finite x).
constexpr std::size_t query_group_rows = 32;
constexpr std::size_t query_pad_rows = 16;

/// MaxSim of one packed query against one document of `rows` float32 token rows
/// (row r at doc + r * row_stride). rows >= 1.
using maxsim_packed_fn = float (*)(const float* packed, std::size_t padded, std::size_t dim,
                                   const float* doc, std::size_t rows, std::size_t row_stride);

/// out[t * out_stride + c] = sum_k rows[t][k] * m[k][c] (t < count, c < width), for a
/// depth x width matrix m packed in the query layout above (width a multiple of 16).
using project_rows_fn = void (*)(const float* rows, std::size_t count, std::size_t row_stride,
                                 std::size_t depth, const float* packed, std::size_t width,
                                 float* out, std::size_t out_stride);

/// A sparse signed projection of tokens stored transposed (tokens in lanes):
///   out[j * columns + t] = sum over m in [start[j], start[j+1]) of sign[m] * x[index[m] * columns + t]
/// for j < outputs and t < columns (a multiple of 16): the AMS sketch with the input coordinates
/// grouped by output slot.
using signed_sums_fn = void (*)(const float* x, std::size_t columns, const std::uint32_t* index,
                                const float* sign, const std::uint32_t* start,
                                std::size_t outputs, float* out);

/// A dense product of tokens stored in lanes (the SimHash sketch of short items, many to a batch):
///   out[c * step + t] = sum over i < depth of m[c * depth + i] * x[i * step + t]
/// for c < columns and t < step (a multiple of 16); m holds one column per `depth` values.
using project_lanes_fn = void (*)(const float* x, std::size_t step, std::size_t depth, const float* m,
                                  std::size_t columns, float* out);

/// Per-partition sums of tokens stored in lanes (the signed sums' layout), for `reps`
/// repetitions of `width` consecutive rows each (reps * width <= 16):
///   out[q * rep_stride + part[q * part_stride + t] * out_stride + i] += v[(q * width + i) * step + t]
/// for q < reps, i < width, t < count, tokens added in increasing t to every output. step is a
/// multiple of 16; the 16 lanes from each multiple of 16 below count are read.
using lane_sums_fn = void (*)(const float* v, std::size_t step, std::size_t width, std::size_t reps,
                              std::size_t count, const std::uint32_t* part, std::size_t part_stride,
                              float* out, std::size_t rep_stride, std::size_t out_stride);

/// Rows to lanes (the signed sums' input layout): out[i * step + t] = rows[t * stride + i] for
/// i < dim, t < count, and 0 for count <= t < step (step a multiple of 16, at least count); and
/// squares[t] = sum over i of rows[t][i]^2 (in any order; 0 for t >= count).
using to_lanes_fn = void (*)(const float* rows, std::size_t count, std::size_t stride, std::size_t dim,
                             float* out, std::size_t step, float* squares);

/// The reference's partition index of a sign pattern: its loop, idx = (idx << 1) + (b_j ^ (idx & 1))
/// over the bits b_0 (most significant) .. b_{k-1}, makes bit j of idx the XOR of the pattern's
/// bits from the top down to j: a prefix XOR, in five steps. (Internal linkage, as fastscan_step.)
static constexpr std::uint32_t gray_decode(std::uint32_t pattern) noexcept {
    pattern ^= pattern >> 1;
    pattern ^= pattern >> 2;
    pattern ^= pattern >> 4;
    pattern ^= pattern >> 8;
    pattern ^= pattern >> 16;
    return pattern;
}

/// SimHash partitions of tokens in lanes, from their R * k sketch values (row c = r * k + j of
/// `lanes` values): part[r * lanes + t] = the reference's partition index of the sign bits
/// b_j = (value(r * k + j, t) > 0), b_0 most significant; uncertain[t] = 1 when some
/// |value(c, t)| <= norms[t] * bounds[c] (a sign that float32 cannot vouch for), else 0.
using sign_partitions_fn = void (*)(const float* sketch, std::size_t lanes, std::size_t reps,
                                    std::size_t k, const float* norms, const float* bounds,
                                    std::uint32_t* part, std::uint32_t* uncertain);

/// For each row t < count: index[t] = argmin over c < width of (bias[c] - 2 <row_t, m_c>) and
/// value[t] = that minimum, for a depth x width matrix m packed in the query layout (width a
/// multiple of 16; padding columns must carry bias = +inf). Ties go to the lowest column. With
/// bias[c] = ||m_c||^2 this is the nearest column in L2 (value + ||row||^2 = squared distance).
using nearest_rows_fn = void (*)(const float* rows, std::size_t count, std::size_t row_stride,
                                 std::size_t depth, const float* packed, const float* bias,
                                 std::size_t width, std::uint32_t* index, float* value);

/// 4-bit fast-scan codes, blocked: per block of 32 vectors, for each pair p of subspaces (pairs
/// even: padded with zero codes), 32 bytes, byte j = code(j, 2p) | code(j, 2p + 1) << 4.
/// Tables: per query, 16 entries T(s) per subspace s, each at most 127 (so that two add in a
/// byte), per group g of four pairs 128 bytes
///   [T(8g) T(8g+2) T(8g+4) T(8g+6) | T(8g+1) T(8g+3) T(8g+5) T(8g+7)]
/// (the low-nibble tables of the group's pairs, then the high-nibble ones: one 64-byte register
/// of each for the VBMI kernel, a 16-byte load per pair and nibble for the others). The tables of
/// padding subspaces, up to the end of the last group, are zero.
inline std::size_t fastscan_table_bytes(std::size_t pairs) noexcept { return (pairs + 3) / 4 * 128; }
/// Subspaces in a table, padding included.
inline std::size_t fastscan_table_subspaces(std::size_t pairs) noexcept { return fastscan_table_bytes(pairs) / 16; }
/// Offset of T(s) in a table.
inline std::size_t fastscan_table_offset(std::size_t s) noexcept {
    return s / 8 * 128 + (s & 1) * 64 + (s >> 1 & 3) * 16;
}
/// Writes the 16 entries of subspace s into a table.
inline void set_fastscan_table(std::uint8_t* table, std::size_t s, const std::uint8_t* entries) noexcept {
    std::memcpy(table + fastscan_table_offset(s), entries, 16);
}

/// 4-bit fast scan of `blocks` blocks for nq queries (tables fastscan_table_bytes(pairs) apart):
/// out[(q * blocks + b) * 32 + j] = sum over subspaces s of T_q(s)[code(j, s)] in uint16
/// arithmetic, and bit j of mask[q * blocks + b] set when low[q] < sum < high[q].
using fastscan_fn = void (*)(const std::uint8_t* codes, std::size_t blocks, std::size_t pairs,
                             const std::uint8_t* tables, std::size_t nq, const std::int32_t* low,
                             const std::int32_t* high, std::uint16_t* out, std::uint32_t* mask);

/// The fast-scan kernels add in 16 bits: no vector's sum of entries may exceed this.
constexpr std::size_t fastscan_sum_limit = 65535;
/// The most sub-quantizers a fast scan takes (so that fastscan_step leaves room for rounding).
constexpr std::size_t fastscan_max_m = fastscan_sum_limit / 2;

/// The step of a query's fast-scan tables: the widest range of a subspace over qmax, or, when the
/// entries of all subspaces could then add up past fastscan_sum_limit, the sum of the ranges over
/// (limit - m) (m <= fastscan_max_m; rounding adds at most m / 2); 1 when every range is 0.
/// Internal linkage: each instruction set's file computes it with its own flags.
static inline float fastscan_step(float widest, float total, std::size_t m, float qmax) noexcept {
    if (!(widest > 0.0f)) return 1.0f;
    const float by_sum = total / float(fastscan_sum_limit - m);
    return widest / qmax > by_sum ? widest / qmax : by_sum;
}

/// One query's fast-scan tables from its float tables `lut` (m subspaces x 16 entries): with
/// low_s the minimum of subspace s and delta = fastscan_step(widest range, sum of the ranges
/// (in subspace order), m, qmax), T(s)[c] = uint8(min(qmax, (lut[s][c] - low_s) * (1 / delta)) + 0.5)
/// (qmax <= 127), written into `table` (layout above); *base = sum of low_s (in subspace order),
/// *delta = delta. So sum_s lut[s][code_s] = base + delta * (sum of entries), off by at most
/// m * delta / 2, and no sum of entries exceeds fastscan_sum_limit.
using fastscan_table_fn = void (*)(const float* lut, std::size_t m, float qmax, std::uint8_t* table,
                                   float* base, float* delta);

/// dst[i] = float(src[i]) for IEEE binary16 src (exact: every half is a float).
using f16_to_f32_fn = void (*)(const half_bits* src, float* dst, std::size_t n);

/// Gathered inner products: out[i] = <q, row ids[i]> for i < count, where row r holds `dim`
/// values at base + r * stride (the graph search's distance kernel; rows float32 or float16).
using dot_rows_f32_fn = void (*)(const float* q, const float* base, std::size_t stride,
                                 const std::uint32_t* ids, std::size_t count, std::size_t dim,
                                 float* out);
using dot_rows_f16_fn = void (*)(const float* q, const half_bits* base, std::size_t stride,
                                 const std::uint32_t* ids, std::size_t count, std::size_t dim,
                                 float* out);

struct KernelTable {
    maxsim_packed_fn maxsim_packed;
    project_rows_fn project_rows;
    signed_sums_fn signed_sums;
    project_lanes_fn project_lanes;
    lane_sums_fn lane_sums;
    to_lanes_fn to_lanes;
    sign_partitions_fn sign_partitions;
    nearest_rows_fn nearest_rows;
    fastscan_fn fastscan;
    fastscan_table_fn fastscan_table;
    f16_to_f32_fn f16_to_f32;
    dot_rows_f32_fn dot_rows_f32;
    dot_rows_f16_fn dot_rows_f16;
};

/// IEEE binary16 -> binary32, exact (the scalar conversion, for tails and twins).
float half_to_float(half_bits h) noexcept;

float maxsim_packed_scalar(const float*, std::size_t, std::size_t, const float*, std::size_t,
                           std::size_t);
void project_rows_scalar(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, float*, std::size_t);
void signed_sums_scalar(const float*, std::size_t, const std::uint32_t*, const float*,
                       const std::uint32_t*, std::size_t, float*);
void project_lanes_scalar(const float*, std::size_t, std::size_t, const float*, std::size_t, float*);
void sign_partitions_scalar(const float*, std::size_t, std::size_t, std::size_t, const float*, const float*,
                            std::uint32_t*, std::uint32_t*);
void lane_sums_scalar(const float*, std::size_t, std::size_t, std::size_t, std::size_t, const std::uint32_t*,
                     std::size_t, float*, std::size_t, std::size_t);
void to_lanes_scalar(const float*, std::size_t, std::size_t, std::size_t, float*, std::size_t, float*);
void nearest_rows_scalar(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        const float*, std::size_t, std::uint32_t*, float*);
void fastscan_scalar(const std::uint8_t*, std::size_t, std::size_t, const std::uint8_t*,
                    std::size_t, const std::int32_t*, const std::int32_t*, std::uint16_t*,
                    std::uint32_t*);
void fastscan_table_scalar(const float*, std::size_t, float, std::uint8_t*, float*, float*);
void f16_to_f32_scalar(const half_bits*, float*, std::size_t);
void dot_rows_f32_scalar(const float*, const float*, std::size_t, const std::uint32_t*, std::size_t,
                       std::size_t, float*);
void dot_rows_f16_scalar(const float*, const half_bits*, std::size_t, const std::uint32_t*,
                       std::size_t, std::size_t, float*);
#ifdef LATEFOLD_HAVE_AVX2
float maxsim_packed_avx2(const float*, std::size_t, std::size_t, const float*, std::size_t,
                         std::size_t);
void project_rows_avx2(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, float*, std::size_t);
void signed_sums_avx2(const float*, std::size_t, const std::uint32_t*, const float*,
                       const std::uint32_t*, std::size_t, float*);
void project_lanes_avx2(const float*, std::size_t, std::size_t, const float*, std::size_t, float*);
void sign_partitions_avx2(const float*, std::size_t, std::size_t, std::size_t, const float*, const float*,
                          std::uint32_t*, std::uint32_t*);
void lane_sums_avx2(const float*, std::size_t, std::size_t, std::size_t, std::size_t, const std::uint32_t*,
                     std::size_t, float*, std::size_t, std::size_t);
void nearest_rows_avx2(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        const float*, std::size_t, std::uint32_t*, float*);
void fastscan_avx2(const std::uint8_t*, std::size_t, std::size_t, const std::uint8_t*,
                    std::size_t, const std::int32_t*, const std::int32_t*, std::uint16_t*,
                    std::uint32_t*);
void fastscan_table_avx2(const float*, std::size_t, float, std::uint8_t*, float*, float*);
void f16_to_f32_avx2(const half_bits*, float*, std::size_t);
void dot_rows_f32_avx2(const float*, const float*, std::size_t, const std::uint32_t*, std::size_t,
                       std::size_t, float*);
void dot_rows_f16_avx2(const float*, const half_bits*, std::size_t, const std::uint32_t*,
                       std::size_t, std::size_t, float*);
#endif
#ifdef LATEFOLD_HAVE_AVX512
float maxsim_packed_avx512(const float*, std::size_t, std::size_t, const float*, std::size_t,
                           std::size_t);
void project_rows_avx512(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, float*, std::size_t);
void signed_sums_avx512(const float*, std::size_t, const std::uint32_t*, const float*,
                       const std::uint32_t*, std::size_t, float*);
void project_lanes_avx512(const float*, std::size_t, std::size_t, const float*, std::size_t, float*);
void sign_partitions_avx512(const float*, std::size_t, std::size_t, std::size_t, const float*, const float*,
                            std::uint32_t*, std::uint32_t*);
void lane_sums_avx512(const float*, std::size_t, std::size_t, std::size_t, std::size_t, const std::uint32_t*,
                     std::size_t, float*, std::size_t, std::size_t);
void to_lanes_avx512(const float*, std::size_t, std::size_t, std::size_t, float*, std::size_t, float*);
void nearest_rows_avx512(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        const float*, std::size_t, std::uint32_t*, float*);
void fastscan_avx512(const std::uint8_t*, std::size_t, std::size_t, const std::uint8_t*,
                    std::size_t, const std::int32_t*, const std::int32_t*, std::uint16_t*,
                    std::uint32_t*);
void fastscan_table_avx512(const float*, std::size_t, float, std::uint8_t*, float*, float*);
void f16_to_f32_avx512(const half_bits*, float*, std::size_t);
void dot_rows_f32_avx512(const float*, const float*, std::size_t, const std::uint32_t*, std::size_t,
                       std::size_t, float*);
void dot_rows_f16_avx512(const float*, const half_bits*, std::size_t, const std::uint32_t*,
                       std::size_t, std::size_t, float*);
#endif
#ifdef LATEFOLD_HAVE_AVX512VNNI
void fastscan_avx512vnni(const std::uint8_t*, std::size_t, std::size_t, const std::uint8_t*,
                         std::size_t, const std::int32_t*, const std::int32_t*, std::uint16_t*,
                         std::uint32_t*);
#endif
#ifdef LATEFOLD_HAVE_NEON
float maxsim_packed_neon(const float*, std::size_t, std::size_t, const float*, std::size_t,
                         std::size_t);
void project_rows_neon(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        std::size_t, float*, std::size_t);
void signed_sums_neon(const float*, std::size_t, const std::uint32_t*, const float*,
                       const std::uint32_t*, std::size_t, float*);
void project_lanes_neon(const float*, std::size_t, std::size_t, const float*, std::size_t, float*);
void sign_partitions_neon(const float*, std::size_t, std::size_t, std::size_t, const float*, const float*,
                          std::uint32_t*, std::uint32_t*);
void nearest_rows_neon(const float*, std::size_t, std::size_t, std::size_t, const float*,
                        const float*, std::size_t, std::uint32_t*, float*);
void fastscan_neon(const std::uint8_t*, std::size_t, std::size_t, const std::uint8_t*,
                    std::size_t, const std::int32_t*, const std::int32_t*, std::uint16_t*,
                    std::uint32_t*);
void fastscan_table_neon(const float*, std::size_t, float, std::uint8_t*, float*, float*);
void f16_to_f32_neon(const half_bits*, float*, std::size_t);
void dot_rows_f32_neon(const float*, const float*, std::size_t, const std::uint32_t*, std::size_t,
                       std::size_t, float*);
void dot_rows_f16_neon(const float*, const half_bits*, std::size_t, const std::uint32_t*,
                       std::size_t, std::size_t, float*);
#endif

/// The table of one compiled path (the scalar table for a path not compiled in).
const KernelTable& kernels_for(Isa isa) noexcept;
/// The table of the active path.
inline const KernelTable& active_kernels() noexcept { return kernels_for(active_isa()); }

/// Rows of the packed form of an m-token query.
inline std::size_t padded_query_rows(std::size_t m) noexcept {
    return (m + query_pad_rows - 1) / query_pad_rows * query_pad_rows;
}

/// Bit j of the result: low < sums[j] < high, for 32 sums (the mask of fastscan_fn).
inline std::uint32_t fastscan_mask(const std::uint16_t* sums, std::int32_t low, std::int32_t high) {
    std::uint32_t mask = 0;
    for (int j = 0; j < 32; ++j) mask |= std::uint32_t(sums[j] > low && sums[j] < high) << j;
    return mask;
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

}  // namespace kernels
}  // namespace latefold
