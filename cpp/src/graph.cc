#include "latefold/graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_set>

#include "kernels/table.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"

namespace latefold {

const char* search_path_name(SearchPath path) noexcept {
    switch (path) {
        case SearchPath::graph: return "graph";
        case SearchPath::gated: return "gated";
        case SearchPath::acorn: return "acorn";
        case SearchPath::exact: return "exact";
        default: return "none";
    }
}

// Per-thread buffers, reused across calls (no allocation in the hot loops once warm).
struct GraphIndex::Scratch {
    std::vector<std::uint32_t> visited;  // visited[slot] == epoch: seen in this traversal
    std::uint32_t epoch = 0;
    std::vector<Candidate> candidates;   // ef > 512: min-heap (closest on top)
    std::vector<Candidate> results;      // the allowed nodes kept (ef > 512: a max-heap, farthest on top)
    std::vector<Candidate> pool;         // the sorted frontier (traversals with ef <= 512)
    std::vector<std::uint8_t> flags;     // pool[i]: expanded, eligible
    std::vector<std::uint32_t> batch;    // slots to score
    std::vector<std::uint32_t> hop;      // ACORN: allowed nodes two hops away
    std::vector<float> products;         // their inner products
    std::vector<float> query;            // a stored row as float32
    std::vector<std::uint64_t> allowed;  // the filter's bitset
    std::vector<float> row;              // prune: a candidate's row as float32
    std::vector<float> lut;              // the query's ADC tables (with a quantizer)

    void begin(std::size_t slots) {
        if (visited.size() < slots) visited.assign(slots, 0), epoch = 0;
        if (++epoch == 0) std::fill(visited.begin(), visited.end(), 0), epoch = 1;
    }
    bool visit(std::uint32_t slot) {  // true the first time
        if (visited[slot] == epoch) return false;
        visited[slot] = epoch;
        return true;
    }
};

namespace {

GraphIndex::Scratch& thread_scratch() {
    thread_local GraphIndex::Scratch scratch;
    return scratch;
}

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

GraphIndex::GraphIndex(const GraphParams& params) : params_(params) {
    if (params.dim == 0) fail_argument("dim must be at least 1");
    if (params.degree < 2 || params.degree > 1024) fail_argument("degree must be in [2, 1024]");
    if (params.ef_construction < 1) fail_argument("ef_construction must be at least 1");
    if (!(params.alpha >= 1.0f && params.alpha <= 4.0f)) fail_argument("alpha must be in [1, 4]");
}

std::size_t GraphIndex::size() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return live_count_;
}

std::size_t GraphIndex::slots() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return slots_;
}

bool GraphIndex::contains(std::int64_t id) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return slot_of_.count(id) != 0;
}

void GraphIndex::set_quantizer(const ProductQuantizer& quantizer) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    if (slots_ != 0) fail_argument("a quantizer can only be set on an empty index");
    if (!quantizer.trained()) fail_argument("the quantizer is not trained");
    if (quantizer.dim() != params_.dim) fail_argument("the quantizer's dim differs from the index's");
    if (quantizer.metric() != params_.metric) fail_argument("the quantizer's metric differs from the index's");
    quantizer_ = std::make_unique<ProductQuantizer>(quantizer);
}

void GraphIndex::row_as_float(std::uint32_t slot, float* out) const {
    if (params_.storage == DType::f32)
        std::memcpy(out, row(slot), params_.dim * sizeof(float));
    else
        kernels::active_kernels().f16_to_f32(static_cast<const half_bits*>(row(slot)), out, params_.dim);
}

void GraphIndex::dots(const float* q, const std::uint32_t* slots, std::size_t count, float* out) const {
    const kernels::KernelTable& k = kernels::active_kernels();
    if (params_.storage == DType::f32)
        k.dot_rows_f32(q, static_cast<const float*>(vectors_), params_.dim, slots, count, params_.dim, out);
    else
        k.dot_rows_f16(q, static_cast<const half_bits*>(vectors_), params_.dim, slots, count, params_.dim, out);
}

// ---------------------------------------------------------------------------------- traversal

