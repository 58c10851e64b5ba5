#include "latefold/attributes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace latefold {

const char* column_kind_name(ColumnKind kind) noexcept {
    switch (kind) {
        case ColumnKind::int64: return "int64";
        case ColumnKind::float64: return "float64";
        default: return "labels";
    }
}

long AttributeStore::find(const std::string& name) const noexcept {
    for (std::size_t c = 0; c < columns_.size(); ++c)
        if (columns_[c].name == name) return long(c);
    return -1;
}

void AttributeStore::check(const std::vector<ColumnBatch>& batch, std::size_t n) const {
    const bool defining = rows_ == 0 && columns_.empty();
    if (!defining && batch.size() != columns_.size()) {
        std::string names;
        for (const Column& c : columns_) names += (names.empty() ? "" : ", ") + c.name;
        throw std::invalid_argument("attributes: this index has the columns {" + names +
                                    "}; every add must give exactly these");
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const ColumnBatch& b = batch[i];
        for (std::size_t j = 0; j < i; ++j)
            if (batch[j].name == b.name) throw std::invalid_argument("attributes: column '" + b.name + "' given twice");
        if (!defining) {
            const long c = find(b.name);
            if (c < 0) throw std::invalid_argument("attributes: unknown column '" + b.name + "'");
            if (columns_[std::size_t(c)].kind != b.kind)
                throw std::invalid_argument("attributes: column '" + b.name + "' holds " +
                                            column_kind_name(columns_[std::size_t(c)].kind) + ", got " +
                                            column_kind_name(b.kind));
        }
        if (b.kind == ColumnKind::float64)
            for (std::size_t r = 0; r < n; ++r)
                if (std::isnan(b.floats[r]))
                    throw std::invalid_argument("attributes: column '" + b.name + "' row " + std::to_string(r) + " is NaN");
        if (b.kind == ColumnKind::labels) {
            if (b.offsets[0] != 0) throw std::invalid_argument("attributes: label offsets must start at 0");
            for (std::size_t r = 0; r < n; ++r)
                if (b.offsets[r + 1] < b.offsets[r])
                    throw std::invalid_argument("attributes: label offsets must be non-decreasing");
        }
    }
}

void AttributeStore::append(const std::vector<ColumnBatch>& batch, std::size_t n) {
    if (rows_ == 0 && columns_.empty())
        for (const ColumnBatch& b : batch) {
            Column c;
            c.name = b.name;
            c.kind = b.kind;
            columns_.push_back(std::move(c));
        }
    const std::uint32_t first = std::uint32_t(rows_);
    for (const ColumnBatch& b : batch) {
        Column& c = columns_[std::size_t(find(b.name))];
        auto merge_sorted = [&](const auto& values) {
            std::vector<std::uint32_t> fresh(n);
            for (std::size_t r = 0; r < n; ++r) fresh[r] = first + std::uint32_t(r);
            auto less = [&](std::uint32_t a, std::uint32_t b2) {
                return values[a] < values[b2] || (values[a] == values[b2] && a < b2);
            };
            std::sort(fresh.begin(), fresh.end(), less);
            std::vector<std::uint32_t> merged(c.sorted_slots.size() + n);
            std::merge(c.sorted_slots.begin(), c.sorted_slots.end(), fresh.begin(), fresh.end(), merged.begin(), less);
            c.sorted_slots.swap(merged);
        };
        if (b.kind == ColumnKind::int64) {
            c.ints.insert(c.ints.end(), b.ints, b.ints + n);
            merge_sorted(c.ints);
        } else if (b.kind == ColumnKind::float64) {
            c.floats.insert(c.floats.end(), b.floats, b.floats + n);
            for (std::size_t r = 0; r < n; ++r)  // one zero: -0.0 and 0.0 compare equal anyway
                if (c.floats[first + r] == 0.0) c.floats[first + r] = 0.0;
            merge_sorted(c.floats);
        } else {
            for (std::size_t r = 0; r < n; ++r) {
                std::vector<std::int64_t> row(b.labels + b.offsets[r], b.labels + b.offsets[r + 1]);
                std::sort(row.begin(), row.end());
                row.erase(std::unique(row.begin(), row.end()), row.end());  // a set
                for (std::int64_t label : row) c.postings[label].push_back(first + std::uint32_t(r));
                c.labels.insert(c.labels.end(), row.begin(), row.end());
                c.label_offsets.push_back(std::int64_t(c.labels.size()));
            }
        }
    }
    rows_ += n;
}

void AttributeStore::truncate(std::size_t rows, std::size_t columns) noexcept {
    columns_.resize(columns);  // drops the columns an append defined
    const auto appended = [rows](std::uint32_t slot) { return slot >= rows; };
    for (Column& c : columns_) {
        // An append only adds slots >= rows, so removing them restores each index's old order.
        c.sorted_slots.erase(std::remove_if(c.sorted_slots.begin(), c.sorted_slots.end(), appended),
                             c.sorted_slots.end());
        if (c.ints.size() > rows) c.ints.resize(rows);
        if (c.floats.size() > rows) c.floats.resize(rows);
        if (c.label_offsets.size() > rows + 1) c.label_offsets.resize(rows + 1);
        if (c.kind == ColumnKind::labels) c.labels.resize(std::size_t(c.label_offsets.back()));
        for (auto it = c.postings.begin(); it != c.postings.end();) {
            std::vector<std::uint32_t>& list = it->second;  // slots ascending: appended ones last
            while (!list.empty() && list.back() >= rows) list.pop_back();
            it = list.empty() ? c.postings.erase(it) : std::next(it);
        }
    }
    rows_ = std::min(rows_, rows);
}

