// MultiVectorIndex: multi-vector documents searched by MaxSim, in three stages.
//
//   1. candidates  one vector per document (the mean of its tokens, or its MUVERA FDE) in a
//                  filtered GraphIndex: the graph's planner gives the best `candidates` documents
//                  that pass the query's filter, at any selectivity; or, in large indexes, the
//                  documents in the inverted lists of the query tokens' nearest centroids
//                  (centroid_lists.h: PLAID's candidate generation);
//   2. rescoring   approximate MaxSim from the tokens' centroid codes (centroids.h: PLAID's
//                  centroid interaction) keeps the best `rerank` of them;
//   3. exact       MaxSim over the stored tokens (float16 or float32) of those: the top k.
//
// With no centroids (centroids = 0) stage 2 is skipped and every candidate is scored exactly.
// `exact` searches score every document that passes the filter (exhaustive MaxSim).
//
// Documents have stable int64 ids chosen by the user. Inside, a document is a slot (insertion
// order; an update takes a new slot): its tokens, their codes and its graph vector (whose graph
// id is the slot). A delete tombstones the slot at once; compaction repairs the graph around
// deleted slots and drops their tokens (slots keep their numbers: deleted ones become empty),
// except rows in a mapped file, which stay there until the index is saved (a save writes no
// deleted row).
//
// Every mutation is all-or-nothing (a failure or an interrupt leaves the index as it was) and
// exclusive; searches run concurrently with each other and wait for a mutation to finish.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "latefold/buffer.h"
#include "latefold/centroid_lists.h"
#include "latefold/centroids.h"
#include "latefold/fde.h"
#include "latefold/fork_safe_mutex.h"
#include "latefold/filter.h"
#include "latefold/graph.h"
#include "latefold/io.h"
#include "latefold/multivectors.h"
#include "latefold/token_rows.h"

namespace latefold {

enum class CandidateKind : std::uint8_t { mean = 0, fde = 1 };
const char* candidate_kind_name(CandidateKind kind) noexcept;
CandidateKind candidate_kind_from_name(const std::string& name);

struct IndexParams {
    std::size_t dim = 0;
    CandidateKind candidates = CandidateKind::mean;
    FdeConfig fde;                      ///< candidates == fde: the encoder (its dimension is dim)
    DType token_storage = DType::f16;   ///< stored tokens: f16, f32, bf16 or i8 (a scale per token)
    DType vector_storage = DType::f32;  ///< the graph's candidate vectors: f16 or f32
    std::size_t degree = 32;            ///< graph degree (GraphParams)
    std::size_t ef_construction = 128;  ///< graph beam width while inserting
    /// Token centroids for stage 2, per level: 0 = none (no stage 2); otherwise the most the index
    /// trains as it grows (choose_centroids).
    std::size_t centroids = 2048;
    /// Codes per token: 1 (a centroid) or 2 (and a residual centroid; see centroids.h).
    std::size_t centroid_levels = 2;
    std::size_t kmeans_iterations = 4;
    std::uint64_t seed = 0;             ///< k-means sample and start
    /// Token pooling at add time (pooling.h): each document keeps ceil(L / pool_factor) tokens,
    /// pooled in windows of at most pool_window consecutive tokens; 1 = off.
    std::size_t pool_factor = 1;
    static constexpr std::size_t pool_window = 1024;
    /// Deleted tokens (but those a compaction left in a mapped file), as a fraction of all stored
    /// ones, from which a delete or update compacts.
    double compact_fraction = 0.25;

