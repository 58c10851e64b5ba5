// GraphIndex construction and change: Vamana insertion in rounds, pruning, entry points and
// pivots, deletion (tombstones) and compaction (FreshDiskANN's repair).
#include <algorithm>
#include <cstring>
#include <mutex>
#include <numeric>
#include <string>
#include <unordered_set>

#include "graph_scratch.h"
#include "latefold/fault.h"
#include "latefold/graph.h"
#include "latefold/multivectors.h"
#include "latefold/random.h"
#include "latefold/thread_pool.h"

namespace latefold {

// Vamana's RobustPrune: walk the candidates from the closest; keep one unless a kept neighbour s
// is alpha times closer to it than p is (Euclidean). `pool` holds distances from p.
void GraphIndex::prune(std::uint32_t p, std::vector<Candidate>& pool, std::vector<std::uint32_t>& out,
                       Scratch& s) const {
    std::sort(pool.begin(), pool.end());
    out.clear();
    const float alpha2 = params_.alpha * params_.alpha;
    const bool ip = params_.metric == Metric::inner_product;
    std::vector<float>& products = s.products;
    const RowStore store = rows();
    s.row.resize(params_.dim);
    std::uint32_t previous = p;
    for (const Candidate& c : pool) {
        if (c.slot == p || c.slot == previous) continue;  // sorted: duplicates are adjacent
        previous = c.slot;
        if (out.size() == params_.degree) break;
        const float to_p = ip ? data_.norms[p] + data_.norms[c.slot] + 2.0f * c.distance : c.distance + data_.norms[p];
        store.to_float(c.slot, s.row.data());
        products.resize(out.size());
        store.dots(s.row.data(), out.data(), out.size(), products.data());
        bool dominated = false;
        for (std::size_t j = 0; j < out.size() && !dominated; ++j)
            dominated = alpha2 * (data_.norms[out[j]] + data_.norms[c.slot] - 2.0f * products[j]) <= to_p;
        if (!dominated) out.push_back(c.slot);
    }
}

struct GraphIndex::EdgeLog {
    std::vector<std::uint32_t> slots;
    std::vector<std::uint32_t> saved;  // per slot: its degree, then its `degree` edge entries
    std::unordered_set<std::uint32_t> logged;

    void save(const Data& d, std::size_t degree, std::uint32_t t) {
        if (logged.count(t)) return;  // the first copy is the one to restore
        saved.push_back(d.degrees[t]);
        saved.insert(saved.end(), d.edges.data() + std::size_t(t) * degree, d.edges.data() + std::size_t(t + 1) * degree);
        slots.push_back(t);
        logged.insert(t);
    }
    void restore(Data& d, std::size_t degree) const noexcept {
        for (std::size_t i = 0; i < slots.size(); ++i) {
            const std::uint32_t* entry = saved.data() + i * (degree + 1);
            d.degrees.at_mut(slots[i]) = entry[0];
            std::copy(entry + 1, entry + 1 + degree, d.edges.own().data() + std::size_t(slots[i]) * degree);
        }
    }
};

void GraphIndex::insert(std::uint32_t first, std::size_t n, std::size_t threads, EdgeLog& log) {
    // Insert in a fixed pseudo-random order: neighbouring rows are often alike (tokens of one
    // document), and alike vectors in one round could not link to each other.
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), first);
    const std::uint64_t key = random::stream_key(first, n);
    for (std::size_t i = n; i > 1; --i)
        std::swap(order[i - 1], order[random::below(random::word(key, i), std::uint32_t(i))]);
    std::size_t in_graph = data_.live_count - n;  // linked vectors before this call
    std::size_t pos = 0;
    if (in_graph == 0) {
        // The first vector linked, and the entry point: the one nearest the batch's mean.
        const std::size_t best = nearest_to_mean(order);
        data_.entry = order[best];
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
            const RowStore store = rows();
            store.to_float(p, s.query.data());
            SearchStats ignored;
            traverse(Scorer::exact(store, params_.metric, data_.norms.data(), s.query.data()), L, Mode::plain, nullptr,
                     s, ignored);
            std::vector<Candidate> pool(s.results);
            prune(p, pool, fresh[i], s);
            fault_point();
        });
        // 2. Their edges, then the reverse edges in a fixed order (target, source). Existing
        // nodes about to change are logged first, so that a failed add can restore them.
        std::vector<std::pair<std::uint32_t, std::uint32_t>> reverse;
        for (std::size_t i = 0; i < b; ++i)
            for (std::uint32_t t : fresh[i]) reverse.emplace_back(t, order[pos + i]);
        std::sort(reverse.begin(), reverse.end());
        std::vector<std::size_t> starts;
        for (std::size_t r = 0; r < reverse.size(); ++r)
            if (r == 0 || reverse[r].first != reverse[r - 1].first) {
                starts.push_back(r);
                if (reverse[r].first < first) log.save(data_, params_.degree, reverse[r].first);
            }
        starts.push_back(reverse.size());
        for (std::size_t i = 0; i < b; ++i) {
            const std::uint32_t p = order[pos + i];
            std::copy(fresh[i].begin(), fresh[i].end(), data_.edges.mutable_data() + std::size_t(p) * params_.degree);
            data_.degrees.at_mut(p) = std::uint32_t(fresh[i].size());
        }
        parallel_for(starts.size() - 1, resolve_threads(threads, starts.size() - 1), [&](std::size_t g, std::size_t) {
            Scratch& s = thread_scratch();
            const std::uint32_t t = reverse[starts[g]].first;
            std::uint32_t* edges = data_.edges.mutable_data() + std::size_t(t) * params_.degree;
            std::vector<std::uint32_t> merged(edges, edges + data_.degrees[t]);
            for (std::size_t r = starts[g]; r < starts[g + 1]; ++r)
                if (std::find(merged.begin(), merged.end(), reverse[r].second) == merged.end())
                    merged.push_back(reverse[r].second);
            fault_point();
            if (merged.size() <= params_.degree) {
                std::copy(merged.begin(), merged.end(), edges);
                data_.degrees.at_mut(t) = std::uint32_t(merged.size());
                return;
            }
            std::vector<std::uint32_t> kept;
            relink(t, merged, s, kept);
            std::copy(kept.begin(), kept.end(), edges);
            data_.degrees.at_mut(t) = std::uint32_t(kept.size());
        });
        pos += b;
        in_graph += b;
        if (in_graph >= 2 * data_.entry_chosen_at) {
            Entries entries = choose_entries();
            set_entries(entries);
        }
    }
}

