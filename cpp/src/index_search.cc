// MultiVectorIndex search: the three stages (index.h), the exhaustive search, and the filters
// (user ids and masks turned into slots, the graph's ids).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kernels/float32_rows.h"
#include "kernels/table.h"
#include "latefold/index.h"
#include "latefold/pooling.h"
#include "latefold/thread_pool.h"
#include "latefold/topk.h"
#include "packed_queries.h"

namespace latefold {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// A query's tokens packed for the MaxSim kernel (kernels/layouts.h), and their largest norm.
struct PackedQuery {
    AlignedVector<float> packed, scratch;
    std::size_t tokens = 0, padded = 0;
    double largest_norm = 0.0;

    void pack(const MultiVectorsView& queries, std::size_t q, const kernels::KernelTable& kern) {
        const ItemRows items = float_items(queries, q, q + 1, scratch, kern);
        pack_rows(items.item(q), items.stride, queries.item_length(q), queries.dim);
    }
    void pack_rows(const float* rows, std::size_t stride, std::size_t n, std::size_t dim) {
        tokens = n;
        padded = kernels::padded_query_rows(tokens);
        largest_norm = 0.0;
        for (std::size_t t = 0; t < n; ++t) {
            double norm = 0.0;
            for (std::size_t k = 0; k < dim; ++k) norm += double(rows[t * stride + k]) * rows[t * stride + k];
            largest_norm = std::max(largest_norm, std::sqrt(norm));
        }
        packed.resize(padded * dim);
        kernels::pack_columns(
            tokens, dim, [&](std::size_t t, std::size_t k) { return rows[t * stride + k]; }, packed.data());
    }
};

// Stage 3: MaxSim of query q against the stored tokens of one slot, in the storage's kernel.
float exact_score(const PackedQueries& exact, std::size_t q, const MultiVectorsView& stored, std::size_t slot,
                  AlignedVector<float>& rows, const kernels::KernelTable& kern) {
    ItemRows doc{};
    if (exact.reads_floats() && !PackedQueries::reads_in_place(stored, 1))
        doc = float_items(stored, slot, slot + 1, rows, kern);
    float score = 0.0f;
    exact.score(q, stored, slot, slot + 1, doc, kern, &score, true);
    return score;
}

// Candidates (id: the slot) are scored in the order of their slots: the documents' data then
// lies in increasing addresses, kinder to the TLB and the prefetchers than scattered reads.
bool by_slot(const ScoredId& a, const ScoredId& b) { return a.id < b.id; }

// Slots scored per task of an exhaustive search.
constexpr std::size_t exact_chunk = 512;

// Stage 2 reads the codes of its candidates, scattered over memory: those of a block of
// `code_block` candidates are requested at once into L2, a block ahead (many reads in flight; one
// candidate ahead at a time, the codes arrived 3x slower; into L1, stage 2 took 1.06 ms a query
// at 1,000,000 documents against 0.87).
constexpr std::size_t code_block = 32;

[[gnu::always_inline]] inline void request_codes(const std::vector<ScoredId>& ranked, std::size_t i0,
                                                 const std::int64_t* offsets, const std::uint16_t* codes,
                                                 std::size_t levels) {
    for (std::size_t i = i0; i < std::min(ranked.size(), i0 + code_block); ++i) {
        const std::size_t first = std::size_t(offsets[ranked[i].id]), last = std::size_t(offsets[ranked[i].id + 1]);
        kernels::prefetch_lines<kernels::into_l2>(codes + first * levels, (last - first) * levels * sizeof(std::uint16_t));
    }
}

// Stage 3 reads whole documents: while candidate i is scored, the next one (request_item), and
// the offsets of the one `ahead` places on, which that request reads.
constexpr std::size_t ahead = 8;

[[gnu::always_inline]] inline void request_rows(const std::vector<ScoredId>& ranked, std::size_t i,
                                                const std::int64_t* offsets, const MultiVectorsView& stored) {
    if (i + ahead < ranked.size()) __builtin_prefetch(offsets + ranked[i + ahead].id);
    if (i + 1 < ranked.size()) request_item(stored, std::size_t(ranked[i + 1].id));
}

}  // namespace