void GraphIndex::traverse(const float* q, std::size_t ef, Mode mode, const std::uint64_t* allowed,
                          Scratch& s, SearchStats& stats, const float* lut, float lut_offset) const {
    const std::uint64_t* gate = allowed ? allowed : live_.data();
    s.begin(slots_);
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
    const bool all_eligible = mode == Mode::plain && !allowed && live_count_ == slots_;
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
    const bool ip = params_.metric == Metric::inner_product;
    auto score_batch = [&]() {
        s.products.resize(s.batch.size());
        stats.distances += s.batch.size();
        if (lut) {
            quantizer_->score_codes(lut, codes_.data(), s.batch.data(), s.batch.size(), s.products.data());
            for (std::size_t i = 0; i < s.batch.size(); ++i)
                consider(s.batch[i], ip ? -s.products[i] : s.products[i] - lut_offset);
            return;
        }
        dots(q, s.batch.data(), s.batch.size(), s.products.data());
        for (std::size_t i = 0; i < s.batch.size(); ++i) consider(s.batch[i], distance_of(s.products[i], s.batch[i]));
    };

    // The rows (or codes) of a batch are all requested before the first is scored.
    const std::size_t code_bytes = lut ? quantizer_->code_size() : 0;
    const char* fetched = lut ? reinterpret_cast<const char*>(codes_.data()) : static_cast<const char*>(vectors_);
    const std::size_t fetched_bytes = lut ? code_bytes : row_bytes();
    const std::size_t prefetched_bytes = std::min(fetched_bytes, kernels::row_prefetch_bytes);
    auto prefetch_row = [&](std::uint32_t slot) __attribute__((always_inline)) {
        kernels::prefetch_lines(fetched + std::size_t(slot) * fetched_bytes, prefetched_bytes);
    };
    // Start from the pivots (or the entry alone): a one-level sketch of the collection, scored
    // from a contiguous copy, so that the beam begins near the query.
    if (pivots_.empty() || lut) {  // with codes, the pivots are scored by their codes too
        s.batch.assign(pivots_.begin(), pivots_.end());
        if (s.batch.empty()) s.batch.push_back(entry_);
        for (std::uint32_t p : s.batch) s.visit(p);
        score_batch();
    } else {
        s.products.resize(pivots_.size());
        kernels::active_kernels().dot_rows_f32(q, pivot_rows_.data(), params_.dim, pivot_order_.data(),
                                               pivots_.size(), params_.dim, s.products.data());
        stats.distances += pivots_.size();
        for (std::size_t i = 0; i < pivots_.size(); ++i)
            if (s.visit(pivots_[i])) consider(pivots_[i], distance_of(s.products[i], pivots_[i]));
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
        const std::uint32_t degree = degrees_[c.slot];
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
                for (std::uint32_t f = 0; f < degrees_[v]; ++f)
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

void GraphIndex::exact_scan(const float* q, std::size_t k, const std::uint64_t* allowed, Scratch& s,
                            SearchStats& stats) const {
    // Ties between equal distances go to the lower id, as in the final order.
    auto before = [&](const Candidate& a, const Candidate& b) {
        return a.distance < b.distance || (a.distance == b.distance && ids_[a.slot] < ids_[b.slot]);
    };
    s.results.clear();
    auto flush = [&]() {
        s.products.resize(s.batch.size());
        dots(q, s.batch.data(), s.batch.size(), s.products.data());
        stats.distances += s.batch.size();
        for (std::size_t i = 0; i < s.batch.size(); ++i) {
            const Candidate c{distance_of(s.products[i], s.batch[i]), s.batch[i]};
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
    for (std::size_t w = 0; w < bit_words(slots_); ++w)
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
    std::shared_lock<std::shared_mutex> lock(mutex_);
    const std::size_t k = options.k, ef = std::max(options.ef, k), words = bit_words(slots_);
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
            evaluate_filter(*order[f], attributes_, shared_bits[f].data());
            shared_matches[f] = popcount_and(shared_bits[f].data(), live_.data(), shared_bits[f].data(), words);
        });
    }

    parallel_for(nq, resolve_threads(options.threads, nq), [&](std::size_t i, std::size_t) {
        Scratch& s = thread_scratch();
        const float* q = queries + i * params_.dim;
        SearchStats st;
        const std::uint64_t* allowed = nullptr;
        std::size_t matches = live_count_;
        if (filters && filters[i]) {
            const auto it = shared.find(filters[i]);
            if (it != shared.end()) {
                allowed = shared_bits[it->second].data();
                matches = shared_matches[it->second];
            } else {
                s.allowed.resize(words);
                evaluate_filter(*filters[i], attributes_, s.allowed.data());
                matches = popcount_and(s.allowed.data(), live_.data(), s.allowed.data(), words);
                allowed = s.allowed.data();
            }
        }
        st.matches = matches;
        s.results.clear();
        float q_norm = 0.0f;
        if (params_.metric == Metric::l2)
            for (std::size_t d = 0; d < params_.dim; ++d) q_norm += q[d] * q[d];
        // With a quantizer, traversals score codes from the query's tables.
        const float* lut = nullptr;
        auto tables = [&]() {
            if (!quantizer_) return;
            s.lut.resize(quantizer_->m() * quantizer_->ksub());
            quantizer_->lookup_tables(q, 1, s.lut.data(), 1);
            lut = s.lut.data();
        };
        if (matches > 0) {
            // Below a few percent a filtered subgraph falls apart even through two hops (the
            // collapse the filtered-search benchmark reports): scan instead.
            if (matches <= exact_below || double(matches) < acorn_above * double(live_count_)) {
                st.path = SearchPath::exact;
            } else {
                tables();
                const Mode mode = !allowed ? Mode::plain
                                  : double(matches) >= gated_above * double(live_count_) ? Mode::gated : Mode::acorn;
                st.path = mode == Mode::plain ? SearchPath::graph : mode == Mode::gated ? SearchPath::gated : SearchPath::acorn;
                traverse(q, ef, mode, allowed, s, st, lut, q_norm);
            }
            if (lut && options.rerank && st.path != SearchPath::exact) {
                // The traversal ranked by codes: re-score what it kept from the rows.
                s.batch.clear();
                for (const Candidate& c : s.results) s.batch.push_back(c.slot);
                s.products.resize(s.batch.size());
                dots(q, s.batch.data(), s.batch.size(), s.products.data());
                st.distances += s.batch.size();
                for (std::size_t j = 0; j < s.batch.size(); ++j) s.results[j].distance = distance_of(s.products[j], s.batch[j]);
            }
            if (st.path == SearchPath::exact || s.results.size() < std::min(k, matches)) {
                st.path = SearchPath::exact;
                exact_scan(q, k, allowed ? allowed : live_.data(), s, st);
            }
        }
        std::sort(s.results.begin(), s.results.end(), [&](const Candidate& a, const Candidate& b) {
            return a.distance < b.distance || (a.distance == b.distance && ids_[a.slot] < ids_[b.slot]);
        });
        for (std::size_t j = 0; j < k; ++j) {
            float score = pad;
            std::int64_t id = -1;
            if (j < s.results.size()) {
                const Candidate& c = s.results[j];
                score = params_.metric == Metric::inner_product ? -c.distance : std::max(0.0f, c.distance + q_norm);
                id = ids_[c.slot];
            }
            scores[i * k + j] = score;
            ids[i * k + j] = id;
        }
        if (stats) stats[i] = st;
    });
}

// ------------------------------------------------------------------------------ construction

// Vamana's RobustPrune: walk the candidates from the closest; keep one unless a kept neighbour s
// is alpha times closer to it than p is (Euclidean). `pool` holds distances from p.
void GraphIndex::prune(std::uint32_t p, std::vector<Candidate>& pool, std::vector<std::uint32_t>& out,
                       Scratch& s) const {
    std::sort(pool.begin(), pool.end());
    out.clear();
    const float alpha2 = params_.alpha * params_.alpha;
    const bool ip = params_.metric == Metric::inner_product;
    std::vector<float>& products = s.products;
    if (params_.storage != DType::f32) s.row.resize(params_.dim);
    std::uint32_t previous = p;
    for (const Candidate& c : pool) {
        if (c.slot == p || c.slot == previous) continue;  // sorted: duplicates are adjacent
        previous = c.slot;
        if (out.size() == params_.degree) break;
        const float to_p = ip ? norms_[p] + norms_[c.slot] + 2.0f * c.distance : c.distance + norms_[p];
        const float* x = params_.storage == DType::f32 ? static_cast<const float*>(row(c.slot)) : s.row.data();
        if (params_.storage != DType::f32) row_as_float(c.slot, s.row.data());
        products.resize(out.size());
        dots(x, out.data(), out.size(), products.data());
        bool dominated = false;
        for (std::size_t j = 0; j < out.size() && !dominated; ++j)
            dominated = alpha2 * (norms_[out[j]] + norms_[c.slot] - 2.0f * products[j]) <= to_p;
        if (!dominated) out.push_back(c.slot);
    }
}

void GraphIndex::insert(std::uint32_t first, std::size_t n, std::size_t threads) {
    // Insert in a fixed pseudo-random order: neighbouring rows are often alike (tokens of one
    // document), and alike vectors in one round could not link to each other.
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), first);
    const std::uint64_t key = random::stream_key(first, n);
    for (std::size_t i = n; i > 1; --i)
        std::swap(order[i - 1], order[random::below(random::word(key, i), std::uint32_t(i))]);
    std::size_t in_graph = live_count_ - n;  // linked vectors before this call
    std::size_t pos = 0;
    if (in_graph == 0) {
        // The first vector linked, and the entry point: the one nearest the batch's mean.
        const std::size_t best = nearest_to_mean(order);
        entry_ = order[best];
        std::rotate(order.begin(), order.begin() + std::ptrdiff_t(best), order.begin() + std::ptrdiff_t(best) + 1);
        pos = in_graph = 1;
    }
    const std::size_t L = std::max(params_.ef_construction, params_.degree);
    std::vector<std::vector<std::uint32_t>> fresh;
    while (pos < n) {
        const std::size_t b = std::min(n - pos, std::max<std::size_t>(1, in_graph / 50));
        fresh.assign(b, {});
        // 1. Each vector of the round searches the graph as it was, and prunes what it found.
        parallel_for(b, resolve_threads(threads, b), [&](std::size_t i, std::size_t) {
            Scratch& s = thread_scratch();
            const std::uint32_t p = order[pos + i];
            s.query.resize(params_.dim);
            row_as_float(p, s.query.data());
            SearchStats ignored;
            traverse(s.query.data(), L, Mode::plain, nullptr, s, ignored);
            std::vector<Candidate> pool(s.results);
            prune(p, pool, fresh[i], s);
        });
        // 2. Their edges, then the reverse edges in a fixed order (target, source).
        std::vector<std::pair<std::uint32_t, std::uint32_t>> reverse;
        for (std::size_t i = 0; i < b; ++i) {
            const std::uint32_t p = order[pos + i];
            std::copy(fresh[i].begin(), fresh[i].end(), edges_.begin() + std::ptrdiff_t(std::size_t(p) * params_.degree));
            degrees_[p] = std::uint32_t(fresh[i].size());
            for (std::uint32_t t : fresh[i]) reverse.emplace_back(t, p);
        }
        std::sort(reverse.begin(), reverse.end());
        std::vector<std::size_t> starts;
        for (std::size_t r = 0; r < reverse.size(); ++r)
            if (r == 0 || reverse[r].first != reverse[r - 1].first) starts.push_back(r);
        starts.push_back(reverse.size());
        parallel_for(starts.size() - 1, resolve_threads(threads, starts.size() - 1), [&](std::size_t g, std::size_t) {
            Scratch& s = thread_scratch();
            const std::uint32_t t = reverse[starts[g]].first;
            std::uint32_t* edges = edges_.data() + std::size_t(t) * params_.degree;
            std::vector<std::uint32_t> merged(edges, edges + degrees_[t]);
            for (std::size_t r = starts[g]; r < starts[g + 1]; ++r)
                if (std::find(merged.begin(), merged.end(), reverse[r].second) == merged.end())
                    merged.push_back(reverse[r].second);
            if (merged.size() <= params_.degree) {
                std::copy(merged.begin(), merged.end(), edges);
                degrees_[t] = std::uint32_t(merged.size());
                return;
            }
            relink(t, merged, s);
        });
        pos += b;
        in_graph += b;
        if (in_graph >= 2 * entry_chosen_at_) choose_entries();
    }
}