    void validate() const;
    std::size_t vector_dim() const;  ///< the candidate vectors' dimension
};

struct IndexSearchOptions {
    static constexpr std::size_t automatic = std::size_t(-1);
    std::size_t k = 10;
    /// Stage 1: the most documents it gives; automatic: 256 from the graph, 8,192 from the lists
    /// (their documents are near ties the lists' scores cannot order: stage 2 must see them all).
    std::size_t candidates = automatic;
    std::size_t ef = 0;            ///< graph beam width (0: candidates)
    /// Stage 2 keeps this many for exact MaxSim (at least k); automatic: 3 sqrt(n) of the query's n
    /// stage-1 documents, at least 48 (the near ties to separate grow with the corpus, the
    /// documents stage 2 must keep to hold the top 10 among them more slowly: bench/README.md).
    std::size_t rerank = automatic;
    /// Stage 1 from the centroid lists (centroid_lists.h): each query token probes the lists of
    /// its `probe` nearest first-level centroids, and the `candidates` documents found that the
    /// query tokens probing them score best go on (a query whose lists hold fewer than k
    /// matching documents probes 4x as many, then takes the graph's). 0: the graph; automatic: lists from
    /// lists_from documents on (below, a few vectors' graph search is cheaper and as good).
    std::size_t probe = automatic;
    static constexpr std::size_t lists_from = 50000, graph_candidates = 256, list_candidates = 8192,
                                 least_rerank = 48, rerank_per_root = 3;
    float query_ball = 0.0f;       ///< > 0: stage 2 uses the query's balls of this radius (pooling.h)
    bool exact = false;            ///< exhaustive exact MaxSim over the filtered documents
    std::size_t exact_below = 0;   ///< graph planner (GraphSearchOptions); 0: its default
    double gated_above = 0.0;
    std::size_t threads = 0;
};

/// What one query's search did.
struct IndexSearchInfo {
    SearchStats graph;          ///< stage 1's plan, matches and work (path none for exact searches)
    std::size_t candidates = 0; ///< documents from stage 1 (exact: documents scored)
    std::size_t rescored = 0;   ///< scored from centroid codes in stage 2
    std::size_t exact = 0;      ///< scored exactly in stage 3
    double seconds[3] = {0, 0, 0};  ///< per stage (stage 1 of a batch: its share of the batch)
};

struct IndexStats {
    std::size_t documents = 0, slots = 0, tokens = 0, deleted_tokens = 0, centroids = 0, centroid_levels = 0;
    std::size_t token_bytes = 0, code_bytes = 0, centroid_bytes = 0, list_bytes = 0, vector_bytes = 0,
                graph_bytes = 0, id_bytes = 0;
};

class MultiVectorIndex {
public:
    explicit MultiVectorIndex(const IndexParams& params);
    /// In a process forked while another thread was changing the index, abandons (does not free)
    /// what it holds: it may be half changed.
    ~MultiVectorIndex();

    const IndexParams& params() const noexcept { return params_; }
    Json describe_params() const;
    std::size_t size() const;
    bool contains(std::int64_t id) const;
    IndexStats stats() const;
    /// Column name and kind of each attribute.
    std::vector<std::pair<std::string, ColumnKind>> columns() const;
    /// A document's stored tokens (token_storage), or false when the id is not in the index.
    /// With int8 storage `scales` (when given) receives the rows' scales.
    bool get(std::int64_t id, std::vector<std::uint8_t>& tokens, std::size_t& rows,
             std::vector<float>* scales = nullptr) const;
    /// The ids of the live documents, in slot order.
    std::vector<std::int64_t> ids() const;

    /// Adds documents (tokens of the storage type) with new unique ids and their attributes.
    /// The first add that brings tokens trains the centroids on (a sample of) its tokens.
    void add(const MultiVectorsView& docs, const std::int64_t* ids, const std::vector<ColumnBatch>& columns,
             std::size_t threads);
    /// Replaces the documents of these ids (tokens and attributes).
    void update(const MultiVectorsView& docs, const std::int64_t* ids, const std::vector<ColumnBatch>& columns,
                std::size_t threads);
    void remove(const std::int64_t* ids, std::size_t n, std::size_t threads);
    /// Repairs the graph around deleted documents and drops their tokens.
    void compact(std::size_t threads);

    /// Top-k by MaxSim for each query (float32 tokens); filters[i] (nullable) applies to query i.
    /// Writes nq * k scores (descending; ties by lower id) and ids, padded with -inf and -1 when
    /// fewer than k documents match; info (nullable) gets one entry per query.
    void search(const MultiVectorsView& queries, const FilterExpr* const* filters, const IndexSearchOptions& options,
                float* scores, std::int64_t* ids, IndexSearchInfo* info) const;

    void write(io::Writer& writer, const std::string& prefix) const;
    static std::unique_ptr<MultiVectorIndex> read(const io::Reader& reader, const std::string& prefix, bool borrow);
    void save(const std::string& path) const;  ///< a file of kind "multivector"
    static std::unique_ptr<MultiVectorIndex> load(const std::string& path, bool mmap, bool verify);
    std::string to_bytes() const;
    static std::unique_ptr<MultiVectorIndex> from_bytes(const void* data, std::size_t size);

private:
    struct Batch;  // a validated add: its candidate vectors, codes, tokens (index.cc)

