// Token centroids for approximate MaxSim: the centroid interaction of ColBERTv2 / PLAID
// (Santhanam et al., "PLAID: An Efficient Engine for Late Interaction Retrieval", CIKM 2022).
//
// Every stored token is replaced by the id of its nearest of C centroids (k-means over a sample
// of tokens; two bytes a token) and, with more levels, also by the nearest of C residual
// centroids to what remains, level after level (residual quantization, Chen et al. 2010: the sum
// approximates the token much better than one centroid alone, for a code a level). For a query Q, table[c][j] =
// <q_j, centroid_c> costs (levels x C) x |Q| inner products once; a document's approximate MaxSim
// is then sum_j max_t (sum over the token's codes of table[code][j]) — table rows per document
// token, no arithmetic on the tokens themselves. It ranks a few hundred candidates for a fraction
// of the cost of exact MaxSim, so that only the best few dozen are scored exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "latefold/buffer.h"
#include "latefold/io.h"

namespace latefold {

class TokenCentroids {
public:
    /// Most centroids (codes are uint16), and levels.
    static constexpr std::size_t max_count = 65536, max_levels = 3;

    TokenCentroids() = default;
    /// k-means (kmeans.h, deterministic for a seed) of `count` centroids over n float32 rows
    /// (row i at rows + i * stride), then per further level `count` more over the residuals;
    /// 1 <= levels <= max_levels, 1 <= count, levels * count <= min(n, max_count). The rows must be a random sample in
    /// random order: the first ones start the iterations.
    static TokenCentroids train(const float* rows, std::size_t n, std::size_t stride, std::size_t dim,
                                std::size_t count, std::size_t levels, std::size_t iterations, std::uint64_t seed,
                                std::size_t threads);

    bool empty() const noexcept { return count_ == 0; }
    std::size_t count() const noexcept { return count_; }  ///< per level
    std::size_t levels() const noexcept { return levels_; }
    std::size_t rows() const noexcept { return count_ * levels_; }  ///< of the table
    std::size_t dim() const noexcept { return dim_; }
    const float* data() const noexcept { return centroids_.data(); }
    /// Live tokens of the index that trained these, when it trained them (it trains again at 4x
    /// as many); saved with them. 0 in files written before it was kept (their loader counts
    /// from the load).
    std::size_t trained_tokens() const noexcept { return trained_tokens_; }
    void set_trained_tokens(std::size_t tokens) noexcept { trained_tokens_ = tokens; }
    /// Of the centroids, with their bfloat16 copy.
    std::size_t bytes() const noexcept { return centroids_.size() * sizeof(float) + rounded_.size() * sizeof(std::uint16_t); }

    /// Each of n float32 rows' codes, levels() of them (rows of the table: level l's are
    /// l * count() and up): its nearest centroid (L2), then level by level the nearest residual
    /// centroid to what remains.
    void assign(const float* rows, std::size_t n, std::size_t stride, std::uint16_t* codes,
                std::size_t threads) const;

    /// A query's table for the centroid_maxsim kernel: table[c * padded + j] = <q_j, centroid_c>
    /// (0 for the padding columns) for every centroid of every level, from the query packed in the
    /// MaxSim layout (kernels/layouts.h) with `padded` columns. Holds rows() * padded floats. On
    /// the AMX and AVX512-BF16 paths the products are of bfloat16 roundings of both (16x and 2x
    /// the float32 rate: with thousands of centroids the table costs as much as the rest of a
    /// search otherwise); the table only ranks documents approximately (stages 1 and 2), so the
    /// rounding is immaterial.
    void query_table(const float* packed_query, std::size_t padded, float* table) const;
    /// That table quantized for the centroid_maxsim kernel: out = table * scale rounded, the scale
    /// such that a token's sum over the levels never leaves int16, from |<q, c>| <= |q| |c| (the
    /// largest norm of each level's centroids and `query_norm`, the largest of the query's
    /// tokens); returns the scale. Values are resolved to ~1/16,000 of the largest possible.
    float quantize_table(const float* table, std::size_t padded, double query_norm, std::int16_t* out) const;

    void write(io::Writer& writer, const std::string& prefix) const;
    /// Reads what write() wrote (with `borrow` the centroids stay in the mapped file).
    static TokenCentroids read(const io::Reader& reader, const std::string& prefix, std::size_t dim, bool borrow);

private:
    void prepare();  // makes rounded_ and largest_norm_

    Buffer<float> centroids_;  // levels x count x dim: the centroids, then each level's residual ones
    AlignedVector<std::uint16_t> rounded_;  // the same rounded to bfloat16 (for the bfloat16 table; not saved)
    double largest_norm_[max_levels] = {};   // of each level's centroids
    std::size_t count_ = 0, levels_ = 1, dim_ = 0, trained_tokens_ = 0;
};

}  // namespace latefold