std::shared_ptr<const FilterExpr> MultiVectorIndex::to_slots(const std::shared_ptr<const FilterExpr>& f,
                                                             std::size_t level) const {
    if (level > max_filter_depth)
        fail_argument("filter: more than " + std::to_string(max_filter_depth) + " levels of nested &, | and ~");
    switch (f->op) {
        case FilterExpr::Op::ids: {
            auto out = std::make_shared<FilterExpr>(*f);
            for (std::int64_t& id : out->values) {
                const auto it = data_.slot_of.find(id);
                if (it == data_.slot_of.end()) fail_argument("filter: id " + std::to_string(id) + " is not in the index");
                id = it->second;
            }
            return out;
        }
        case FilterExpr::Op::mask: {  // mask[id] keeps the document `id`
            auto out = std::make_shared<FilterExpr>();
            out->op = FilterExpr::Op::ids;
            for (std::size_t s = 0; s < data_.slots; ++s) {
                const std::int64_t id = data_.ids[s];
                if (test_bit(data_.live.data(), s) && id >= 0 && std::uint64_t(id) < f->mask.size() && f->mask[std::size_t(id)])
                    out->values.push_back(std::int64_t(s));
            }
            return out;
        }
        case FilterExpr::Op::all_of:
        case FilterExpr::Op::any_of:
        case FilterExpr::Op::none_of: {
            std::shared_ptr<FilterExpr> out;
            for (std::size_t i = 0; i < f->children.size(); ++i) {
                auto child = to_slots(f->children[i], level + 1);
                if (child == f->children[i]) continue;
                if (!out) out = std::make_shared<FilterExpr>(*f);
                out->children[i] = std::move(child);
            }
            return out ? out : f;
        }
        case FilterExpr::Op::labels_any:
        case FilterExpr::Op::labels_all:
        case FilterExpr::Op::range:
        case FilterExpr::Op::in_set: return f;
    }
    return f;
}

std::size_t MultiVectorIndex::allowed_slots(const FilterNode* filter, std::vector<std::uint64_t>& bits) const {
    const std::size_t words = bit_words(data_.slots);
    bits.assign(data_.live.begin(), data_.live.begin() + std::ptrdiff_t(words));
    if (filter) {
        std::vector<std::uint64_t> passing(words);
        evaluate_filter(*filter, data_.graph->attributes(), passing.data());
        for (std::size_t w = 0; w < words; ++w) bits[w] &= passing[w];
    }
    std::size_t count = 0;
    for (std::uint64_t w : bits) count += std::size_t(__builtin_popcountll(w));
    return count;
}

FilterNode MultiVectorIndex::compile_filter(const FilterExpr& filter) const {
    // A non-owning pointer to the caller's filter, for to_slots (which copies what it changes).
    const std::shared_ptr<const FilterExpr> root(&filter, [](const FilterExpr*) {});
    return data_.graph->compile_filter(*to_slots(root, 1));
}