void GraphIndex::relink(std::uint32_t p, const std::vector<std::uint32_t>& candidates, Scratch& s,
                        std::vector<std::uint32_t>& kept) const {
    s.query.resize(params_.dim);
    const RowStore store = rows();
    store.to_float(p, s.query.data());
    std::vector<float> distances(candidates.size());
    Scorer::exact(store, params_.metric, data_.norms.data(), s.query.data())
        .distances(candidates.data(), candidates.size(), distances.data());
    std::vector<Candidate> pool(candidates.size());
    for (std::size_t j = 0; j < candidates.size(); ++j) pool[j] = {distances[j], candidates[j]};
    prune(p, pool, kept, s);
}

std::size_t GraphIndex::nearest_to_mean(const std::vector<std::uint32_t>& slots) const {
    const RowStore store = rows();
    std::vector<double> sum(params_.dim, 0.0);
    std::vector<float> x(params_.dim);
    for (std::uint32_t p : slots) {
        store.to_float(p, x.data());
        for (std::size_t d = 0; d < params_.dim; ++d) sum[d] += x[d];
    }
    std::vector<float> mean(params_.dim);
    for (std::size_t d = 0; d < params_.dim; ++d) mean[d] = float(sum[d] / double(slots.size()));
    std::vector<float> products(slots.size());
    store.dots(mean.data(), slots.data(), slots.size(), products.data());
    std::size_t best = 0;
    for (std::size_t i = 1; i < slots.size(); ++i)
        if (data_.norms[slots[i]] - 2 * products[i] < data_.norms[slots[best]] - 2 * products[best]) best = i;
    return best;
}

GraphIndex::Entries GraphIndex::choose_entries() const {
    // The linked live vectors; the entry is the one nearest their mean, the pivots an even
    // sample of them (the entry first).
    fault_point();
    std::vector<std::uint32_t> linked;
    for (std::uint32_t p = 0; p < data_.slots; ++p)
        if (test_bit(data_.live.data(), p) && (data_.degrees[p] > 0 || p == data_.entry)) linked.push_back(p);
    Entries e;
    e.entry = data_.entry;
    e.chosen_at = linked.size();
    if (linked.empty()) return e;
    e.entry = linked[nearest_to_mean(linked)];
    e.pivots.push_back(e.entry);
    const std::size_t stride = (linked.size() + max_pivots - 1) / max_pivots;
    for (std::size_t i = stride / 2; i < linked.size() && e.pivots.size() < max_pivots; i += stride)
        if (linked[i] != e.entry) e.pivots.push_back(linked[i]);
    load_pivots(e);
    return e;
}

GraphIndex::Entries GraphIndex::current_entries() const {
    return Entries{data_.entry, data_.entry_chosen_at, data_.pivots, data_.pivot_rows, data_.pivot_order};
}

void GraphIndex::set_entries(Entries& e) noexcept {
    std::swap(data_.entry, e.entry);
    std::swap(data_.entry_chosen_at, e.chosen_at);
    data_.pivots.swap(e.pivots);
    data_.pivot_rows.swap(e.pivot_rows);
    data_.pivot_order.swap(e.pivot_order);
}