void GraphIndex::relink(std::uint32_t p, const std::vector<std::uint32_t>& candidates, Scratch& s) {
    s.query.resize(params_.dim);
    row_as_float(p, s.query.data());
    std::vector<float> products(candidates.size());
    dots(s.query.data(), candidates.data(), candidates.size(), products.data());
    std::vector<Candidate> pool(candidates.size());
    for (std::size_t j = 0; j < candidates.size(); ++j) pool[j] = {distance_of(products[j], candidates[j]), candidates[j]};
    std::vector<std::uint32_t> kept;
    prune(p, pool, kept, s);
    std::copy(kept.begin(), kept.end(), edges_.begin() + std::ptrdiff_t(std::size_t(p) * params_.degree));
    degrees_[p] = std::uint32_t(kept.size());
}

std::size_t GraphIndex::nearest_to_mean(const std::vector<std::uint32_t>& slots) const {
    std::vector<double> sum(params_.dim, 0.0);
    std::vector<float> x(params_.dim);
    for (std::uint32_t p : slots) {
        row_as_float(p, x.data());
        for (std::size_t d = 0; d < params_.dim; ++d) sum[d] += x[d];
    }
    std::vector<float> mean(params_.dim);
    for (std::size_t d = 0; d < params_.dim; ++d) mean[d] = float(sum[d] / double(slots.size()));
    std::vector<float> products(slots.size());
    dots(mean.data(), slots.data(), slots.size(), products.data());
    std::size_t best = 0;
    for (std::size_t i = 1; i < slots.size(); ++i)
        if (norms_[slots[i]] - 2 * products[i] < norms_[slots[best]] - 2 * products[best]) best = i;
    return best;
}

