// A bounded selection of the k best (score, id) pairs.
//
// Order: higher score first; equal scores -> lower id first; NaN ranks below every number.
// push() is O(log k); sorted() returns the kept pairs best first.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace latefold {

struct ScoredId {
    float score;
    std::int64_t id;
};

/// True when a ranks strictly before b.
inline bool ranks_before(const ScoredId& a, const ScoredId& b) noexcept {
    const bool a_nan = std::isnan(a.score), b_nan = std::isnan(b.score);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && a.score != b.score) return a.score > b.score;
    return a.id < b.id;
}

class TopK {
public:
    explicit TopK(std::size_t k = 0) : k_(k) { heap_.reserve(k); }

    void reset(std::size_t k) {
        k_ = k;
        heap_.clear();
        heap_.reserve(k);
    }
    std::size_t size() const noexcept { return heap_.size(); }
    bool full() const noexcept { return heap_.size() == k_; }

    /// The worst kept pair (valid when size() > 0): a candidate must rank before it to enter.
    const ScoredId& worst() const noexcept { return heap_.front(); }

    void push(ScoredId candidate) {
        if (k_ == 0) return;
        if (heap_.size() < k_) {
            heap_.push_back(candidate);
            std::push_heap(heap_.begin(), heap_.end(), ranks_before);
        } else if (ranks_before(candidate, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), ranks_before);
            heap_.back() = candidate;
            std::push_heap(heap_.begin(), heap_.end(), ranks_before);
        }
    }

    /// The kept pairs, best first.
    std::vector<ScoredId> sorted() const {
        std::vector<ScoredId> out(heap_);
        std::sort(out.begin(), out.end(), ranks_before);
        return out;
    }

private:
    std::size_t k_;
    std::vector<ScoredId> heap_;  // max-heap under ranks_before: front() is the worst kept pair
};

}  // namespace latefold
