// The MaxSim engine: packing, blocking over documents, threads, top-k. The arithmetic is in the
// kernels (kernels/maxsim_<isa>.cc); this file decides what each kernel call sees.
#include "latefold/maxsim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "finite_check.h"
#include "kernels/float32_rows.h"
#include "kernels/table.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"

namespace latefold {
namespace {

using kernels::KernelTable;

// Document tokens converted to float32 per task are kept near this many bytes, so that a block
// of documents stays in the core's L2 cache while every query of the batch runs over it.
constexpr std::size_t block_bytes = 256 * 1024;
// Candidates scored per rerank task.
constexpr std::size_t rerank_block = 64;

void check_pair(const MultiVectorsView& queries, const MultiVectorsView& docs) {
    queries.validate("queries");
    docs.validate("docs");
    if (queries.count && docs.count && queries.dim != docs.dim)
        fail_argument("queries and docs have different token dimensions (" +
                      std::to_string(queries.dim) + " and " + std::to_string(docs.dim) + ")");
}

// Packs query `q` into `out` (see kernels/layouts.h for the layout); returns its padded row count.
// `check`: the rows are reported to it.
std::size_t pack_query(const MultiVectorsView& queries, std::size_t q, float* out,
                       AlignedVector<float>& scratch, const KernelTable& kern, FiniteCheck* check = nullptr) {
    const std::size_t m = queries.item_length(q), dim = queries.dim;
    const ItemRows rows = float_items(queries, q, q + 1, scratch, kern);
    const float* query = rows.item(q);
    if (check) check->rows(q, query, m, rows.stride);
    kernels::pack_columns(
        m, dim, [&](std::size_t token, std::size_t k) { return query[token * rows.stride + k]; },
        out);
    return kernels::padded_query_rows(m);
}

// Every query packed once, side by side (its values checked as they are read, when not yet).
struct PackedQueries {
    AlignedVector<float> data;
    std::vector<std::size_t> start, padded;  // per query: offset into data, padded rows

    PackedQueries(const MultiVectorsView& queries, std::size_t threads, const KernelTable& kern)
        : start(queries.count + 1), padded(queries.count) {
        start[0] = 0;
        for (std::size_t q = 0; q < queries.count; ++q) {
            padded[q] = kernels::padded_query_rows(queries.item_length(q));
            start[q + 1] = start[q] + padded[q] * queries.dim;
        }
        data.resize(start[queries.count]);
        std::vector<AlignedVector<float>> scratch(resolve_threads(threads, queries.count));
        FiniteCheck check(queries, "queries");
        parallel_for(queries.count, threads, [&](std::size_t q, std::size_t worker) {
            pack_query(queries, q, data.data() + start[q], scratch[worker], kern, check.needed() ? &check : nullptr);
        });
        check.raise();
    }
    const float* query(std::size_t q) const { return data.data() + start[q]; }
};

// Work split for all-pairs scoring: blocks of consecutive documents (about block_bytes of
// float32 tokens each) times blocks of queries, enough tasks to keep every thread busy.
struct BlockGrid {
    std::vector<std::size_t> doc_bounds;  // block b = documents [doc_bounds[b], doc_bounds[b+1])
    std::size_t query_block = 1, query_blocks = 1;

    BlockGrid(const MultiVectorsView& queries, const MultiVectorsView& docs, std::size_t threads) {
        const std::size_t block_rows = std::max<std::size_t>(1, block_bytes / (4 * docs.dim));
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
        query_blocks = std::max<std::size_t>(1, std::min(queries.count, per_doc_block));
        query_block = (queries.count + query_blocks - 1) / query_blocks;
        query_blocks = (queries.count + query_block - 1) / query_block;
    }
    std::size_t doc_blocks() const { return doc_bounds.size() - 1; }
    std::size_t tasks() const { return doc_blocks() * query_blocks; }

    // Calls fn(query, doc, score) for every pair of task `task`, queries outermost. The first
    // task of each block of documents reports their rows to `check` when it is needed, each
    // right before the kernel reads it: the check's sequential scan brings the rows into cache
    // and the kernel reads them there (measured faster than a check after the kernel).
    template <class Fn>
    void run(std::size_t task, const MultiVectorsView& docs, const PackedQueries& packed,
             AlignedVector<float>& scratch, const KernelTable& kern, FiniteCheck& check, Fn&& fn) const {
        const std::size_t block = task / query_blocks, qb = task % query_blocks;
        const std::size_t d0 = doc_bounds[block], d1 = doc_bounds[block + 1];
        const ItemRows rows = float_items(docs, d0, d1, scratch, kern);
        const std::size_t q0 = qb * query_block;
        const std::size_t q1 = std::min(packed.padded.size(), q0 + query_block);
        const bool checking = qb == 0 && check.needed();
        for (std::size_t q = q0; q < q1; ++q) {
            const float* query = packed.query(q);
            for (std::size_t d = d0; d < d1; ++d) {
                const float* doc = rows.item(d);
                if (checking && q == q0) check.rows(d, doc, docs.item_length(d), rows.stride);
                fn(q, d, kern.maxsim_packed(query, packed.padded[q], docs.dim, doc, docs.item_length(d), rows.stride));
            }
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
    const PackedQueries packed(queries, threads, kern);
    const BlockGrid grid(queries, docs, threads);
    std::vector<AlignedVector<float>> scratch(resolve_threads(threads, grid.tasks()));
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
    const std::size_t blocks = (per_query + rerank_block - 1) / rerank_block;
    const std::size_t tasks = queries.count * blocks;
    const std::size_t workers = resolve_threads(threads, tasks);
    std::vector<AlignedVector<float>> packed(workers), query_scratch(workers), doc_scratch(workers);
    std::vector<std::size_t> packed_query(workers, std::size_t(-1));
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t worker) {
        const std::size_t q = task / blocks, j0 = task % blocks * rerank_block;
        const std::size_t j1 = std::min(per_query, j0 + rerank_block);
        AlignedVector<float>& query = packed[worker];
        if (packed_query[worker] != q) {  // consecutive tasks of a worker often share the query
            query.resize(kernels::padded_query_rows(queries.item_length(q)) * queries.dim);
            pack_query(queries, q, query.data(), query_scratch[worker], kern);
            packed_query[worker] = q;
        }
        const std::size_t padded = kernels::padded_query_rows(queries.item_length(q));
        for (std::size_t j = j0; j < j1; ++j) {
            const std::int64_t id = candidates[q * per_query + j];
            float& out = scores[q * per_query + j];
            if (id < 0) {
                out = -std::numeric_limits<float>::infinity();
                continue;
            }
            const std::size_t d = std::size_t(id), rows = docs.item_length(d);
            const ItemRows doc = float_items(docs, d, d + 1, doc_scratch[worker], kern);
            // Before the kernel, as in BlockGrid::run: the scan brings the rows into cache.
            if (check.needed() && check_here[q * per_query + j]) check.rows(d, doc.item(d), rows, doc.stride);
            out = kern.maxsim_packed(query.data(), padded, docs.dim, doc.item(d), rows, doc.stride);
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
    const PackedQueries packed(queries, threads, kern);
    const BlockGrid grid(queries, docs, threads);
    const std::size_t workers = resolve_threads(threads, grid.tasks());
    std::vector<AlignedVector<float>> scratch(workers);
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
