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

// The form queries take for the documents' storage: float32 for float32 and float16 documents
// (widened by the engine), else the documents' own type.
DType query_form(DType docs) { return docs == DType::f16 ? DType::f32 : docs; }

// Elements of the packed form of an m-token query.
std::size_t packed_size(std::size_t m, std::size_t dim, DType form) {
    switch (form) {
        case DType::i8: return kernels::lane_layout_size(m, dim, 4);
        case DType::bf16: return kernels::lane_layout_size(m, dim, 2);
        case DType::f32:
        case DType::f16: break;
    }
    return kernels::padded_query_rows(m) * dim;
}

// Every query packed once (layouts.h) in the form the documents' storage asks for: float32
// columns, int8 lanes with a scale per token (quantized here: the caller gives float values), or
// bfloat16 lanes (rounded to nearest even). Values are checked as they are read, when not yet.
class PackedQueries {
public:
    PackedQueries(const MultiVectorsView& queries, DType docs, std::size_t threads, const KernelTable& kern)
        : form_(query_form(docs)), dim_(queries.dim), start_(queries.count + 1), first_row_(queries.count + 1),
          padded_(queries.count) {
        for (std::size_t q = 0; q < queries.count; ++q) {
            const std::size_t m = queries.item_length(q);
            padded_[q] = kernels::padded_query_rows(m);
            start_[q + 1] = start_[q] + packed_size(m, dim_, form_);
            first_row_[q + 1] = first_row_[q] + padded_[q];
        }
        switch (form_) {
            case DType::i8:
                codes_.resize(start_[queries.count]);
                scales_.assign(first_row_[queries.count], 0.0f);
                break;
            case DType::bf16: halves_.resize(start_[queries.count]); break;
            case DType::f32:
            case DType::f16: floats_.resize(start_[queries.count]); break;
        }
        std::vector<AlignedVector<float>> scratch(resolve_threads(threads, queries.count));
        std::vector<std::vector<std::int8_t>> codes(scratch.size());
        FiniteCheck check(queries, "queries");
        parallel_for(queries.count, threads, [&](std::size_t q, std::size_t worker) {
            const std::size_t m = queries.item_length(q);
            const ItemRows rows = float_items(queries, q, q + 1, scratch[worker], kern);
            const float* x = rows.item(q);
            const std::size_t stride = rows.stride;
            if (check.needed()) check.rows(q, x, m, stride);
            switch (form_) {
                case DType::i8: {
                    std::vector<std::int8_t>& c = codes[worker];
                    c.resize(m * dim_);
                    for (std::size_t t = 0; t < m; ++t)
                        scales_[first_row_[q] + t] = quantize_int8_row(x + t * stride, dim_, c.data() + t * dim_);
                    kernels::pack_lanes<std::int8_t>(
                        m, dim_, [&](std::size_t t, std::size_t k) { return c[t * dim_ + k]; }, codes_.data() + start_[q]);
                    break;
                }
                case DType::bf16:
                    kernels::pack_lanes<std::uint16_t>(
                        m, dim_, [&](std::size_t t, std::size_t k) { return float_to_bfloat16(x[t * stride + k]); },
                        halves_.data() + start_[q]);
                    break;
                case DType::f32:
                case DType::f16:
                    kernels::pack_columns(
                        m, dim_, [&](std::size_t t, std::size_t k) { return x[t * stride + k]; },
                        floats_.data() + start_[q]);
                    break;
            }
        });
        check.raise();
    }

    // Whether documents are read as float32 rows (ItemRows) rather than in their own type.
    bool reads_floats() const { return form_ == DType::f32; }