void GraphIndex::choose_entries() {
    // The linked live vectors; the entry is the one nearest their mean, the pivots an even
    // sample of them (the entry first).
    std::vector<std::uint32_t> linked;
    for (std::uint32_t p = 0; p < slots_; ++p)
        if (test_bit(live_.data(), p) && (degrees_[p] > 0 || p == entry_)) linked.push_back(p);
    entry_chosen_at_ = linked.size();
    pivots_.clear();
    if (linked.empty()) return;
    entry_ = linked[nearest_to_mean(linked)];
    pivots_.push_back(entry_);
    const std::size_t stride = (linked.size() + max_pivots - 1) / max_pivots;
    for (std::size_t i = stride / 2; i < linked.size() && pivots_.size() < max_pivots; i += stride)
        if (linked[i] != entry_) pivots_.push_back(linked[i]);
    load_pivots();
}

void GraphIndex::load_pivots() {
    pivot_rows_.resize(pivots_.size() * params_.dim);
    pivot_order_.resize(pivots_.size());
    for (std::size_t i = 0; i < pivots_.size(); ++i) {
        row_as_float(pivots_[i], pivot_rows_.data() + i * params_.dim);
        pivot_order_[i] = std::uint32_t(i);
    }
}

void GraphIndex::reserve(std::size_t slots) {
    const std::size_t bytes = slots * row_bytes();
    if (vectors_ != owned_.data() || owned_.size() < bytes) {
        AlignedVector<std::uint8_t> grown(std::max(bytes, std::min(2 * owned_.size(), bytes + (std::size_t(1) << 30))));
        if (slots_) std::memcpy(grown.data(), vectors_, slots_ * row_bytes());
        owned_.swap(grown);
        vectors_ = owned_.data();
    }
    norms_.resize(slots);
    ids_.resize(slots);
    live_.resize(bit_words(slots));
    degrees_.resize(slots);
    edges_.resize(slots * params_.degree);
    if (quantizer_) codes_.resize(slots * quantizer_->code_size());
}