    std::size_t row_bytes() const noexcept { return params_.dim * dtype_size(params_.token_storage); }
    /// The type of the tokens an add takes (and pooling writes): the storage for float32 and
    /// float16, float32 for bfloat16 and int8 (converted when the batch is prepared).
    DType input_dtype() const noexcept {
        return params_.token_storage == DType::f16 ? DType::f16 : DType::f32;
    }
    bool converts() const noexcept { return params_.token_storage == DType::i8 || params_.token_storage == DType::bf16; }
    MultiVectorsView token_view() const noexcept;
    /// Points item_rows at each slot's rows when they lie in several parts (capacity reserved).
    void point_items() noexcept;
    /// Validates an add's documents and computes what it adds (nothing changes).
    Batch prepare(const MultiVectorsView& docs, std::size_t threads);
    /// Appends a prepared batch under `ids` (new ones, or with `replace` ids in the index, which
    /// then name the new slots); all-or-nothing.
    void append(const MultiVectorsView& docs, Batch& batch, const std::int64_t* ids,
                const std::vector<ColumnBatch>& columns, std::size_t threads, bool replace);
    /// The documents' tokens pooled (pool_factor > 1) into the batch.
    void pool(const MultiVectorsView& docs, Batch& batch, std::size_t threads) const;
    /// Tombstones slots (their ids already unmapped or remapped).
    void retire(const std::vector<std::int64_t>& slots) noexcept;
    void compact_locked(std::size_t threads);
    /// Compacts when deleted tokens reach compact_fraction of the stored ones (after a delete or
    /// update has succeeded; a compaction that fails leaves the index valid and uncompacted).
    void compact_if_due(std::size_t threads) noexcept;
    /// A filter with its ids and masks turned into slots (the graph's ids), compiled by the graph.
    FilterNode compile_filter(const FilterExpr& filter) const;
    /// The live slots that pass `filter` (null: every live one) as bits; returns their count.
    std::size_t allowed_slots(const FilterNode* filter, std::vector<std::uint64_t>& bits) const;
    std::shared_ptr<const FilterExpr> to_slots(const std::shared_ptr<const FilterExpr>& filter, std::size_t level) const;
    void check_ids(const std::int64_t* ids, std::size_t n, bool present) const;

    void search_exact(const MultiVectorsView& queries, const std::vector<const FilterNode*>& filters,
                      const IndexSearchOptions& options, float* scores, std::int64_t* ids,
                      IndexSearchInfo* info) const;

    struct Data {
        TokenRows tokens;                    // stored token rows, token_storage; may be mapped
        std::vector<const void*> item_rows;  // with rows in several parts: each slot's first row
        Buffer<float> scales;            // int8 storage: one scale per token row; may be mapped
        Buffer<std::int64_t> offsets;    // slots + 1: slot s = token rows offsets[s] .. offsets[s+1]
        Buffer<std::uint16_t> codes;     // centroid code per token row (with centroids)
        Buffer<std::int64_t> ids;        // user id by slot
        std::vector<std::uint64_t> live; // bitset by slot
        std::unordered_map<std::int64_t, std::uint32_t> slot_of;  // live ids
        std::size_t slots = 0, live_count = 0, deleted_tokens = 0;
        std::size_t deleted_in_file = 0;  // of deleted_tokens: those a compaction left in the mapped file
        TokenCentroids centroids;
        CentroidLists lists;             // of the first-level codes, from the codes (not saved)
        std::unique_ptr<FdeEncoder> fde;
        std::unique_ptr<GraphIndex> graph;  // candidate vectors, graph ids = slots, attributes
    };

    IndexParams params_;
    mutable ForkSafeSharedMutex mutex_;  // searches share it; changes own it
    Data data_;
};

/// The centroids per level an index of `tokens` tokens trains: a power of two, at least 16, at
/// most `most`, and at least 16 tokens per centroid of every level (0 below 16 * levels * 16
/// tokens). The index trains when this first exceeds 0 and again when it reaches 4x the count it
/// has, or `most`, and then whenever its live tokens reach 4x those of the last training.
std::size_t choose_centroids(std::size_t most, std::size_t levels, std::size_t tokens) noexcept;

}  // namespace latefold
