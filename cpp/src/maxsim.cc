// The MaxSim engine: packing, blocking over documents, threads, top-k. The arithmetic is in the
// kernels (kernels/maxsim_<isa>.cc); this file decides what each kernel call sees.
#include "latefold/maxsim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "finite_check.h"
#include "packed_queries.h"
#include "kernels/float32_rows.h"
#include "kernels/table.h"
#include "latefold/quantize.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"

namespace latefold {
namespace {

using kernels::KernelTable;

// The document rows of a task (as the kernels read them: converted to float32, or int8 and
// bfloat16 as stored) are kept near this many bytes, so that a block of documents stays in the
// core's L2 cache while every query of the batch runs over it.
constexpr std::size_t block_bytes = 256 * 1024;
// int8 inner products stay exact in int32 up to this dimension (|<q, x>| <= 127^2 * dim < 2^31).
constexpr std::size_t max_int8_dim = 65536;
// Candidates scored per rerank task.
constexpr std::size_t rerank_block = 64;

void check_pair(const MultiVectorsView& queries, const MultiVectorsView& docs) {
    queries.validate("queries");
    docs.validate("docs");
    if (queries.count && docs.count && queries.dim != docs.dim)
        fail_argument("queries and docs have different token dimensions (" +
                      std::to_string(queries.dim) + " and " + std::to_string(docs.dim) + ")");
    if (docs.dtype == DType::i8 && docs.dim > max_int8_dim)
        fail_argument("docs: int8 tokens have at most " + std::to_string(max_int8_dim) + " values (got " +
                      std::to_string(docs.dim) + ")");
}

// What a worker keeps between tasks: documents as float32 rows, scores of a block.
struct Scratch {
    AlignedVector<float> rows;
    std::vector<float> scores;
};

// Work split for all-pairs scoring: blocks of consecutive documents (about block_bytes of the
// rows the kernels read) times blocks of queries, enough tasks to keep every thread busy.
struct BlockGrid {
    std::vector<std::size_t> doc_bounds;  // block b = documents [doc_bounds[b], doc_bounds[b+1])
    std::size_t queries = 0, query_block = 1, query_blocks = 1;

    BlockGrid(const MultiVectorsView& queries_view, const MultiVectorsView& docs, std::size_t row_bytes,
              std::size_t threads)
        : queries(queries_view.count) {
        const std::size_t block_rows = std::max<std::size_t>(1, block_bytes / row_bytes);
        doc_bounds.push_back(0);
        std::size_t rows = 0;
        for (std::size_t d = 0; d < docs.count; ++d) {
            rows += docs.item_length(d);
            if (rows >= block_rows || d + 1 == docs.count) {
                doc_bounds.push_back(d + 1);
                rows = 0;
            }
        }
        const std::size_t wanted = 4 * resolve_threads(threads, std::size_t(-1));
        const std::size_t per_doc_block = (wanted + doc_blocks() - 1) / doc_blocks();
        query_blocks = std::max<std::size_t>(1, std::min(queries, per_doc_block));
        query_block = (queries + query_blocks - 1) / query_blocks;
        query_blocks = (queries + query_block - 1) / query_block;
    }
    std::size_t doc_blocks() const { return doc_bounds.size() - 1; }
    std::size_t tasks() const { return doc_blocks() * query_blocks; }