void MultiVectorIndex::search(const MultiVectorsView& queries, const FilterExpr* const* filters,
                              const IndexSearchOptions& options, float* scores, std::int64_t* ids,
                              IndexSearchInfo* info) const {
    queries.validate("queries");
    if (queries.count && queries.dim != params_.dim)
        fail_argument("queries: tokens have dimension " + std::to_string(queries.dim) + ", the index " +
                      std::to_string(params_.dim));
    if (queries.dtype != DType::f32 && queries.dtype != DType::f16) fail_argument("queries: tokens must be float32 or float16");
    fail_non_finite("queries", first_non_finite_token(queries));
    if (options.k == 0) fail_argument("k must be at least 1");
    const std::size_t nq = queries.count, k = options.k;
    std::fill(scores, scores + nq * k, -std::numeric_limits<float>::infinity());
    std::fill(ids, ids + nq * k, std::int64_t(-1));
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    // One compiled filter per distinct filter.
    std::vector<FilterNode> compiled;
    std::vector<const FilterNode*> per_query(nq, nullptr);
    if (filters) {
        std::unordered_map<const FilterExpr*, std::size_t> seen;
        compiled.reserve(nq);
        for (std::size_t q = 0; q < nq; ++q) {
            if (!filters[q]) continue;
            const auto it = seen.find(filters[q]);
            if (it == seen.end()) {
                seen.emplace(filters[q], compiled.size());
                compiled.push_back(compile_filter(*filters[q]));
            }
        }
        for (std::size_t q = 0; q < nq; ++q)
            if (filters[q]) per_query[q] = &compiled[seen[filters[q]]];
    }
    if (!nq || !data_.live_count) return;
    if (options.exact) {
        search_exact(queries, per_query, options, scores, ids, info);
        return;
    }

    const kernels::KernelTable& kern = kernels::active_kernels();
    using O = IndexSearchOptions;
    const bool rescore = !data_.centroids.empty();
    const std::size_t levels = rescore ? data_.centroids.levels() : 0;
    const std::size_t probe = options.probe != O::automatic ? options.probe : data_.live_count >= O::lists_from ? 1 : 0;
    const bool listed = probe && !data_.lists.empty();
    const bool given = options.candidates != O::automatic;
    const std::size_t graph_width = std::max(k, given ? options.candidates : O::graph_candidates);
    const std::size_t width = listed ? std::max(k, given ? options.candidates : O::list_candidates) : graph_width;
    auto keep_of = [&](std::size_t n) {  // stage 2's survivors out of n candidates
        return std::max(k, options.rerank != O::automatic
                               ? options.rerank
                               : std::max(O::least_rerank, std::size_t(std::ceil(O::rerank_per_root * std::sqrt(double(n))))));
    };

    // Stage 1 by the graph: in one batch, or (listed) for the queries whose lists find too few.
    const std::size_t vdim = params_.vector_dim();
    GraphSearchOptions g;
    g.k = graph_width;
    g.ef = std::max(options.ef, graph_width);
    g.exact_below = options.exact_below;
    g.gated_above = options.gated_above;
    // The queries' candidate vectors, made when the graph is first asked (a listed search may never ask it).
    std::vector<float> vectors;
    std::once_flag vectors_made;
    auto make_vectors = [&](std::size_t threads) {
        vectors.assign(nq * vdim, 0.0f);
        if (params_.candidates == CandidateKind::fde) {
            data_.fde->encode_queries(queries, vectors.data(), threads);
            return;
        }
        AlignedVector<float> scratch;
        for (std::size_t q = 0; q < nq; ++q) {  // a sum: the scale does not change the ranking
            const ItemRows items = float_items(queries, q, q + 1, scratch, kern);
            const float* x = items.item(q);
            for (std::size_t t = 0; t < queries.item_length(q); ++t)
                for (std::size_t c = 0; c < vdim; ++c) vectors[q * vdim + c] += x[t * items.stride + c];
        }
    };
    auto graph_candidates = [&](std::size_t q0, std::size_t q1, std::size_t threads, std::int64_t* found,
                                SearchStats* stats) {
        std::call_once(vectors_made, make_vectors, threads);
        std::vector<float> graph_scores((q1 - q0) * graph_width);
        GraphSearchOptions o = g;
        o.threads = threads;
        data_.graph->search(vectors.data() + q0 * vdim, q1 - q0, filters ? per_query.data() + q0 : nullptr, o,
                            graph_scores.data(), found, stats);
    };
    std::vector<std::int64_t> candidates;
    std::vector<SearchStats> stats(nq);
    double stage1 = 0.0;
    if (!listed) {
        const Clock::time_point start = Clock::now();
        candidates.resize(nq * graph_width);
        graph_candidates(0, nq, options.threads, candidates.data(), stats.data());
        stage1 = seconds_since(start) / double(nq);
    }
    // The lists' documents a query may find: live ones, and those of its filter (one set per filter).
    std::vector<std::vector<std::uint64_t>> filtered(listed ? compiled.size() : 0);
    std::vector<std::size_t> matches(filtered.size());
    parallel_for(filtered.size(), options.threads,
                 [&](std::size_t f, std::size_t) { matches[f] = allowed_slots(&compiled[f], filtered[f]); });

    // Stages 2 and 3 (and stage 1 from the lists), a query per task.
    const MultiVectorsView stored = token_view();
    const PackedQueries exact(queries, params_.token_storage, options.threads, kern);  // stage 3's form
    const std::size_t workers = resolve_threads(options.threads, nq);
    struct Scratch {
        PackedQuery query, balls;
        std::vector<float> carved;
        AlignedVector<float> table, rows;
        AlignedVector<std::int16_t> quantized;  // the table for stage 2
        std::vector<ScoredId> ranked;
        CentroidLists::Scratch lists;
        std::vector<std::int64_t> found;
    };
    std::vector<Scratch> scratch(workers);
    parallel_for(nq, options.threads, [&](std::size_t q, std::size_t worker) {
        Scratch& s = scratch[worker];
        Clock::time_point t0 = Clock::now();
        IndexSearchInfo local;
        s.query.pack(queries, q, kern);
        const PackedQuery* q2 = &s.query;  // stage 2's form of the query
        if (rescore && options.query_ball > 0.0f) {  // its balls
            const std::size_t m = queries.item_length(q);
            const ItemRows items = float_items(queries, q, q + 1, s.query.scratch, kern);
            const float* x = items.item(q);
            std::vector<float> dense(m * params_.dim);
            for (std::size_t t = 0; t < m; ++t)
                std::copy(x + t * items.stride, x + t * items.stride + params_.dim, dense.data() + t * params_.dim);
            s.carved.resize(m * params_.dim);
            const std::size_t balls = carve_query(dense.data(), m, params_.dim, options.query_ball, s.carved.data());
            s.balls.pack_rows(s.carved.data(), params_.dim, balls, params_.dim);
            q2 = &s.balls;
        }
        const std::size_t padded = q2->padded;
        bool tabled = false;
        auto table = [&] {
            if (tabled) return;
            s.table.resize(data_.centroids.rows() * padded);
            data_.centroids.query_table(q2->packed.data(), padded, s.table.data());
            tabled = true;
        };
        s.ranked.clear();
        bool found = false;
        if (listed) {
            table();
            const std::size_t f = per_query[q] ? std::size_t(per_query[q] - compiled.data()) : 0;
            const std::uint64_t* allowed = per_query[q] ? filtered[f].data() : data_.live.data();
            const std::size_t allowed_count = per_query[q] ? matches[f] : data_.live_count;
            if (allowed_count <= graph_width) {  // few match: every one goes on
                for (std::size_t w = 0; w < bit_words(data_.slots); ++w)
                    for (std::uint64_t bits = allowed[w]; bits; bits &= bits - 1)
                        s.ranked.push_back({0.0f, std::int64_t(w * 64 + std::size_t(__builtin_ctzll(bits)))});
                local.graph.path = SearchPath::exact;
            } else {
                local.graph.path = SearchPath::lists;
                // Fewer than k documents: 4x the probes, once (then the graph's).
                const std::size_t most = data_.lists.count();
                for (std::size_t p = std::min(probe, most);; p = std::min(4 * p, most)) {
                    s.ranked.clear();
                    local.graph.distances += data_.lists.candidates(s.table.data(), padded, q2->tokens, p, allowed,
                                                                    data_.slots, width, s.lists, s.ranked);
                    local.graph.visited += s.lists.probed.size();
                    found = s.ranked.size() >= k;
                    if (found || p == most || p > probe) break;
                }
            }
            local.graph.matches = allowed_count;
            found = found || allowed_count <= graph_width;
        }
        if (!found) {  // the graph's (a listed search asks it for this query alone)
            const std::int64_t* ids_found = candidates.data() + q * graph_width;
            local.graph = stats[q];
            if (listed) {
                s.found.resize(graph_width);
                graph_candidates(q, q + 1, 1, s.found.data(), &local.graph);
                ids_found = s.found.data();
            }
            const std::size_t n = std::size_t(std::find(ids_found, ids_found + graph_width, std::int64_t(-1)) - ids_found);
            s.ranked.clear();
            for (std::size_t i = 0; i < n; ++i) s.ranked.push_back({0.0f, ids_found[i]});  // id: the slot
        }
        const std::size_t n = s.ranked.size(), keep = keep_of(n);
        local.candidates = n;
        local.seconds[0] = listed ? seconds_since(t0) : stage1;
        if (rescore && n > keep) {
            table();
            s.quantized.resize(s.table.size());
            const float scale = data_.centroids.quantize_table(s.table.data(), padded, q2->largest_norm, s.quantized.data());
            std::sort(s.ranked.begin(), s.ranked.end(), by_slot);
            request_codes(s.ranked, 0, data_.offsets.data(), data_.codes.data(), levels);
            for (std::size_t i = 0; i < s.ranked.size(); ++i) {
                if (i % code_block == 0) request_codes(s.ranked, i + code_block, data_.offsets.data(), data_.codes.data(), levels);
                ScoredId& c = s.ranked[i];
                const std::size_t first = std::size_t(data_.offsets[c.id]);
                const std::size_t rows = std::size_t(data_.offsets[c.id + 1]) - first;
                c.score = float(kern.centroid_maxsim(s.quantized.data(), padded, data_.codes.data() + first * levels, rows,
                                                     levels)) / scale;
            }
            std::nth_element(s.ranked.begin(), s.ranked.begin() + std::ptrdiff_t(keep), s.ranked.end(), RanksBefore());
            s.ranked.resize(keep);
            local.rescored = n;
        }
        std::sort(s.ranked.begin(), s.ranked.end(), by_slot);
        const Clock::time_point t1 = Clock::now();
        local.seconds[1] = std::chrono::duration<double>(t1 - t0).count() - (listed ? local.seconds[0] : 0.0);
        TopK top(k);
        for (std::size_t i = 0; i < s.ranked.size(); ++i) {
            request_rows(s.ranked, i, data_.offsets.data(), stored);
            const std::size_t slot = std::size_t(s.ranked[i].id);
            top.push({exact_score(exact, q, stored, slot, s.rows, kern), data_.ids[slot]});
        }
        local.exact = s.ranked.size();
        const std::vector<ScoredId> best = top.sorted();
        for (std::size_t i = 0; i < best.size(); ++i) {
            scores[q * k + i] = best[i].score;
            ids[q * k + i] = best[i].id;
        }
        local.seconds[2] = seconds_since(t1);
        if (info) info[q] = local;
    });
}