    // MaxSim of query q against documents [d0, d1) into out[0 .. d1 - d0); `rows` holds their
    // float32 rows when reads_floats().
    void score(std::size_t q, const MultiVectorsView& docs, std::size_t d0, std::size_t d1, const ItemRows& rows,
               const KernelTable& kern, float* out) const {
        switch (form_) {
            case DType::i8:
            case DType::bf16:
                if (docs.flat()) {
                    quantized(q, docs.tokens, docs.scales, docs.row_stride, docs.offsets + d0, d1 - d0, kern, out);
                } else {  // a table: each item where it lies, its rows counted from 0
                    for (std::size_t d = d0; d < d1; ++d) {
                        const std::int64_t rows[2] = {0, docs.offsets[d + 1] - docs.offsets[d]};
                        quantized(q, docs.item_data(d), docs.scales ? docs.scales + docs.offsets[d] : nullptr,
                                  docs.row_stride, rows, 1, kern, out + (d - d0));
                    }
                }
                return;
            case DType::f32:
            case DType::f16:
                for (std::size_t d = d0; d < d1; ++d)
                    out[d - d0] = kern.maxsim_packed(floats_.data() + start_[q], padded_[q], dim_, rows.item(d),
                                                     docs.item_length(d), rows.stride);
                return;
        }
    }

    // The int8 or bfloat16 kernel over `count` documents of `tokens` (rows offsets[i] ..).
    void quantized(std::size_t q, const void* tokens, const float* scales, std::size_t stride,
                   const std::int64_t* offsets, std::size_t count, const KernelTable& kern, float* out) const {
        if (form_ == DType::i8)
            kern.maxsim_i8(codes_.data() + start_[q], scales_.data() + first_row_[q], padded_[q], dim_,
                           static_cast<const std::int8_t*>(tokens), scales, stride, offsets, count, out);
        else
            kern.maxsim_bf16(halves_.data() + start_[q], padded_[q], dim_, static_cast<const std::uint16_t*>(tokens),
                             stride, offsets, count, out);
    }

    // Documents the kernels read in their own type are not seen as float32 rows: when their
    // values are not yet checked, they are checked before (one pass).
    void check_docs(const MultiVectorsView& docs, std::size_t threads) const {
        if (!reads_floats()) check_unchecked_values(docs, "docs", threads);
    }

    // Bytes per document row as the kernels read it (float32 rows for float forms).
    std::size_t row_bytes() const { return dim_ * (form_ == DType::f32 ? 4 : dtype_size(form_)); }

private:
    DType form_;
    std::size_t dim_;
    std::vector<std::size_t> start_, first_row_, padded_;  // per query: element offset, scale offset, padded rows
    AlignedVector<float> floats_;
    AlignedVector<std::int8_t> codes_;
    AlignedVector<std::uint16_t> halves_;
    std::vector<float> scales_;
};

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
    // task of each block of documents reports their rows to `check` when it is needed, each
    // right before the kernel reads it: the check's sequential scan brings the rows into cache
    // and the kernel reads them there (measured faster than a check after the kernel).
    template <class Fn>
    void run(std::size_t task, const MultiVectorsView& docs, const PackedQueries& packed, Scratch& scratch,
             const KernelTable& kern, FiniteCheck& check, Fn&& fn) const {
        const std::size_t block = task / query_blocks, qb = task % query_blocks;
        const std::size_t d0 = doc_bounds[block], d1 = doc_bounds[block + 1];
        ItemRows rows{};
        if (packed.reads_floats()) rows = float_items(docs, d0, d1, scratch.rows, kern);
        if (scratch.scores.size() < d1 - d0) scratch.scores.resize(d1 - d0);
        const std::size_t q0 = qb * query_block, q1 = std::min(queries, q0 + query_block);
        for (std::size_t q = q0; q < q1; ++q) {
            if (q == q0 && qb == 0 && check.needed() && packed.reads_floats())
                for (std::size_t d = d0; d < d1; ++d) check.rows(d, rows.item(d), docs.item_length(d), rows.stride);
            packed.score(q, docs, d0, d1, rows, kern, scratch.scores.data());
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
            // Checked before the kernel, as in BlockGrid::run: the scan brings the rows into cache.
            const bool checking = check.needed() && check_here[q * per_query + j];
            ItemRows rows{};
            if (packed.reads_floats()) {
                rows = float_items(docs, d, d + 1, doc_scratch[worker], kern);
                if (checking) check.rows(d, rows.item(d), docs.item_length(d), rows.stride);
            } else if (checking) {
                check.stored_rows(docs, d);
            }
            packed.score(q, docs, d, d + 1, rows, kern, &out);
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