void GraphIndex::add(const void* rows, const std::int64_t* ids, std::size_t n,
                     const std::vector<ColumnBatch>& columns, std::size_t threads) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    {
        std::unordered_set<std::int64_t> seen;
        for (std::size_t i = 0; i < n; ++i) {
            if (slot_of_.count(ids[i])) fail_argument("ids: id " + std::to_string(ids[i]) + " is already in the index");
            if (!seen.insert(ids[i]).second) fail_argument("ids: id " + std::to_string(ids[i]) + " is given twice");
        }
    }
    if (slots_ + n > std::size_t(UINT32_MAX)) throw std::length_error("too many vectors for one index (2^32 - 1)");
    attributes_.check(columns, n);
    if (n == 0) return;
    reserve(slots_ + n);
    const std::uint32_t first = std::uint32_t(slots_);
    std::memcpy(static_cast<std::uint8_t*>(owned_.data()) + slots_ * row_bytes(), rows, n * row_bytes());
    attributes_.append(columns, n);
    if (quantizer_) {
        std::vector<float> converted;
        const float* x = static_cast<const float*>(rows);
        if (params_.storage != DType::f32) {
            converted.resize(n * params_.dim);
            kernels::active_kernels().f16_to_f32(static_cast<const half_bits*>(rows), converted.data(), n * params_.dim);
            x = converted.data();
        }
        quantizer_->encode(x, n, codes_.data() + std::size_t(first) * quantizer_->code_size(), threads);
    }
    std::vector<float> x(params_.dim);
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t p = first + std::uint32_t(i);
        row_as_float(p, x.data());
        dots(x.data(), &p, 1, &norms_[p]);
        ids_[p] = ids[i];
        slot_of_[ids[i]] = p;
        set_bit(live_.data(), p);
        degrees_[p] = 0;
    }
    slots_ += n;
    live_count_ += n;
    insert(first, n, threads);
    if (!test_bit(live_.data(), entry_)) choose_entries();
}

