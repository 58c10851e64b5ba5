// Private: the kernels, their contracts and the table of the active instruction-set path.
//
// LATEFOLD_KERNELS below is the one list of kernels: X(name, result, (parameters)), each with its
// contract. From it come the members of KernelTable and, in table.cc, the prototypes and the
// table of every path. A kernel <name> is implemented as <name>_<isa> in
// kernels/<family>_<isa>.cc, compiled with that path's flags; only those files hold
// intrinsics (<family>_portable.cc: plain C++ that several paths share, built for the
// baseline). Every kernel has a scalar twin (<family>_scalar.cc), the oracle of the tests; a
// path's table is the scalar one with the kernels that path implements put in (table.cc).
// Adding a kernel: one entry here, its scalar twin, its SIMD versions, and their names in
// table.cc's lists.
#pragma once

#include <cstddef>
#include <cstdint>

#include "latefold/common.h"
#include "latefold/simd.h"
#include "layouts.h"

namespace latefold {
namespace kernels {

#define LATEFOLD_KERNELS(X)                                                                                    \
    /* MaxSim (maxsim_<isa>.cc) */                                                                             \
                                                                                                               \
    /* MaxSim of one packed query (layouts.h) against one document of `rows` float32 token rows                \
       (row r at doc + r * row_stride). rows >= 1. `stream`: the rows are not yet in cache, so each tile       \
       requests the next tile's rows while it computes (a request for rows already in cache only costs).       \
       `flag`: the rows are not known to be finite: the result is NaN when one of their values is not, and     \
       may be when sums of finite values overflow (the caller looks for the value, and scores unflagged        \
       when there is none). */                                                                                 \
    X(maxsim_packed, float,                                                                                    \
      (const float* packed, std::size_t padded, std::size_t dim, const float* doc, std::size_t rows,           \
       std::size_t row_stride, bool stream, bool flag))                                                        \
    /* maxsim_packed over float16 rows read in place: each tile's rows are widened (exactly) as the tiles      \
       reach them, so that reading them from memory overlaps the arithmetic; the result has maxsim_packed's    \
       bits over the widened rows. */                                                                          \
    X(maxsim_packed_f16, float,                                                                                \
      (const float* packed, std::size_t padded, std::size_t dim, const half_bits* doc, std::size_t rows,       \
       std::size_t row_stride, bool stream, bool flag))                                                        \
                                                                                                               \
    /* FDE encoding (fde_<isa>.cc) */                                                                          \
                                                                                                               \
    /* out[t * out_stride + c] = sum_k rows[t][k] * m[k][c] (t < count, c < width), for a depth x width        \
       matrix m packed in the query layout (width a multiple of 16). */                                        \
    X(project_rows, void,                                                                                      \
      (const float* rows, std::size_t count, std::size_t row_stride, std::size_t depth, const float* packed,   \
       std::size_t width, float* out, std::size_t out_stride))                                                 \
    /* A sparse signed projection of tokens stored transposed (tokens in lanes):                               \
         out[j * columns + t] = sum over m in [start[j], start[j+1]) of sign[m] * x[index[m] * columns + t]    \
       for j < outputs and t < columns (a multiple of 16): the AMS sketch with the input coordinates           \
       grouped by output slot. */                                                                              \
    X(signed_sums, void,                                                                                       \
      (const float* x, std::size_t columns, const std::uint32_t* index, const float* sign,                     \
       const std::uint32_t* start, std::size_t outputs, float* out))                                           \
    /* A dense product of tokens stored in lanes (the SimHash sketch of short items, many to a batch):         \
         out[c * step + t] = sum over i < depth of m[c * depth + i] * x[i * step + t]                          \
       for c < columns and t < step (a multiple of 16); m holds one column per `depth` values. */              \
    X(project_lanes, void,                                                                                     \
      (const float* x, std::size_t step, std::size_t depth, const float* m, std::size_t columns, float* out))  \
    /* Per-partition sums of tokens stored in lanes (the signed sums' layout), for `reps` repetitions of       \
       `width` consecutive rows each (reps * width <= 16):                                                     \
         out[q * rep_stride + part[q * part_stride + t] * out_stride + i] += v[(q * width + i) * step + t]     \
       for q < reps, i < width, t < count, tokens added in increasing t to every output. step is a             \
       multiple of 16; the 16 lanes from each multiple of 16 below count are read. */                          \
    X(lane_sums, void,                                                                                         \
      (const float* v, std::size_t step, std::size_t width, std::size_t reps, std::size_t count,               \
       const std::uint32_t* part, std::size_t part_stride, float* out, std::size_t rep_stride,                 \
       std::size_t out_stride))                                                                                \
    /* Rows to lanes (the signed sums' input layout): out[i * step + t] = rows[t * stride + i] for i < dim,    \
       t < count, and 0 for count <= t < step (step a multiple of 16, at least count); and                     \
       squares[t] = sum over i of rows[t][i]^2 (in any order; 0 for t >= count). */                            \
    X(to_lanes, void,                                                                                          \
      (const float* rows, std::size_t count, std::size_t stride, std::size_t dim, float* out,                  \
       std::size_t step, float* squares))                                                                      \
    /* SimHash partitions of tokens in lanes, from their R * k sketch values (row c = r * k + j of `lanes`     \
       values): part[r * lanes + t] = the reference's partition index (gray_decode) of the sign bits           \
       b_j = (value(r * k + j, t) > 0), b_0 most significant; uncertain[t] = 1 when some                       \
       |value(c, t)| <= norms[t] * bounds[c] (a sign that float32 cannot vouch for), else 0. */                \
    X(sign_partitions, void,                                                                                   \
      (const float* sketch, std::size_t lanes, std::size_t reps, std::size_t k, const float* norms,            \
       const float* bounds, std::uint32_t* part, std::uint32_t* uncertain))                                    \
                                                                                                               \
    /* k-means and PQ encoding (nearest_<isa>.cc) */                                                           \
                                                                                                               \
    /* For each row t < count: index[t] = argmin over c < width of (bias[c] - 2 <row_t, m_c>) and              \
       value[t] = that minimum, for a depth x width matrix m packed in the query layout (width a multiple      \
       of 16; padding columns must carry bias = +inf). Ties go to the lowest column. With                      \
       bias[c] = ||m_c||^2 this is the nearest column in L2 (value + ||row||^2 = squared distance). */         \
    X(nearest_rows, void,                                                                                      \
      (const float* rows, std::size_t count, std::size_t row_stride, std::size_t depth, const float* packed,   \
       const float* bias, std::size_t width, std::uint32_t* index, float* value))                              \
                                                                                                               \
    /* 4-bit PQ fast scan (fastscan_<isa>.cc; layouts in layouts.h) */                                         \
                                                                                                               \
    /* Fast scan of `blocks` blocks for nq queries (tables fastscan_table_bytes(pairs) apart):                 \
       out[(q * blocks + b) * 32 + j] = sum over subspaces s of T_q(s)[code(j, s)] in uint16 arithmetic,       \
       and bit j of mask[q * blocks + b] set when low[q] < sum < high[q] (fastscan_mask). */                   \
    X(fastscan, void,                                                                                          \
      (const std::uint8_t* codes, std::size_t blocks, std::size_t pairs, const std::uint8_t* tables,           \
       std::size_t nq, const std::int32_t* low, const std::int32_t* high, std::uint16_t* out,                  \
       std::uint32_t* mask))                                                                                   \
    /* One query's fast-scan tables from its float tables `lut` (m subspaces x 16 entries): with low_s the     \
       minimum of subspace s and delta = fastscan_step(widest range, sum of the ranges (in subspace            \
       order), m, qmax), T(s)[c] = uint8(min(qmax, (lut[s][c] - low_s) * (1 / delta)) + 0.5)                   \
       (qmax <= 127), written into `table`; *base = sum of low_s (in subspace order), *delta = delta. So       \
       sum_s lut[s][code_s] = base + delta * (sum of entries), off by at most m * delta / 2, and no sum of     \
       entries exceeds fastscan_sum_limit. */                                                                  \
    X(fastscan_table, void,                                                                                    \
      (const float* lut, std::size_t m, float qmax, std::uint8_t* table, float* base, float* delta))           \
                                                                                                               \
    /* PQ with float tables, and the fast scan's code layout (pq_scan_<isa>.cc) */                             \
                                                                                                               \
    /* ADC estimates of gathered vectors from float tables (m x 2^nbits): out[i] = A(codes + rows[i] *         \
       code_size) for i < count, where A(c), one vector's estimate, is the sum over s < m of                   \
       tables[s * 2^nbits + code_s], code_s = c[s] (nbits 8) or nibble s % 2 of c[s / 2] (nbits 4, low         \
       nibble first). The order of the additions is part of the contract, so that every path gives the         \
       same bits: four partial sums, subspace s into sum s % 4 for s < 4 * (m / 4) and the others into         \
       sum 0 (nbits 8) or sum s % 2 (nbits 4), each in increasing s; A = (sum0 + sum1) + (sum2 + sum3). */     \
    X(adc_rows, void,                                                                                          \
      (const float* tables, const std::uint8_t* codes, std::size_t code_size, const std::uint32_t* rows,       \
       std::size_t count, std::size_t m, std::size_t nbits, float* out))                                       \
    /* 8-bit ADC estimates of `count` consecutive vectors (m code bytes each) for nq queries (query q's        \
       float tables, m x 256, at tables + q * m * 256):                                                        \
         out[q * count + i] = sign * (sum over s < m of table_q[s * 256 + codes[i * m + s]])                   \
       with the sum in increasing s for the first 4 * (count / 4) vectors and A's order (adc_rows) for         \
       the last count % 4 (the order of the unrolled scan: every path gives the same bits). */                 \
    X(adc_scan, void,                                                                                          \
      (const float* tables, std::size_t nq, const std::uint8_t* codes, std::size_t count, std::size_t m,       \
       float sign, float* out))                                                                                \
    /* The 4-bit codes of `count` consecutive vectors (`bytes` bytes each) in the fast scan's blocked          \
       layout with `pairs` >= bytes pairs (layouts.h): out[(b * pairs + p) * 32 + j] = byte p of vector        \
       32 b + j, and 0 past the last vector and for p >= bytes; out holds ceil(count / 32) * pairs * 32        \
       bytes. */                                                                                               \
    X(block_codes, void,                                                                                       \
      (const std::uint8_t* codes, std::size_t count, std::size_t bytes, std::size_t pairs, std::uint8_t* out)) \
                                                                                                               \
    /* MaxSim over int8 and bfloat16 tokens (maxsim_int8_<isa>.cc, maxsim_bf16_<isa>.cc): one query in     \
       the lane layout (layouts.h; `padded` rows) against `count` documents, document i the rows             \
       offsets[i] .. offsets[i+1] - 1 (at least one) of `tokens`, row r at tokens + r * stride:              \
       int8 (row r's values scales[r] * int8, the query's token t query_scales[t] * int8):                   \
         out[i] = sum over t < padded, in increasing t, of query_scales[t] * (max over rows r of             \
                  scales[r] * float(<q_t, x_r>)), the inner products exact in int32 (dim <= 2^16):         \
       every path gives the same bits. */                                                                    \
    X(maxsim_i8, void,                                                                                       \
      (const std::int8_t* query, const float* query_scales, std::size_t padded, std::size_t dim,             \
       const std::int8_t* tokens, const float* scales, std::size_t stride, const std::int64_t* offsets,      \
       std::size_t count, float* out))                                                                       \
    /* bfloat16: out[i] = sum over t < padded, in increasing t, of max over r of <q_t, x_r>, the products     \
       exact in float32 and added in float32 (the order of those additions, and the flushing of              \
       subnormal results, may differ between paths: state tolerances, not bits). */                          \
    X(maxsim_bf16, void,                                                                                     \
      (const std::uint16_t* query, std::size_t padded, std::size_t dim, const std::uint16_t* tokens,         \
       std::size_t stride, const std::int64_t* offsets, std::size_t count, float* out))                      \
                                                                                                             \
    /* Centroid interaction (centroids_<isa>.cc) */                                                           \
                                                                                                               \
    /* Approximate MaxSim of one document from its tokens' centroid codes (PLAID's centroid interaction,     \
       with `levels` residual codes a token), over a query's table quantized to int16: token t's row           \
       r_t[j] = sum over l < levels of table[codes[t * levels + l] * padded + j], best[j] = max over           \
       t < count of r_t[j], returned as the sum of best[j] over j < padded (a multiple of 16: a query's         \
       similarity to each centroid, `padded` columns per centroid; padding columns hold 0). Integer             \
       arithmetic: every path gives the same value. The caller keeps every r_t[j] within int16 (the sum of    \
       the levels' largest magnitudes at most 32767). count >= 1, 1 <= levels <= 3. */                         \
    X(centroid_maxsim, std::int64_t,                                                                           \
      (const std::int16_t* table, std::size_t padded, const std::uint16_t* codes, std::size_t count,          \
       std::size_t levels))                                                                                    \
    /* A query's centroid table from bfloat16 values (the tile path's form of project_rows):                  \
       out[r * out_stride + j] = sum over k < dim of rows[r][k] * q_j[k] for r < count and j < padded, row r    \
       at rows + r * stride, the query's `padded` tokens in the bfloat16 lane layout (layouts.h); the           \
       products exact in float32 and added in float32 (the order of those additions, and the flushing of       \
       subnormal results, may differ between paths: state tolerances, not bits). */                            \
    X(project_bf16, void,                                                                                      \
      (const std::uint16_t* rows, std::size_t count, std::size_t stride, std::size_t dim,                     \
       const std::uint16_t* query, std::size_t padded, float* out, std::size_t out_stride))                    \
                                                                                                               \
    /* Rows and half precision (rows_<isa>.cc) */                                                              \
                                                                                                               \
    /* dst[i] = float(src[i]) for IEEE binary16 src (exact: every half is a float); returns whether every     \
       value is finite (no half has every exponent bit set: the check of a list's rows, for free). */         \
    X(f16_to_f32, bool, (const half_bits* src, float* dst, std::size_t n))                                     \
    /* Gathered inner products: out[i] = <q, row ids[i]> for i < count, where row r holds `dim` values at      \
       base + r * stride (the graph search's distance kernel; rows float32 or float16). */                     \
    X(dot_rows_f32, void,                                                                                      \
      (const float* q, const float* base, std::size_t stride, const std::uint32_t* ids, std::size_t count,     \
       std::size_t dim, float* out))                                                                           \
    X(dot_rows_f16, void,                                                                                      \
      (const float* q, const half_bits* base, std::size_t stride, const std::uint32_t* ids,                    \
       std::size_t count, std::size_t dim, float* out))                                                        \
    /* The first of `count` float32 rows (row t at rows + t * stride, `dim` values) that holds a NaN or an     \
       infinity (every exponent bit set), or count when every value is finite (the check of a list's rows,     \
       made as they are read). */                                                                              \
    X(first_non_finite, std::size_t, (const float* rows, std::size_t count, std::size_t stride, std::size_t dim))

/// One function pointer per kernel of LATEFOLD_KERNELS, under the kernel's name.
struct KernelTable {
#define LATEFOLD_KERNEL_POINTER(name, result, parameters) result(*name) parameters;
    LATEFOLD_KERNELS(LATEFOLD_KERNEL_POINTER)
#undef LATEFOLD_KERNEL_POINTER
};

/// The table of one compiled path (the scalar table for a path not compiled in).
const KernelTable& kernels_for(Isa isa) noexcept;
/// The table of the active path.
inline const KernelTable& active_kernels() noexcept { return kernels_for(active_isa()); }

/// Prefetches the cache lines that hold [p, p + bytes): into L1 by default, or into L2 only with
/// `into_l2` (prefetcht1: for many lines wanted a while later, which in L1 would evict the lines in
/// use and hold its few fill buffers). Always inlined, and so must be any lambda that calls it: GCC
/// counts a prefetch as free of side effects, deems a function that only prefetches "const" and
/// deletes the calls to it.
constexpr int into_l1 = 3, into_l2 = 2;  // __builtin_prefetch's locality

template <int locality = into_l1>
[[gnu::always_inline]] inline void prefetch_lines(const void* p, std::size_t bytes) {
    const std::uintptr_t end = reinterpret_cast<std::uintptr_t>(p) + bytes;
    for (std::uintptr_t c = reinterpret_cast<std::uintptr_t>(p) & ~std::uintptr_t(63); c < end; c += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(c), 0, locality);
}

/// IEEE binary16 -> binary32, exact (the scalar conversion, for tails and twins; rows_scalar.cc).
float half_to_float(half_bits h) noexcept;

/// How much of a row read at random to prefetch: the hardware prefetcher streams the rest once
/// the row is read, and prefetching several whole 10 KB rows would hold every fill buffer.
constexpr std::size_t row_prefetch_bytes = 1024;

/// The reference's partition index of a sign pattern: its loop, idx = (idx << 1) + (b_j ^ (idx & 1))
/// over the bits b_0 (most significant) .. b_{k-1}, makes bit j of idx the XOR of the pattern's
/// bits from the top down to j: a prefix XOR, in five steps. (Internal linkage, as in layouts.h.)
static constexpr std::uint32_t gray_decode(std::uint32_t pattern) noexcept {
    pattern ^= pattern >> 1;
    pattern ^= pattern >> 2;
    pattern ^= pattern >> 4;
    pattern ^= pattern >> 8;
    pattern ^= pattern >> 16;
    return pattern;
}

}  // namespace kernels
}  // namespace latefold
