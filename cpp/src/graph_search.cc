// GraphIndex search: the planner (exact scan, ACORN, gated or plain traversal per query, from the
// filter's exact match count), the traversal and the exact scan.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "graph_scratch.h"
#include "kernels/table.h"
#include "latefold/graph.h"
#include "latefold/thread_pool.h"

namespace latefold {

namespace {

std::size_t popcount_and(const std::uint64_t* a, const std::uint64_t* b, std::uint64_t* out, std::size_t words) {
    std::size_t count = 0;
    for (std::size_t w = 0; w < words; ++w) {
        out[w] = a[w] & b[w];
        count += std::size_t(__builtin_popcountll(out[w]));
    }
    return count;
}

constexpr std::size_t exact_chunk = 256;

}  // namespace

void GraphIndex::traverse(const Scorer& scorer, std::size_t ef, Mode mode, const std::uint64_t* allowed,
                          Scratch& s, SearchStats& stats) const {
    const std::uint64_t* gate = allowed ? allowed : data_.live.data();
    s.begin(data_.slots);
    s.candidates.clear();
    s.results.clear();
    // Up to ef = 512 the frontier and the results are one array sorted by distance: every node
    // seen that is closer than the ef-th closest eligible one (eligible: may be a result), each
    // marked eligible or not and expanded or not. The next to expand is the closest unexpanded
    // entry; the traversal ends when none is left. These are the expansions, in the same order,
    // of the classic candidate heap and result heap below, without the heaps' unpredictable
    // branches (an insertion moves the tail, a few hundred entries at most).
    enum : std::uint8_t { expanded = 1, eligible = 2 };
    const bool sorted_frontier = ef <= 512;
    const bool all_eligible = mode == Mode::plain && !allowed && data_.live_count == data_.slots;
    if (sorted_frontier && s.pool.size() < 2 * ef + 2) s.pool.resize(2 * ef + 2), s.flags.resize(2 * ef + 2);
    std::size_t size = 0, eligible_count = 0, cursor = 0;  // cursor: the closest unexpanded entry
    auto frontier_insert = [&](const Candidate& c, bool ok) {
        if (eligible_count == ef && !(c < s.pool[size - 1])) return false;
        if (size + 1 >= s.pool.size()) s.pool.resize(2 * s.pool.size()), s.flags.resize(s.pool.size());
        std::size_t at = 0, n = size;  // lower bound, branch-free
        while (n > 0) {
            const std::size_t half = n / 2;
            const bool after = s.pool[at + half] < c;
            at = after ? at + half + 1 : at;
            n = after ? n - half - 1 : half;
        }
        std::memmove(s.pool.data() + at + 1, s.pool.data() + at, (size - at) * sizeof(Candidate));
        std::memmove(s.flags.data() + at + 1, s.flags.data() + at, size - at);
        s.pool[at] = c;
        s.flags[at] = ok ? eligible : 0;
        ++size;
        if (ok && ++eligible_count >= ef) {
            // The last entry is now beyond the ef-th eligible one when there are ef + 1, and so
            // are the ineligible entries after the ef-th.
            if (eligible_count > ef) --size, --eligible_count;
            while (!(s.flags[size - 1] & eligible)) --size;
        }
        cursor = std::min(cursor, at);
        return true;
    };
    auto closer_on_top = [](const Candidate& a, const Candidate& b) { return b < a; };
    auto consider = [&](std::uint32_t slot, float distance) {
        const Candidate c{distance, slot};
        if (sorted_frontier) {
            if (frontier_insert(c, all_eligible || test_bit(gate, slot))) __builtin_prefetch(neighbours(slot));
            return;
        }
        if (s.results.size() >= ef && !(c < s.results.front())) return;
        s.candidates.push_back(c);
        std::push_heap(s.candidates.begin(), s.candidates.end(), closer_on_top);
        __builtin_prefetch(neighbours(slot));  // read when (if) this candidate is expanded
        if (!test_bit(gate, slot)) return;
        s.results.push_back(c);
        std::push_heap(s.results.begin(), s.results.end());
        if (s.results.size() > ef) {
            std::pop_heap(s.results.begin(), s.results.end());
            s.results.pop_back();
        }
    };
    auto score_batch = [&]() {
        s.products.resize(s.batch.size());
        stats.distances += s.batch.size();
        scorer.distances(s.batch.data(), s.batch.size(), s.products.data());
        for (std::size_t i = 0; i < s.batch.size(); ++i) consider(s.batch[i], s.products[i]);
    };

    // The rows (or codes) of a batch are all requested before the first is scored.
    const std::size_t prefetched_bytes = std::min(scorer.fetched_bytes(), kernels::row_prefetch_bytes);
    auto prefetch_row = [&](std::uint32_t slot) __attribute__((always_inline)) {
        kernels::prefetch_lines(scorer.fetched(slot), prefetched_bytes);
    };
    // Start from the pivots (or the entry alone): a one-level sketch of the collection, scored
    // from a contiguous copy, so that the beam begins near the query.
    if (data_.pivots.empty() || !scorer.is_exact()) {  // with codes, the pivots are scored by their codes too
        s.batch.assign(data_.pivots.begin(), data_.pivots.end());
        if (s.batch.empty()) s.batch.push_back(data_.entry);
        for (std::uint32_t p : s.batch) s.visit(p);
        score_batch();
    } else {
        s.products.resize(data_.pivots.size());
        kernels::active_kernels().dot_rows_f32(scorer.query(), data_.pivot_rows.data(), params_.dim,
                                               data_.pivot_order.data(), data_.pivots.size(), params_.dim,
                                               s.products.data());
        stats.distances += data_.pivots.size();
        for (std::size_t i = 0; i < data_.pivots.size(); ++i)
            if (s.visit(data_.pivots[i])) consider(data_.pivots[i], scorer.distance_of_dot(s.products[i], data_.pivots[i]));
    }
    while (true) {
        Candidate c;
        if (sorted_frontier) {
            while (cursor < size && (s.flags[cursor] & expanded)) ++cursor;
            if (cursor == size) break;
            c = s.pool[cursor];
            s.flags[cursor] |= expanded;
        } else {
            if (s.candidates.empty()) break;
            c = s.candidates.front();
            std::pop_heap(s.candidates.begin(), s.candidates.end(), closer_on_top);
            s.candidates.pop_back();
            if (s.results.size() >= ef && s.results.front() < c) break;
        }
        ++stats.visited;
        // The unseen neighbours, collected without a branch: whether one was seen is
        // unpredictable, and a mispredicted branch waiting on a cache miss would serialise the
        // misses of the whole list.
        const std::uint32_t* edges = neighbours(c.slot);
        const std::uint32_t degree = data_.degrees[c.slot];
        s.batch.resize(degree);
        std::size_t fresh = 0;
        for (std::uint32_t e = 0; e < degree; ++e) {
            const std::uint32_t v = edges[e];
            s.batch[fresh] = v;
            fresh += s.visited[v] != s.epoch;
            s.visited[v] = s.epoch;
        }
        s.batch.resize(fresh);
        if (mode == Mode::acorn) {
            // ACORN: a neighbour that fails the filter is replaced by the allowed nodes behind it.
            s.hop.clear();
            std::size_t kept = 0;
            for (std::uint32_t v : s.batch) {
                if (test_bit(gate, v)) {
                    s.batch[kept++] = v;
                    continue;
                }
                const std::uint32_t* second = neighbours(v);
                for (std::uint32_t f = 0; f < data_.degrees[v]; ++f)
                    if (test_bit(gate, second[f]) && s.visit(second[f])) s.hop.push_back(second[f]);
            }
            s.batch.resize(kept);
            s.batch.insert(s.batch.end(), s.hop.begin(), s.hop.end());
        }
        for (std::uint32_t v : s.batch) prefetch_row(v);
        score_batch();
    }
    if (sorted_frontier)
        for (std::size_t i = 0; i < size; ++i)
            if (s.flags[i] & eligible) s.results.push_back(s.pool[i]);
}

void GraphIndex::exact_scan(const Scorer& exact, std::size_t k, const std::uint64_t* allowed, Scratch& s,
                            SearchStats& stats) const {
    // Ties between equal distances go to the lower id, as in the final order.
    auto before = [&](const Candidate& a, const Candidate& b) {
        return a.distance < b.distance || (a.distance == b.distance && data_.ids[a.slot] < data_.ids[b.slot]);
    };
    s.results.clear();
    auto flush = [&]() {
        s.products.resize(s.batch.size());
        exact.distances(s.batch.data(), s.batch.size(), s.products.data());
        stats.distances += s.batch.size();
        for (std::size_t i = 0; i < s.batch.size(); ++i) {
            const Candidate c{s.products[i], s.batch[i]};
            if (s.results.size() < k) {
                s.results.push_back(c);
                std::push_heap(s.results.begin(), s.results.end(), before);
            } else if (before(c, s.results.front())) {
                std::pop_heap(s.results.begin(), s.results.end(), before);
                s.results.back() = c;
                std::push_heap(s.results.begin(), s.results.end(), before);
            }
        }
        s.batch.clear();
    };
    s.batch.clear();
    for (std::size_t w = 0; w < bit_words(data_.slots); ++w)
        for (std::uint64_t bits = allowed[w]; bits; bits &= bits - 1) {
            s.batch.push_back(std::uint32_t(w * 64 + std::size_t(__builtin_ctzll(bits))));
            if (s.batch.size() == exact_chunk) flush();
        }
    flush();
}

void GraphIndex::search(const float* queries, std::size_t nq, const FilterNode* const* filters,
                        const GraphSearchOptions& options, float* scores, std::int64_t* ids,
                        SearchStats* stats) const {
    if (options.k == 0) fail_argument("k must be at least 1");
    std::shared_lock<ForkSafeSharedMutex> lock(mutex_);
    // k beyond the live vectors only pads the results: the searches select no more than those.
    const std::size_t width = options.k, k = std::min(width, std::max<std::size_t>(1, data_.live_count));
    const std::size_t ef = std::min(std::max(options.ef, k), std::max<std::size_t>(1, data_.slots));
    const std::size_t words = bit_words(data_.slots);
    const float pad = params_.metric == Metric::inner_product ? -INFINITY : INFINITY;
    // Planner defaults (bench/bench_graph.py): a traversal scores a few hundred to a few thousand
    // vectors, each a cache miss; an exact scan of the allowed ones streams them, several times
    // cheaper per vector.
    const std::size_t exact_below = options.exact_below ? options.exact_below : 2 * ef * params_.degree;
    // Gated traversal beats ACORN from about 20 % of matches on (forced plans, both sets of
    // bench/bench_graph.py, QPS at recall 0.95: 1.1-1.4x at 20 %, 1.4-1.7x at 30 %).
    const double gated_above = options.gated_above > 0 ? options.gated_above : 0.2;
    const double acorn_above = options.exact_below ? 0.0 : 0.03;

    // A filter shared by several queries is evaluated once (within a memory budget).
    std::unordered_map<const FilterNode*, std::size_t> shared;  // filter -> index in shared_bits
    std::vector<std::vector<std::uint64_t>> shared_bits;
    std::vector<std::size_t> shared_matches;
    if (filters) {
        std::unordered_map<const FilterNode*, std::size_t> uses;
        for (std::size_t i = 0; i < nq; ++i)
            if (filters[i]) ++uses[filters[i]];
        std::vector<const FilterNode*> order;
        for (std::size_t i = 0; i < nq; ++i)
            if (filters[i] && uses[filters[i]] > 1 && !shared.count(filters[i]) &&
                (order.size() + 1) * words <= (std::size_t(1) << 23)) {
                shared.emplace(filters[i], order.size());
                order.push_back(filters[i]);
            }
        shared_bits.resize(order.size());
        shared_matches.resize(order.size());
        parallel_for(order.size(), resolve_threads(options.threads, order.size()), [&](std::size_t f, std::size_t) {
            shared_bits[f].resize(words);
            evaluate_filter(*order[f], data_.attributes, shared_bits[f].data());
            shared_matches[f] = popcount_and(shared_bits[f].data(), data_.live.data(), shared_bits[f].data(), words);
        });
    }

    parallel_for(nq, resolve_threads(options.threads, nq), [&](std::size_t i, std::size_t) {
        Scratch& s = thread_scratch();
        const float* q = queries + i * params_.dim;
        SearchStats st;
        const std::uint64_t* allowed = nullptr;
        std::size_t matches = data_.live_count;
        if (filters && filters[i]) {
            const auto it = shared.find(filters[i]);
            if (it != shared.end()) {
                allowed = shared_bits[it->second].data();
                matches = shared_matches[it->second];
            } else {
                s.allowed.resize(words);
                evaluate_filter(*filters[i], data_.attributes, s.allowed.data());
                matches = popcount_and(s.allowed.data(), data_.live.data(), s.allowed.data(), words);
                allowed = s.allowed.data();
            }
        }
        st.matches = matches;
        s.results.clear();
        float q_norm = 0.0f;
        if (params_.metric == Metric::l2)
            for (std::size_t d = 0; d < params_.dim; ++d) q_norm += q[d] * q[d];
        const RowStore store = rows();
        const Scorer exact = Scorer::exact(store, params_.metric, data_.norms.data(), q);
        // With a quantizer, traversals score codes from the query's tables.
        auto traversal_scorer = [&]() {
            if (!data_.quantizer) return exact;
            s.lut.resize(data_.quantizer->m() * data_.quantizer->ksub());
            data_.quantizer->lookup_tables(q, 1, s.lut.data(), 1);
            return Scorer::codes(*data_.quantizer, data_.codes.data(), s.lut.data(), q_norm);
        };
        if (matches > 0) {
            // Below a few percent a filtered subgraph falls apart even through two hops (the
            // collapse the filtered-search benchmark reports): scan instead.
            if (matches <= exact_below || double(matches) < acorn_above * double(data_.live_count)) {
                st.path = SearchPath::exact;
            } else {
                const Scorer scorer = traversal_scorer();
                const Mode mode = !allowed ? Mode::plain
                                  : double(matches) >= gated_above * double(data_.live_count) ? Mode::gated : Mode::acorn;
                st.path = mode == Mode::plain ? SearchPath::graph : mode == Mode::gated ? SearchPath::gated : SearchPath::acorn;
                traverse(scorer, ef, mode, allowed, s, st);
            }
            if (data_.quantizer && options.rerank && st.path != SearchPath::exact) {
                // The traversal ranked by codes: re-score what it kept from the rows.
                s.batch.clear();
                for (const Candidate& c : s.results) s.batch.push_back(c.slot);
                s.products.resize(s.batch.size());
                exact.distances(s.batch.data(), s.batch.size(), s.products.data());
                st.distances += s.batch.size();
                for (std::size_t j = 0; j < s.batch.size(); ++j) s.results[j].distance = s.products[j];
            }
            if (st.path == SearchPath::exact || s.results.size() < std::min(k, matches)) {
                st.path = SearchPath::exact;
                exact_scan(exact, k, allowed ? allowed : data_.live.data(), s, st);
            }
        }
        std::sort(s.results.begin(), s.results.end(), [&](const Candidate& a, const Candidate& b) {
            return a.distance < b.distance || (a.distance == b.distance && data_.ids[a.slot] < data_.ids[b.slot]);
        });
        for (std::size_t j = 0; j < width; ++j) {
            float score = pad;
            std::int64_t id = -1;
            if (j < s.results.size()) {
                const Candidate& c = s.results[j];
                score = params_.metric == Metric::inner_product ? -c.distance : std::max(0.0f, c.distance + q_norm);
                id = data_.ids[c.slot];
            }
            scores[i * width + j] = score;
            ids[i * width + j] = id;
        }
        if (stats) stats[i] = st;
    });
}

}  // namespace latefold