    // Calls fn(query, doc, score) for every pair of task `task`, queries outermost. The first
    // query reads the documents from memory (the kernel streams them); in the first task of each
    // block of documents it also checks their values when that is needed (the float kernel flags
    // them as it reads them: a separate scan cost 7-17 % of one query's time).
    template <class Fn>
    void run(std::size_t task, const MultiVectorsView& docs, const PackedQueries& packed, Scratch& scratch,
             const KernelTable& kern, FiniteCheck& check, Fn&& fn) const {
        const std::size_t block = task / query_blocks, qb = task % query_blocks;
        const std::size_t d0 = doc_bounds[block], d1 = doc_bounds[block + 1];
        const std::size_t q0 = qb * query_block, q1 = std::min(queries, q0 + query_block);
        ItemRows rows{};
        if (packed.reads_floats() && !PackedQueries::reads_in_place(docs, q1 - q0))
            rows = float_items(docs, d0, d1, scratch.rows, kern);
        if (scratch.scores.size() < d1 - d0) scratch.scores.resize(d1 - d0);
        for (std::size_t q = q0; q < q1; ++q) {
            const bool checking = q == q0 && qb == 0 && check.needed() && packed.reads_floats();
            packed.score(q, docs, d0, d1, rows, kern, scratch.scores.data(), q == q0, checking ? &check : nullptr);
            for (std::size_t d = d0; d < d1; ++d) fn(q, d, scratch.scores[d - d0]);
        }
    }
};

}  // namespace

void maxsim_scores(const MultiVectorsView& queries, const MultiVectorsView& docs, float* scores,
                   std::size_t threads) {
    check_pair(queries, docs);
    if (!queries.count || !docs.count) {  // nothing is read: check what was not yet
        check_unchecked_values(queries, "queries", threads);
        check_unchecked_values(docs, "docs", threads);
        return;
    }
    const KernelTable& kern = kernels::active_kernels();
    const PackedQueries packed(queries, docs.dtype, threads, kern);
    packed.check_docs(docs, threads);
    const BlockGrid grid(queries, docs, packed.row_bytes(), threads);
    std::vector<Scratch> scratch(resolve_threads(threads, grid.tasks()));
    FiniteCheck check(docs, "docs");
    parallel_for(grid.tasks(), threads, [&](std::size_t task, std::size_t worker) {
        grid.run(task, docs, packed, scratch[worker], kern, check,
                 [&](std::size_t q, std::size_t d, float s) { scores[q * docs.count + d] = s; });
    });
    check.raise();
}

void maxsim_rerank(const MultiVectorsView& queries, const MultiVectorsView& docs,
                   const std::int64_t* candidates, std::size_t per_query, float* scores,
                   std::size_t threads) {
    check_pair(queries, docs);
    for (std::size_t i = 0; i < queries.count * per_query; ++i) {
        const std::int64_t id = candidates[i];
        if (id < -1 || id >= std::int64_t(docs.count))
            fail_argument("candidates[" + std::to_string(i / per_query) + ", " +
                          std::to_string(i % per_query) + "] = " + std::to_string(id) +
                          " is not a document index in [0, " + std::to_string(docs.count) +
                          ") nor -1 (padding)");
    }
    check_unchecked_values(queries, "queries", threads);
    if (!queries.count || !per_query) return;
    // Of unchecked docs only the candidates are checked (a scan of all of them would cost more
    // than the rerank), each once: where it first appears in `candidates`.
    FiniteCheck check(docs, "docs");
    std::vector<bool> check_here;
    if (check.needed()) {
        check_here.resize(queries.count * per_query);
        std::vector<bool> seen(docs.count);
        for (std::size_t i = 0; i < check_here.size(); ++i) {
            const std::int64_t id = candidates[i];
            if (id < 0 || seen[std::size_t(id)]) continue;
            seen[std::size_t(id)] = true;
            check_here[i] = true;
        }
    }
    const KernelTable& kern = kernels::active_kernels();
    const PackedQueries packed(queries, docs.dtype, threads, kern);
    const std::size_t blocks = (per_query + rerank_block - 1) / rerank_block;
    const std::size_t tasks = queries.count * blocks;
    std::vector<AlignedVector<float>> doc_scratch(resolve_threads(threads, tasks));
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t worker) {
        const std::size_t q = task / blocks, j0 = task % blocks * rerank_block;
        const std::size_t j1 = std::min(per_query, j0 + rerank_block);
        for (std::size_t j = j0; j < j1; ++j) {
            const std::int64_t id = candidates[q * per_query + j];
            float& out = scores[q * per_query + j];
            if (id < 0) {
                out = -std::numeric_limits<float>::infinity();
                continue;
            }
            const std::size_t d = std::size_t(id);
            if (j + 1 < j1 && candidates[q * per_query + j + 1] >= 0 && packed.reads_floats())
                request_item(docs, std::size_t(candidates[q * per_query + j + 1]));
            // Float rows are checked by the kernel, as in BlockGrid::run; other storages before it.
            const bool checking = check.needed() && check_here[q * per_query + j];
            ItemRows rows{};
            if (packed.reads_floats() && !PackedQueries::reads_in_place(docs, 1))
                rows = float_items(docs, d, d + 1, doc_scratch[worker], kern);
            else if (!packed.reads_floats() && checking)
                check.stored_rows(docs, d);
            packed.score(q, docs, d, d + 1, rows, kern, &out, true, checking && packed.reads_floats() ? &check : nullptr);
        }
    });
    check.raise();
}

void maxsim_topk(const MultiVectorsView& queries, const MultiVectorsView& docs, std::size_t k,
                 float* scores, std::int64_t* ids, std::size_t threads) {
    check_pair(queries, docs);
    if (k == 0) fail_argument("k must be at least 1");
    if (k > docs.count)
        fail_argument("k = " + std::to_string(k) + " is larger than the number of documents (" +
                      std::to_string(docs.count) + ")");
    if (!queries.count) {  // nothing is read: check what was not yet
        check_unchecked_values(queries, "queries", threads);
        check_unchecked_values(docs, "docs", threads);
        return;
    }
    const KernelTable& kern = kernels::active_kernels();
    const PackedQueries packed(queries, docs.dtype, threads, kern);
    packed.check_docs(docs, threads);
    const BlockGrid grid(queries, docs, packed.row_bytes(), threads);
    const std::size_t workers = resolve_threads(threads, grid.tasks());
    std::vector<Scratch> scratch(workers);
    // One selection per (worker, query); merged once at the end.
    std::vector<TopK> best(workers * queries.count, TopK(k));
    FiniteCheck check(docs, "docs");
    parallel_for(grid.tasks(), threads, [&](std::size_t task, std::size_t worker) {
        TopK* mine = best.data() + worker * queries.count;
        grid.run(task, docs, packed, scratch[worker], kern, check,
                 [&](std::size_t q, std::size_t d, float s) { mine[q].push({s, std::int64_t(d)}); });
    });
    check.raise();
    for (std::size_t q = 0; q < queries.count; ++q) {
        TopK merged(k);
        for (std::size_t w = 0; w < workers; ++w)
            for (const ScoredId& e : best[w * queries.count + q].sorted()) merged.push(e);
        const std::vector<ScoredId> top = merged.sorted();
        for (std::size_t i = 0; i < k; ++i) {
            scores[q * k + i] = top[i].score;
            ids[q * k + i] = top[i].id;
        }
    }
}

}  // namespace latefold