void GraphIndex::remove(const std::int64_t* ids, std::size_t n) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    std::unordered_set<std::int64_t> seen;
    for (std::size_t i = 0; i < n; ++i) {
        if (!slot_of_.count(ids[i])) fail_argument("ids: id " + std::to_string(ids[i]) + " is not in the index");
        if (!seen.insert(ids[i]).second) fail_argument("ids: id " + std::to_string(ids[i]) + " is given twice");
    }
    for (std::size_t i = 0; i < n; ++i) {
        clear_bit(live_.data(), slot_of_[ids[i]]);
        slot_of_.erase(ids[i]);
    }
    live_count_ -= n;
}

void GraphIndex::compact(std::size_t threads) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    auto dead = [&](std::uint32_t p) { return !test_bit(live_.data(), p); };
    std::vector<std::uint32_t> affected;
    for (std::uint32_t p = 0; p < slots_; ++p) {
        if (dead(p) || degrees_[p] == 0) continue;
        const std::uint32_t* e = neighbours(p);
        if (std::any_of(e, e + degrees_[p], dead)) affected.push_back(p);
    }
    // Each affected node takes its live neighbours and the live neighbours of its dead ones,
    // then prunes. Only dead nodes' edges are read and only live nodes' edges written.
    parallel_for(affected.size(), resolve_threads(threads, affected.size()), [&](std::size_t i, std::size_t) {
        Scratch& s = thread_scratch();
        const std::uint32_t p = affected[i];
        std::vector<std::uint32_t> candidates;
        const std::uint32_t* e = neighbours(p);
        for (std::uint32_t j = 0; j < degrees_[p]; ++j) {
            if (!dead(e[j])) {
                candidates.push_back(e[j]);
                continue;
            }
            const std::uint32_t* f = neighbours(e[j]);
            for (std::uint32_t m = 0; m < degrees_[e[j]]; ++m)
                if (!dead(f[m]) && f[m] != p) candidates.push_back(f[m]);
        }
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        relink(p, candidates, s);
    });
    for (std::uint32_t p = 0; p < slots_; ++p)
        if (dead(p)) degrees_[p] = 0;
    choose_entries();
}

std::vector<std::uint64_t> GraphIndex::slots_of_ids(const std::int64_t* ids, std::size_t n) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<std::uint64_t> bits(bit_words(slots_), 0);
    for (std::size_t i = 0; i < n; ++i) {
        auto it = slot_of_.find(ids[i]);
        if (it == slot_of_.end()) fail_argument("filter: id " + std::to_string(ids[i]) + " is not in the index");
        set_bit(bits.data(), it->second);
    }
    return bits;
}

std::vector<std::uint64_t> GraphIndex::slots_of_mask(const std::uint8_t* mask, std::size_t n) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    std::vector<std::uint64_t> bits(bit_words(slots_), 0);
    for (std::size_t p = 0; p < slots_; ++p)
        if (ids_[p] >= 0 && std::size_t(ids_[p]) < n && mask[ids_[p]]) set_bit(bits.data(), p);
    return bits;
}

GraphState GraphIndex::state() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    GraphState st;
    st.ids = ids_;
    st.live.resize(slots_);
    for (std::size_t p = 0; p < slots_; ++p) st.live[p] = test_bit(live_.data(), p);
    st.degrees = degrees_;
    st.edges = edges_;
    st.entry = entry_;
    st.pivots = pivots_;
    st.codes.assign(codes_.begin(), codes_.begin() + std::ptrdiff_t(quantizer_ ? slots_ * quantizer_->code_size() : 0));
    return st;
}

