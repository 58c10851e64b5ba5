// Filtered approximate top-k search over single vectors on a proximity graph.
//
// The graph is Vamana's (Subramanya et al., "DiskANN", NeurIPS 2019): one flat layer, each node
// with at most `degree` out-edges chosen by the alpha-pruning rule, which keeps some long edges
// and so makes greedy search converge from one entry point (the vector nearest the mean). One
// layer rather than HNSW's hierarchy because every filtered strategy below walks the same
// edges, and because deletions have a known repair (FreshDiskANN, Singh et al. 2021: reconnect
// each neighbour of a deleted node to that node's neighbours, then prune).
//
// Construction inserts vectors in rounds of growing size (each round at most ~2% of the graph,
// as in ParlayANN, Manohar et al. 2024): the vectors of a round search the graph as it was before
// the round, in parallel, then their edges and the reverse edges are written in a fixed order.
// The graph is therefore the same for any thread count, and involves no randomness.
//
// Pruning uses Euclidean geometry for both metrics (alpha applies to distances: a candidate c is
// dropped when a kept neighbour s has alpha * |s - c| <= |p - c|); candidates are ranked by the
// index's metric. Inner product search walks the same graph, ranking by <q, x>.
//
// Filtered search (Patel et al., "ACORN", SIGMOD 2024; the strategies compared in "Benchmarking
// Filtered Approximate Nearest Neighbor Search Algorithms on Transformer-based Embedding
// Vectors"): a planner counts the filter's matches exactly (the filter is a bitset), then picks
//   exact   — score every allowed vector (few matches: cheaper than any traversal, exact);
//   acorn   — traverse only allowed vectors, reaching them through up to two hops of any node
//             (mid selectivity: a filtered subgraph stays connected through its 2-hop edges);
//   gated   — traverse every node, admit only allowed ones to the results (permissive filters,
//             from 20 % of matches).
// A traversal that ends with fewer than min(k, matches) results falls back to exact.
//
// With a product quantizer (Jegou et al.; as DiskANN keeps PQ codes in memory and the vectors on
// disk), traversals score the vectors' codes by ADC (code_size bytes read per vector instead of
// a row); the stored rows, which may stay memory-mapped, are read only to build the graph, to
// re-score the traversal's best ef exactly, and by exact scans.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "latefold/attributes.h"
#include "latefold/buffer.h"
#include "latefold/common.h"
#include "latefold/filter.h"
#include "latefold/fork_safe_mutex.h"
#include "latefold/io.h"
#include "latefold/pq.h"
#include "latefold/row_store.h"

namespace latefold {

struct GraphParams {
    std::size_t dim = 0;
    Metric metric = Metric::inner_product;
    DType storage = DType::f32;
    std::size_t degree = 32;           ///< most out-edges per node (R)
    std::size_t ef_construction = 128;  ///< beam width while inserting (L)
    float alpha = 1.0f;                ///< pruning slack; 1 = the strict relative-neighbourhood rule
};

/// How a search found its candidates (lists: MultiVectorIndex's centroid lists).
enum class SearchPath : std::uint8_t { none = 0, graph = 1, gated = 2, acorn = 3, exact = 4, lists = 5 };
const char* search_path_name(SearchPath path) noexcept;

struct SearchStats {
    SearchPath path = SearchPath::none;
    std::size_t matches = 0;    ///< live vectors that pass the filter
    std::size_t distances = 0;  ///< vectors scored
    std::size_t visited = 0;    ///< nodes whose edges were read
};

struct GraphSearchOptions {
    std::size_t k = 10;
    std::size_t ef = 64;            ///< beam width (at least k is used)
    std::size_t exact_below = 0;    ///< exact scan when matches <= this; 0: the planner decides
    double gated_above = 0.0;       ///< gated when matches / live >= this; 0: the planner decides
    bool rerank = true;             ///< with a quantizer: re-score the traversal's best ef exactly
    std::size_t threads = 0;
};

class GraphIndex {
public:
    explicit GraphIndex(const GraphParams& params);
    /// In a process forked while another thread was changing the index, abandons (does not free)
    /// what it holds: it may be half changed.
    ~GraphIndex();
    struct Scratch;  ///< per-thread search buffers (internal)

