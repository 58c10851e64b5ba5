// MUVERA fixed dimensional encodings (Dhulipala et al., arXiv:2405.19504), with the semantics
// of the authors' reference implementation (google/graph-mining, sketching/point_cloud).
//
// A set of token vectors becomes one vector whose inner products approximate MaxSim:
//   for each repetition r < R:
//     SimHash: s = x G_r (G_r: dimension x k Gaussian); a token's sign bits b_0..b_{k-1}
//       (b_j = s_j > 0, b_0 most significant) are read as a Gray code, exactly as the reference
//       does: idx = 0; for j: idx = (idx << 1) + (b_j ^ (idx & 1)). Partition p therefore holds
//       the sign pattern p ^ (p >> 1). B = 2^k partitions (k = 0: one partition).
//     projection: identity (d_proj = dimension), "ams_sketch" (the reference's sparse sketch:
//       input coordinate i goes to one random output slot with a random sign, unscaled) or
//       "dense_sign" (the paper's dense +-1/sqrt(d_proj) matrix).
//     queries: block [r][p] = SUM of the projected tokens in partition p (empty: zero).
//     documents: block [r][p] = AVERAGE of the projected tokens in p; with fill_empty_partitions
//       (and k > 0) an empty partition takes the projected token whose sign pattern is nearest
//       to p's in Hamming distance (ties: the lowest token index).
//   output layout [r][p][d_proj], R * B * d_proj values; optionally count-sketched to
//   final_projection_dimension (each value goes to one random slot with a random sign).
//
// Randomness: latefold-rng-v1 (random.h), streams per (matrix kind, repetition) of `seed`:
// the same seed gives the same bits on every platform. Partition indices are exact: a SimHash
// sign is computed in float32 and, when it lies within the float32 rounding bound of zero,
// recomputed as the float64 sum of exact products in coordinate order (the reference's value).
#pragma once

#include <functional>
#include <string>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "latefold/io.h"
#include "latefold/multivectors.h"

namespace latefold {

enum class FdeProjection : std::uint8_t { identity = 0, ams_sketch = 1, dense_sign = 2 };
const char* projection_name(FdeProjection projection) noexcept;
/// "identity", "ams_sketch" or "dense_sign"; std::invalid_argument otherwise.
FdeProjection projection_from_name(const std::string& name);

struct FdeConfig {
    std::size_t dimension = 0;                 ///< input token dimension d
    std::size_t num_repetitions = 1;           ///< R >= 1
    std::size_t num_simhash_projections = 0;   ///< k in [0, 30]; B = 2^k partitions
    std::uint64_t seed = 1;
    FdeProjection projection_type = FdeProjection::identity;
    std::size_t projection_dimension = 0;      ///< d_proj for ams_sketch / dense_sign (>= 1)
    bool fill_empty_partitions = false;        ///< documents only
    std::size_t final_projection_dimension = 0;  ///< 0: no final count sketch

    /// Throws std::invalid_argument, also for more than 2^26 values per item (before or after the
    /// final sketch).
    void validate() const;
    std::size_t projected_dim() const noexcept {
        return projection_type == FdeProjection::identity ? dimension : projection_dimension;
    }
    std::size_t partitions() const noexcept { return std::size_t(1) << num_simhash_projections; }
    /// R * B * d_proj: the encoding before the optional final projection.
    std::size_t block_dim() const noexcept { return num_repetitions * partitions() * projected_dim(); }
    std::size_t output_dim() const noexcept {
        return final_projection_dimension ? final_projection_dimension : block_dim();
    }
};

/// Random stream identifiers (kind << 32 | repetition) of latefold-rng-v1.
enum class FdeStream : std::uint64_t { simhash = 1, ams_sketch = 2, dense_sign = 3, final_sketch = 4 };

class FdeEncoder {
public:
    explicit FdeEncoder(const FdeConfig& config);

    const FdeConfig& config() const noexcept { return config_; }

    /// The parameters as written to files, under the constructor's names (unset sizes are null).
    Json params() const;
    /// Persistence: an encoder is its parameters and the generator version (the matrices follow).
    void write(io::Writer& writer, const std::string& prefix) const;
    static FdeEncoder read(const io::Reader& reader, const std::string& prefix);
    void save(const std::string& path) const;  ///< a file of kind "fde"
    static FdeEncoder load(const std::string& path);
    /// The bytes save() writes, in memory (pickling), and the encoder back from them (copied).
    std::string to_bytes() const;
    static FdeEncoder from_bytes(const void* data, std::size_t size);

    /// One row of output_dim floats per item: out[i * output_dim + c].
    void encode_queries(const MultiVectorsView& items, float* out, std::size_t threads = 0) const;
    void encode_documents(const MultiVectorsView& items, float* out, std::size_t threads = 0) const;

    /// Partition index of every token in every repetition: out[t * R + r] for the token rows t of
    /// `items` (what the encoders use; 0 when k = 0).
    void partition_indices(const MultiVectorsView& items, std::uint32_t* out,
                           std::size_t threads = 0) const;

    /// SimHash matrix of repetition r, dimension x k row-major.
    std::vector<float> simhash_matrix(std::size_t r) const;
    /// Projection matrix of repetition r, dimension x d_proj row-major (identity: the identity).
    std::vector<float> projection_matrix(std::size_t r) const;
    /// Final count sketch: for each of the block_dim() inputs, its output slot and sign.
    const std::vector<std::uint32_t>& final_slots() const noexcept { return final_slot_; }
    const std::vector<float>& final_signs() const noexcept { return final_sign_; }

private:
    struct Scratch;
    void check_items(const MultiVectorsView& items) const;
    // Partition indices of a batch of `count` token rows, also in scratch.transposed (lanes):
    // scratch.part[r * lanes + t].
    void partition_tokens(const float* rows, std::size_t count, std::size_t stride, Scratch& scratch) const;
    // Projected tokens (dense_sign, ams_sketch) into scratch.dense, for the batch's items to share.
    void project_tokens(const float* rows, std::size_t count, std::size_t stride, Scratch& scratch) const;
    // fn(item, its rows as float32, row stride, its first token's place in the batch, scratch) for
    // every item; partitions (and, if `project`, projections) are computed for batches of
    // consecutive items (one product for many short items). Values not yet checked are checked
    // as they are read (errors start with `name`, after every item).
    using ItemFn = std::function<void(std::size_t, const float*, std::size_t, std::size_t, Scratch&)>;
    void for_each_sketched(const MultiVectorsView& items, const char* name, std::size_t threads, bool project,
                           const ItemFn& fn) const;
    void encode(const MultiVectorsView& items, float* out, std::size_t threads, bool documents) const;
    void encode_item(const float* rows, std::size_t count, std::size_t stride, std::size_t at,
                     bool documents, Scratch& scratch, float* out) const;

    FdeConfig config_;
    std::vector<float> simhash_columns_;  // R * k columns of `dimension` values
    std::vector<float> simhash_bound_;  // per SimHash column: |s| above bound * ||x|| is a sure sign
    std::vector<float> projection_columns_;  // R * d_proj columns of `dimension` values
    std::size_t dense_width_ = 0;       // dense_sign: R * d_proj rounded up to 16
    std::vector<float> dense_;          // dense_sign: the matrix packed, dimension x dense_width_
    std::vector<std::uint32_t> ams_index_, ams_start_;  // ams_sketch: coordinates of each slot
    std::vector<float> ams_sign_;
    std::vector<std::uint32_t> final_slot_;
    std::vector<float> final_sign_;
};

}  // namespace latefold