void GraphIndex::load_pivots(Entries& e) const {
    const RowStore store = rows();
    e.pivot_rows.resize(e.pivots.size() * params_.dim);
    e.pivot_order.resize(e.pivots.size());
    for (std::size_t i = 0; i < e.pivots.size(); ++i) {
        store.to_float(e.pivots[i], e.pivot_rows.data() + i * params_.dim);
        e.pivot_order[i] = std::uint32_t(i);
    }
}

void GraphIndex::make_writable() {
    data_.rows.own(), data_.norms.own(), data_.ids.own(), data_.degrees.own(), data_.edges.own(), data_.codes.own();
}

void GraphIndex::reserve(std::size_t slots) {
    make_writable();
    AlignedVector<std::uint8_t>& rows = data_.rows.own();
    reserve_growing(rows, slots * row_bytes());  // adding in small batches stays linear
    rows.resize(slots * row_bytes());
    data_.norms.own().resize(slots);
    data_.ids.own().resize(slots);
    data_.live.resize(bit_words(slots));
    data_.degrees.own().resize(slots);
    data_.edges.own().resize(slots * params_.degree);
    if (data_.quantizer) data_.codes.own().resize(slots * data_.quantizer->code_size());
}

namespace {

// Shrinks a buffer that an add grew (an owned one, then: no copy, no allocation).
template <class T>
void shrink(Buffer<T>& buffer, std::size_t size) noexcept {
    if (buffer.size() > size) buffer.own().resize(size);
}

}  // namespace

void GraphIndex::add(const void* vectors, const std::int64_t* ids, std::size_t n,
                     const std::vector<ColumnBatch>& columns, std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    {
        std::unordered_set<std::int64_t> seen;
        for (std::size_t i = 0; i < n; ++i) {
            if (data_.slot_of.count(ids[i])) fail_argument("ids: id " + std::to_string(ids[i]) + " is already in the index");
            if (!seen.insert(ids[i]).second) fail_argument("ids: id " + std::to_string(ids[i]) + " is given twice");
        }
    }
    if (data_.slots + n > std::size_t(UINT32_MAX)) throw std::length_error("too many vectors for one index (2^32 - 1)");
    data_.attributes.check(columns, n);
    if (n == 0) return;
    // Any step below may run out of memory; what the steps before it changed is then undone,
    // so that the index is exactly as it was when the exception leaves.
    const std::uint32_t first = std::uint32_t(data_.slots);
    const std::size_t old_live = data_.live_count, old_columns = data_.attributes.columns().size();
    Entries old_entries = current_entries();
    EdgeLog log;
    std::size_t mapped = 0;  // ids entered in slot_of
    try {
        reserve(data_.slots + n);
        std::uint8_t* stored = data_.rows.mutable_data() + data_.slots * row_bytes();
        std::memcpy(stored, vectors, n * row_bytes());
        // Checked in the index's copy: the caller's rows, checked before, may be changed by
        // another thread meanwhile, and a NaN would break the graph's order. Only the copy is read below.
        const std::int64_t bad = first_non_finite_row(stored, n, params_.dim, params_.dim, params_.storage);
        if (bad >= 0) fail_argument("vectors: row " + std::to_string(bad) + " holds a NaN or infinite value");
        data_.attributes.append(columns, n);
        fault_point();
        const RowStore store = rows();
        if (data_.quantizer) {
            std::vector<float> converted;
            const float* x = reinterpret_cast<const float*>(stored);
            if (params_.storage != DType::f32) {
                converted.resize(n * params_.dim);
                for (std::uint32_t i = 0; i < n; ++i) store.to_float(first + i, converted.data() + i * params_.dim);
                x = converted.data();
            }
            data_.quantizer->encode(x, n, data_.codes.mutable_data() + std::size_t(first) * data_.quantizer->code_size(),
                                    threads);
        }
        std::vector<float> x(params_.dim);
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t p = first + std::uint32_t(i);
            store.to_float(p, x.data());
            store.dots(x.data(), &p, 1, data_.norms.mutable_data() + p);
            data_.ids.at_mut(p) = ids[i];
            data_.degrees.at_mut(p) = 0;
        }
        for (; mapped < n; ++mapped) data_.slot_of.emplace(ids[mapped], first + std::uint32_t(mapped));
        fault_point();
        for (std::size_t i = 0; i < n; ++i) set_bit(data_.live.data(), first + i);
        data_.slots += n;
        data_.live_count += n;
        insert(first, n, threads, log);
        if (!test_bit(data_.live.data(), data_.entry)) {
            Entries entries = choose_entries();
            set_entries(entries);
        }
    } catch (...) {
        log.restore(data_, params_.degree);
        set_entries(old_entries);
        for (std::size_t i = 0; i < mapped; ++i) data_.slot_of.erase(ids[i]);
        for (std::size_t p = first; p < std::min<std::size_t>(first + n, 64 * data_.live.size()); ++p)
            clear_bit(data_.live.data(), p);
        data_.slots = first;
        data_.live_count = old_live;
        data_.attributes.truncate(first, old_columns);
        shrink(data_.rows, first * row_bytes());
        shrink(data_.norms, first);
        shrink(data_.ids, first);
        if (data_.live.size() > bit_words(first)) data_.live.resize(bit_words(first));
        shrink(data_.degrees, first);
        shrink(data_.edges, first * params_.degree);
        if (data_.quantizer) shrink(data_.codes, first * data_.quantizer->code_size());
        throw;
    }
}