template <class T>
void AttributeStore::set_range(const std::vector<T>& values, const std::vector<std::uint32_t>& order, T lo,
                               T hi, std::uint64_t* words) const {
    const std::size_t n_words = bit_words(rows_);
    auto begin = std::lower_bound(order.begin(), order.end(), lo, [&](std::uint32_t s, T v) { return values[s] < v; });
    auto end = std::upper_bound(begin, order.end(), hi, [&](T v, std::uint32_t s) { return v < values[s]; });
    if (lo > hi) end = begin;
    const std::size_t count = std::size_t(end - begin);
    if (8 * count <= rows_) {  // few matches: set them from the index
        std::memset(words, 0, n_words * sizeof(std::uint64_t));
        for (auto it = begin; it != end; ++it) set_bit(words, *it);
        return;
    }
    for (std::size_t w = 0; w < n_words; ++w) {  // many: one sequential pass over the column
        const std::size_t first = w * 64, last = std::min(rows_, first + 64);
        std::uint64_t bits = 0;
        for (std::size_t r = first; r < last; ++r)
            bits |= std::uint64_t(values[r] >= lo && values[r] <= hi) << (r - first);
        words[w] = bits;
    }
}

void AttributeStore::range_int(std::size_t column, std::int64_t lo, std::int64_t hi, std::uint64_t* words) const {
    set_range(columns_[column].ints, columns_[column].sorted_slots, lo, hi, words);
}

void AttributeStore::range_float(std::size_t column, double lo, double hi, std::uint64_t* words) const {
    set_range(columns_[column].floats, columns_[column].sorted_slots, lo, hi, words);
}

template <class T>
void AttributeStore::set_in(const std::vector<T>& values, const std::vector<std::uint32_t>& order,
                            const std::vector<T>& wanted, std::uint64_t* words) const {
    std::memset(words, 0, bit_words(rows_) * sizeof(std::uint64_t));
    auto begin = order.begin();  // `wanted` ascends, so each search starts where the last ended
    for (const T v : wanted) {
        begin = std::lower_bound(begin, order.end(), v, [&](std::uint32_t s, T x) { return values[s] < x; });
        for (; begin != order.end() && values[*begin] == v; ++begin) set_bit(words, *begin);
    }
}

void AttributeStore::in_int(std::size_t column, const std::vector<std::int64_t>& values, std::uint64_t* words) const {
    set_in(columns_[column].ints, columns_[column].sorted_slots, values, words);
}

void AttributeStore::in_float(std::size_t column, const std::vector<double>& values, std::uint64_t* words) const {
    set_in(columns_[column].floats, columns_[column].sorted_slots, values, words);
}

void AttributeStore::labels_any(std::size_t column, const std::vector<std::int64_t>& values,
                                std::uint64_t* words) const {
    std::memset(words, 0, bit_words(rows_) * sizeof(std::uint64_t));
    const auto& postings = columns_[column].postings;
    for (std::int64_t v : values) {
        auto it = postings.find(v);
        if (it != postings.end())
            for (std::uint32_t s : it->second) set_bit(words, s);
    }
}

void AttributeStore::labels_all(std::size_t column, const std::vector<std::int64_t>& values,
                                std::uint64_t* words) const {
    const std::size_t n_words = bit_words(rows_);
    const auto& postings = columns_[column].postings;
    if (values.empty()) {
        std::memset(words, 0xFF, n_words * sizeof(std::uint64_t));
        if (rows_ % 64) words[n_words - 1] = (std::uint64_t(1) << (rows_ % 64)) - 1;
        return;
    }
    // Start from the shortest posting list, keep the slots found in every other list.
    std::vector<const std::vector<std::uint32_t>*> lists;
    for (std::int64_t v : values) {
        auto it = postings.find(v);
        if (it == postings.end()) {
            std::memset(words, 0, n_words * sizeof(std::uint64_t));
            return;
        }
        lists.push_back(&it->second);
    }
    std::sort(lists.begin(), lists.end(), [](auto* a, auto* b) { return a->size() < b->size(); });
    std::vector<std::uint32_t> kept(*lists[0]);
    for (std::size_t l = 1; l < lists.size() && !kept.empty(); ++l) {
        std::vector<std::uint32_t> next;
        std::set_intersection(kept.begin(), kept.end(), lists[l]->begin(), lists[l]->end(), std::back_inserter(next));
        kept.swap(next);
    }
    std::memset(words, 0, n_words * sizeof(std::uint64_t));
    for (std::uint32_t s : kept) set_bit(words, s);
}

}  // namespace latefold
