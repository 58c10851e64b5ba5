// Inverted lists of the token centroids: for each first-level centroid, the documents with a
// token coded by it (the candidate generation of PLAID, Santhanam et al., CIKM 2022). A query
// token probes the lists of its nearest centroids; the documents found share a token region with
// the query, and at scale they hold the true top k where a single vector per document does not
// (bench/README.md, "Candidates from the token codes").
//
// The lists are derived from the codes (never saved: rebuilt on load, after a retraining of the
// centroids and by compaction). Slots are appended in increasing order, so each list is sorted
// and holds a document once however many of its tokens share the centroid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "latefold/topk.h"

namespace latefold {

class CentroidLists {
public:
    /// Lists of `count` centroids over every slot: slot s holds token codes
    /// codes[offsets[s] * levels ..] (`levels` per token; the first is the list's centroid).
    /// `live` (nullable): bits by slot, the slots to list (the others are left out).
    void build(std::size_t count, const std::uint16_t* codes, std::size_t levels, const std::int64_t* offsets,
               std::size_t slots, const std::uint64_t* live = nullptr);

    /// Room to append slots first_slot .. first_slot + n (offsets relative to their first token,
    /// codes from it; `live`: bits by position in the call, nullable). May throw (bad_alloc) and
    /// then changes nothing that shows.
    void reserve(const std::uint16_t* codes, std::size_t levels, const std::int64_t* offsets, std::size_t n,
                 const std::uint64_t* live = nullptr);
    /// Appends those slots after reserve() made room: does not throw.
    void append(const std::uint16_t* codes, std::size_t levels, const std::int64_t* offsets, std::size_t n,
                std::uint32_t first_slot, const std::uint64_t* live = nullptr) noexcept;

    /// What candidates() keeps between calls (one per thread).
    struct Scratch {
        std::vector<float> score, weight, top_value;
        std::vector<std::uint64_t> seen;
        std::vector<std::uint32_t> touched, probed, top_code;
    };
    /// The documents in the lists of each query token's `probe` nearest centroids (largest
    /// table[c * padded + j], c < count(), j < tokens: the query's centroid table) that `allowed`
    /// (a bitset over `slots`) keeps, each scored by the summed table entries of the query tokens
    /// that probed a list holding it (with probe 1, a lower bound of its first-level centroid
    /// interaction); the best `width` of them, appended to `out` (id: the slot). Returns the list
    /// entries read.
    std::size_t candidates(const float* table, std::size_t padded, std::size_t tokens, std::size_t probe,
                           const std::uint64_t* allowed, std::size_t slots, std::size_t width, Scratch& scratch,
                           std::vector<ScoredId>& out) const;

    bool empty() const noexcept { return lists_.empty(); }
    std::size_t count() const noexcept { return lists_.size(); }
    const std::vector<std::uint32_t>& list(std::size_t centroid) const noexcept { return lists_[centroid]; }
    std::size_t bytes() const noexcept;  ///< of the entries

private:
    std::vector<std::vector<std::uint32_t>> lists_;
};

}  // namespace latefold