void MultiVectorIndex::search_exact(const MultiVectorsView& queries, const std::vector<const FilterNode*>& filters,
                                    const IndexSearchOptions& options, float* scores, std::int64_t* ids,
                                    IndexSearchInfo* info) const {
    const Clock::time_point start = Clock::now();
    const kernels::KernelTable& kern = kernels::active_kernels();
    const std::size_t nq = queries.count, k = options.k;
    // Each query's allowed slots: its filter's and live.
    std::vector<std::vector<std::uint64_t>> allowed(nq);
    std::vector<std::size_t> matches(nq, 0);
    parallel_for(nq, options.threads,
                 [&](std::size_t q, std::size_t) { matches[q] = allowed_slots(filters[q], allowed[q]); });
    const PackedQueries exact(queries, params_.token_storage, options.threads, kern);
    const std::size_t chunks = (data_.slots + exact_chunk - 1) / exact_chunk;
    const MultiVectorsView stored = token_view();
    const std::size_t workers = resolve_threads(options.threads, nq * chunks);
    std::vector<AlignedVector<float>> scratch(workers);
    std::vector<TopK> best(workers * nq, TopK(k));  // per worker and query; merged below
    parallel_for(nq * chunks, options.threads, [&](std::size_t task, std::size_t worker) {
        const std::size_t q = task / chunks, chunk = task % chunks;
        const std::size_t s1 = std::min(data_.slots, (chunk + 1) * exact_chunk);
        for (std::size_t slot = chunk * exact_chunk; slot < s1; ++slot) {
            if (!test_bit(allowed[q].data(), slot)) continue;
            best[worker * nq + q].push({exact_score(exact, q, stored, slot, scratch[worker], kern), data_.ids[slot]});
        }
    });
    const double seconds = seconds_since(start) / double(nq);
    for (std::size_t q = 0; q < nq; ++q) {
        TopK merged(k);
        for (std::size_t w = 0; w < workers; ++w)
            for (const ScoredId& e : best[w * nq + q].sorted()) merged.push(e);
        const std::vector<ScoredId> top = merged.sorted();
        for (std::size_t i = 0; i < top.size(); ++i) {
            scores[q * k + i] = top[i].score;
            ids[q * k + i] = top[i].id;
        }
        if (info) {
            IndexSearchInfo local;
            local.graph.path = SearchPath::none;
            local.graph.matches = matches[q];
            local.candidates = matches[q];
            local.exact = matches[q];
            local.seconds[2] = seconds;
            info[q] = local;
        }
    }
}

}  // namespace latefold
