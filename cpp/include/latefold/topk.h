// A bounded selection of the k best (score, id) pairs.
//
// Order: higher score first; equal scores -> lower id first; NaN ranks below every number.
// push() is O(log k); sorted() returns the kept pairs best first.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
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

/// ranks_before as a function object, so that the heap operations inline it.
struct RanksBefore {
    bool operator()(const ScoredId& a, const ScoredId& b) const noexcept { return ranks_before(a, b); }
};

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
            std::push_heap(heap_.begin(), heap_.end(), RanksBefore());
        } else if (ranks_before(candidate, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), RanksBefore());
            heap_.back() = candidate;
            std::push_heap(heap_.begin(), heap_.end(), RanksBefore());
        }
    }

    /// The kept pairs, best first.
    std::vector<ScoredId> sorted() const {
        std::vector<ScoredId> out(heap_);
        std::sort(out.begin(), out.end(), RanksBefore());
        return out;
    }

private:
    std::size_t k_;
    std::vector<ScoredId> heap_;  // max-heap under ranks_before: front() is the worst kept pair
};

/// The k best items of a long stream in amortized O(1) per candidate: keeps up to 2k and, when
/// full, partitions them (`Before`: ranks strictly before) and raises the entry threshold to the
/// k-th best. A candidate that ranks after threshold() can never enter. `lowest` ranks after
/// every candidate: the threshold until the first partition.
template <class T, class Before>
class Reservoir {
public:
    Reservoir(std::size_t k, T lowest) : k_(k), threshold_(lowest), kept_(2 * k + 1, lowest) {}

    const T& threshold() const noexcept { return threshold_; }

    void push(const T& candidate) {
        if (k_ == 0 || Before()(threshold_, candidate)) return;
        kept_[size_++] = candidate;
        if (size_ == 2 * k_) shrink();
    }

    /// push() without a branch on the comparison, for streams in which candidates enter about
    /// as often as not (a fast scan's, which its bounds have filtered already): the candidate
    /// is written after the kept ones in any case and counted only if it enters.
    void offer(const T& candidate) {
        kept_[size_] = candidate;
        size_ += std::size_t(k_ != 0 && !Before()(threshold_, candidate));
        if (size_ == 2 * k_) shrink();
    }

    /// The k best, best first.
    std::vector<T> sorted() {
        shrink();
        std::sort(kept_.begin(), kept_.begin() + std::ptrdiff_t(size_), Before());
        return std::vector<T>(kept_.begin(), kept_.begin() + std::ptrdiff_t(size_));
    }

private:
    // Quickselect of the k best into kept_[0, k) with branch-free partitions: the side an item
    // goes to is unpredictable, and a mispredicted branch per item made std::nth_element the
    // largest cost of a fast scan that keeps 40 candidates.
    void shrink() {
        if (size_ <= k_) return;
        T* a = kept_.data();
        spare_.resize(size_);
        std::size_t lo = 0, hi = size_, wanted = k_;  // the `wanted` best of a[lo, hi)
        while (wanted > 0 && wanted < hi - lo) {
            const std::size_t mid = lo + (hi - lo) / 2;  // pivot: the median of three, moved to lo
            const bool x = Before()(a[lo], a[mid]), y = Before()(a[mid], a[hi - 1]), z = Before()(a[lo], a[hi - 1]);
            const std::size_t median = x == y ? mid : x == z ? hi - 1 : lo;
            std::swap(a[lo], a[median]);
            const T pivot = a[lo];
            // Items before the pivot to the front of spare_, the others to its back.
            T* out = spare_.data();
            std::size_t front = 0, back = hi - lo - 1;
            for (std::size_t i = lo + 1; i < hi; ++i) {
                const bool before = Before()(a[i], pivot);
                out[front] = a[i];
                out[back] = a[i];
                front += before;
                back -= !before;
            }
            std::copy(out, out + front, a + lo);
            a[lo + front] = pivot;
            std::copy(out + front + 1, out + (hi - lo), a + lo + front + 1);
            if (front >= wanted) {
                hi = lo + front;
            } else {  // the front and the pivot are all kept
                wanted -= front + 1;
                lo += front + 1;
            }
        }
        size_ = k_;
        T worst = kept_[0];
        for (std::size_t i = 1; i < size_; ++i)
            if (Before()(worst, kept_[i])) worst = kept_[i];
        threshold_ = worst;
    }

    std::size_t k_;
    T threshold_;
    std::vector<T> kept_, spare_;  // kept_: 2k + 1 slots, the first size_ kept
    std::size_t size_ = 0;
};

}  // namespace latefold