void GraphIndex::restore(GraphIndex& index, GraphState st, const void* vectors, bool borrow,
                         const std::vector<ColumnBatch>& columns) {
    std::unique_lock<std::shared_mutex> lock(index.mutex_);
    const std::size_t n = st.ids.size(), R = index.params_.degree;
    auto corrupt = [](const std::string& what) { fail_argument("index data is inconsistent: " + what); };
    if (index.slots_ != 0) corrupt("restore into a non-empty index");
    if (st.live.size() != n || st.degrees.size() != n || st.edges.size() != n * R) corrupt("array sizes");
    if (n > std::size_t(UINT32_MAX)) corrupt("too many vectors");
    if (n && st.entry >= n) corrupt("entry point");
    if (st.pivots.size() > max_pivots) corrupt("pivots");
    if (st.codes.size() != (index.quantizer_ ? n * index.quantizer_->code_size() : 0)) corrupt("codes");
    for (std::uint32_t p : st.pivots)
        if (p >= n) corrupt("pivots");
    std::unordered_map<std::int64_t, std::uint32_t> slot_of;
    std::size_t live = 0;
    for (std::size_t p = 0; p < n; ++p) {
        if (st.live[p] > 1) corrupt("live flags");
        if (st.degrees[p] > R) corrupt("degree of slot " + std::to_string(p));
        for (std::size_t j = 0; j < st.degrees[p]; ++j)
            if (st.edges[p * R + j] >= n) corrupt("edge of slot " + std::to_string(p));
        if (st.live[p]) {
            ++live;
            if (!slot_of.emplace(st.ids[p], std::uint32_t(p)).second) corrupt("id " + std::to_string(st.ids[p]) + " repeated");
        }
    }
    index.attributes_.check(columns, n);
    GraphIndex fresh(index.params_);
    fresh.owned_.clear();
    if (borrow) {
        fresh.vectors_ = vectors;
    } else {
        fresh.owned_.resize(n * fresh.row_bytes());
        if (n) std::memcpy(fresh.owned_.data(), vectors, n * fresh.row_bytes());
        fresh.vectors_ = fresh.owned_.data();
    }
    fresh.slots_ = n;
    fresh.norms_.resize(n);
    std::vector<float> x(fresh.params_.dim);
    for (std::uint32_t p = 0; p < n; ++p) {
        fresh.row_as_float(p, x.data());
        fresh.dots(x.data(), &p, 1, &fresh.norms_[p]);
        if (!std::isfinite(fresh.norms_[p])) corrupt("vector " + std::to_string(p) + " is not finite");
    }
    fresh.ids_ = std::move(st.ids);
    fresh.live_.assign(bit_words(n), 0);
    for (std::size_t p = 0; p < n; ++p)
        if (st.live[p]) set_bit(fresh.live_.data(), p);
    fresh.degrees_ = std::move(st.degrees);
    fresh.edges_ = std::move(st.edges);
    fresh.slot_of_ = std::move(slot_of);
    fresh.live_count_ = live;
    fresh.entry_chosen_at_ = std::size_t(std::count_if(fresh.degrees_.begin(), fresh.degrees_.end(),
                                                       [](std::uint32_t d) { return d > 0; }));
    fresh.entry_ = st.entry;
    fresh.attributes_.append(columns, n);
    // Move everything but the lock.
    index.owned_.swap(fresh.owned_);
    index.vectors_ = borrow ? vectors : index.owned_.data();
    index.slots_ = fresh.slots_;
    index.live_count_ = fresh.live_count_;
    index.norms_.swap(fresh.norms_);
    index.ids_.swap(fresh.ids_);
    index.live_.swap(fresh.live_);
    index.degrees_.swap(fresh.degrees_);
    index.edges_.swap(fresh.edges_);
    index.slot_of_.swap(fresh.slot_of_);
    index.entry_ = fresh.entry_;
    index.entry_chosen_at_ = fresh.entry_chosen_at_;
    index.pivots_ = std::move(st.pivots);
    index.codes_ = std::move(st.codes);
    index.load_pivots();
    std::swap(index.attributes_, fresh.attributes_);
}

}  // namespace latefold