void GraphIndex::remove(const std::int64_t* ids, std::size_t n) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    for (std::size_t i = 0; i < n; ++i)
        if (!data_.slot_of.count(ids[i])) fail_argument("ids: id " + std::to_string(ids[i]) + " is not in the index");
    // Repeats show as a live bit already cleared by this call (then every bit cleared is set
    // again): no allocation, so a composite index can rely on a valid remove not failing.
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t slot = data_.slot_of.find(ids[i])->second;
        if (!test_bit(data_.live.data(), slot)) {
            for (std::size_t j = 0; j < i; ++j) set_bit(data_.live.data(), data_.slot_of.find(ids[j])->second);
            fail_argument("ids: id " + std::to_string(ids[i]) + " is given twice");
        }
        clear_bit(data_.live.data(), slot);
    }
    for (std::size_t i = 0; i < n; ++i) data_.slot_of.erase(ids[i]);
    data_.live_count -= n;
}

void GraphIndex::compact(std::size_t threads) {
    std::unique_lock<ForkSafeSharedMutex> lock(mutex_);
    make_writable();
    auto dead = [&](std::uint32_t p) { return !test_bit(data_.live.data(), p); };
    std::vector<std::uint32_t> affected;
    for (std::uint32_t p = 0; p < data_.slots; ++p) {
        if (dead(p) || data_.degrees[p] == 0) continue;
        const std::uint32_t* e = neighbours(p);
        if (std::any_of(e, e + data_.degrees[p], dead)) affected.push_back(p);
    }
    // Each affected node takes its live neighbours and the live neighbours of its dead ones,
    // then prunes. Only dead nodes' edges are read and only live nodes' edges written, so the
    // new edges can be computed aside, then swapped in; a failure before the swap changes nothing.
    const std::size_t R = params_.degree;
    std::vector<std::uint32_t> staged(affected.size() * R), staged_degrees(affected.size());
    std::vector<std::uint32_t> dead_slots;
    for (std::uint32_t p = 0; p < data_.slots; ++p)
        if (dead(p) && data_.degrees[p] > 0) dead_slots.push_back(p);
    std::vector<std::uint32_t> dead_degrees(dead_slots.size());
    parallel_for(affected.size(), resolve_threads(threads, affected.size()), [&](std::size_t i, std::size_t) {
        Scratch& s = thread_scratch();
        const std::uint32_t p = affected[i];
        std::vector<std::uint32_t> candidates;
        const std::uint32_t* e = neighbours(p);
        for (std::uint32_t j = 0; j < data_.degrees[p]; ++j) {
            if (!dead(e[j])) {
                candidates.push_back(e[j]);
                continue;
            }
            const std::uint32_t* f = neighbours(e[j]);
            for (std::uint32_t m = 0; m < data_.degrees[e[j]]; ++m)
                if (!dead(f[m]) && f[m] != p) candidates.push_back(f[m]);
        }
        std::sort(candidates.begin(), candidates.end());
        candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
        std::vector<std::uint32_t> kept;
        relink(p, candidates, s, kept);
        fault_point();
        std::copy(kept.begin(), kept.end(), staged.data() + i * R);
        staged_degrees[i] = std::uint32_t(kept.size());
    });
    // Swapping leaves the old edges in `staged`, to swap back if choosing the entries fails.
    auto swap_edges = [&]() noexcept {
        std::uint32_t* edges = data_.edges.own().data();
        std::uint32_t* degrees = data_.degrees.own().data();
        for (std::size_t i = 0; i < affected.size(); ++i) {
            std::swap_ranges(staged.data() + i * R, staged.data() + (i + 1) * R, edges + std::size_t(affected[i]) * R);
            std::swap(staged_degrees[i], degrees[affected[i]]);
        }
        for (std::size_t i = 0; i < dead_slots.size(); ++i) std::swap(dead_degrees[i], degrees[dead_slots[i]]);
    };
    swap_edges();
    Entries entries;
    try {
        entries = choose_entries();
    } catch (...) {
        swap_edges();
        throw;
    }
    set_entries(entries);
}

}  // namespace latefold