    const GraphParams& params() const noexcept { return params_; }
    /// The parameters as written to files, under the Python constructor's names.
    Json describe_params() const;
    std::size_t size() const;   ///< live vectors
    std::size_t slots() const;  ///< vectors ever stored (live, deleted, compacted away)
    bool contains(std::int64_t id) const;
    /// The attribute columns (not to be read while another thread adds).
    const AttributeStore& attributes() const noexcept { return data_.attributes; }
    /// Each attribute column's name and kind, in order (read under the lock: safe during an add).
    std::vector<std::pair<std::string, ColumnKind>> columns() const;

    /// Scores traversals by PQ codes (see above). Only on an empty index; the quantizer must be
    /// trained, of the index's dim and metric. It is copied.
    void set_quantizer(const ProductQuantizer& quantizer);
    const ProductQuantizer* quantizer() const noexcept { return data_.quantizer.get(); }

    /// Adds n vectors (rows of the storage type: float32, or float16 bits) with unique new ids
    /// and their attributes. Validates everything first: on error nothing changes.
    void add(const void* vectors, const std::int64_t* ids, std::size_t n,
             const std::vector<ColumnBatch>& columns, std::size_t threads);
    /// Tombstones the vectors with these ids: they leave every result at once. On error (an id
    /// unknown or repeated) nothing changes.
    void remove(const std::int64_t* ids, std::size_t n);
    /// Reconnects the neighbours of deleted vectors around them and unlinks the deleted ones.
    void compact(std::size_t threads);

    /// A filter against this index's columns and ids (std::invalid_argument naming an unknown
    /// column or id, or a filter of the wrong kind for its column).
    FilterNode compile_filter(const FilterExpr& filter) const;

    /// Top-k for nq float32 queries; filters[i] (nullable) applies to query i. Writes nq * k
    /// scores (ip: <q, x>, descending; l2: |q - x|^2, ascending) and ids, padded with -inf / +inf
    /// and -1 when fewer than k vectors match; stats (nullable) gets one entry per query.
    void search(const float* queries, std::size_t nq, const FilterNode* const* filters,
                const GraphSearchOptions& options, float* scores, std::int64_t* ids,
                SearchStats* stats) const;

    /// Persistence. write() describes the index under `prefix` (its quantizer under
    /// "<prefix>/pq"); the caller keeps the index unchanged until the writer has saved (save()
    /// holds the index's lock for that). read() validates everything it uses (std::invalid_argument
    /// naming the file otherwise); with `borrow` the rows, edges, codes, ids, degrees and norms
    /// stay in the mapped file and are copied into memory on the first change (add, compact):
    /// the file is never written.
    void write(io::Writer& writer, const std::string& prefix) const;
    static std::unique_ptr<GraphIndex> read(const io::Reader& reader, const std::string& prefix, bool borrow);
    void save(const std::string& path) const;  ///< a file of kind "graph"
    static std::unique_ptr<GraphIndex> load(const std::string& path, bool mmap, bool verify);
    /// The bytes save() writes, in memory (pickling, copies), and an index back from them: the
    /// bytes are copied once and the arrays borrowed from that copy, as from a mapped file.
    std::string to_bytes() const;
    static std::unique_ptr<GraphIndex> from_bytes(const void* data, std::size_t size);

private:
    struct Candidate {
        float distance;  // lower is closer: -<q, x> (ip) or |x|^2 - 2 <q, x> (l2)
        std::uint32_t slot;
        bool operator<(const Candidate& o) const noexcept {
            return distance < o.distance || (distance == o.distance && slot < o.slot);
        }
    };
    enum class Mode : std::uint8_t { plain, gated, acorn };

    std::size_t row_bytes() const noexcept { return params_.dim * dtype_size(params_.storage); }
    RowStore rows() const noexcept { return RowStore{data_.rows.data(), params_.dim, params_.storage, nullptr}; }
    const std::uint32_t* neighbours(std::uint32_t slot) const noexcept {
        return data_.edges.data() + std::size_t(slot) * params_.degree;
    }

    /// Beam search of width ef ranked by `scorer` (exact, or PQ estimates).
    void traverse(const Scorer& scorer, std::size_t ef, Mode mode, const std::uint64_t* allowed,
                  Scratch& scratch, SearchStats& stats) const;
    void exact_scan(const Scorer& exact, std::size_t k, const std::uint64_t* allowed, Scratch& scratch,
                    SearchStats& stats) const;
    void prune(std::uint32_t p, std::vector<Candidate>& pool, std::vector<std::uint32_t>& out,
               Scratch& scratch) const;
    /// The existing nodes' edges as they were before an add changed them (graph_build.cc).
    struct EdgeLog;
    void insert(std::uint32_t first, std::size_t n, std::size_t threads, EdgeLog& log);
    /// p's new edges: the pruned candidates (any order; p itself is skipped).
    void relink(std::uint32_t p, const std::vector<std::uint32_t>& candidates, Scratch& scratch,
                std::vector<std::uint32_t>& kept) const;
    /// Index in `slots` of the vector nearest (Euclidean) to their mean.
    std::size_t nearest_to_mean(const std::vector<std::uint32_t>& slots) const;
    /// The traversal starts, apart from the index: a change computes new ones (which may throw),
    /// then swaps them in (which cannot), and a failed change swaps the saved ones back.
    struct Entries {
        std::uint32_t entry = 0;
        std::size_t chosen_at = 0;
        std::vector<std::uint32_t> pivots;
        std::vector<float> pivot_rows;
        std::vector<std::uint32_t> pivot_order;
    };
    Entries choose_entries() const;
    Entries current_entries() const;
    void set_entries(Entries& entries) noexcept;  ///< swaps: `entries` gets the old ones
    /// The pivots' rows as contiguous float32 and their order (0 .. pivots - 1), for `e`.
    void load_pivots(Entries& e) const;
    void reserve(std::size_t slots);

    // The caller holds the lock; `level`: the depth of `filter` in the whole tree.
    FilterNode compile_locked(const FilterExpr& filter, std::size_t level) const;
    /// Copies borrowed (mapped) arrays into memory before a change.
    void make_writable();

    // Everything the index holds, in one place (read() fills a fresh index's; a member added here
    // is written and read in graph_io.cc, or rebuilt there from what is).
    struct Data {
        Buffer<std::uint8_t> rows;             // slots x row_bytes(), storage type; may be mapped
        Buffer<float> norms;                   // |x|^2 by slot
        Buffer<std::int64_t> ids;              // by slot
        std::vector<std::uint64_t> live;       // bitset by slot
        Buffer<std::uint32_t> degrees;         // by slot
        Buffer<std::uint32_t> edges;           // slots x degree; may be mapped
        Buffer<std::uint8_t> codes;            // slots x code_size, with a quantizer; may be mapped
        std::unordered_map<std::int64_t, std::uint32_t> slot_of;
        std::size_t slots = 0, live_count = 0;
        std::uint32_t entry = 0;
        std::size_t entry_chosen_at = 0;       // linked vectors when the entry was last chosen
        std::vector<std::uint32_t> pivots;     // traversal starts: the entry and an even sample
        std::vector<float> pivot_rows;         // their rows, contiguous float32
        std::vector<std::uint32_t> pivot_order;  // 0 .. pivots - 1
        AttributeStore attributes;
        std::unique_ptr<ProductQuantizer> quantizer;
    };
    static constexpr std::size_t max_pivots = 64;

    GraphParams params_;
    mutable ForkSafeSharedMutex mutex_;  // searches share it; add / remove / compact own it
    Data data_;
};

}  // namespace latefold
