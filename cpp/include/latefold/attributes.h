// Per-vector attributes for filtered search: numeric columns (int64, float64) and label columns
// (a set of int64 labels per vector), stored by slot (insertion order).
//
// Each column keeps the index its filters need, so that a filter costs time in proportion to
// what it matches rather than to the size of the collection:
//   numeric: the slots sorted by value (ties by slot): a range is two binary searches;
//   labels : a posting list per label (slots ascending): `any` is a union, `all` an intersection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace latefold {

enum class ColumnKind : std::uint8_t { int64 = 0, float64 = 1, labels = 2 };

const char* column_kind_name(ColumnKind kind) noexcept;

/// One column of a batch being added: n values (numeric) or n label sets (CSR: the labels of
/// row i are labels[offsets[i] .. offsets[i+1]), offsets[0] = 0).
struct ColumnBatch {
    std::string name;
    ColumnKind kind = ColumnKind::int64;
    const std::int64_t* ints = nullptr;
    const double* floats = nullptr;
    const std::int64_t* offsets = nullptr;
    const std::int64_t* labels = nullptr;
};

class AttributeStore {
public:
    struct Column {
        std::string name;
        ColumnKind kind = ColumnKind::int64;
        std::vector<std::int64_t> ints;            // by slot
        std::vector<double> floats;                // by slot
        std::vector<std::int64_t> label_offsets{0};  // CSR by slot
        std::vector<std::int64_t> labels;
        // Indexes.
        std::vector<std::uint32_t> sorted_slots;   // numeric: slots by (value, slot)
        std::unordered_map<std::int64_t, std::vector<std::uint32_t>> postings;  // labels
    };

    std::size_t rows() const noexcept { return rows_; }
    const std::vector<Column>& columns() const noexcept { return columns_; }
    /// Index of the named column, or -1.
    long find(const std::string& name) const noexcept;

    /// Throws std::invalid_argument unless `batch` names exactly this store's columns with the
    /// same kinds (the first batch of an empty store with no rows defines the columns).
    void check(const std::vector<ColumnBatch>& batch, std::size_t n) const;
    /// Appends n rows (call check first; slots rows() .. rows() + n - 1).
    void append(const std::vector<ColumnBatch>& batch, std::size_t n);
    /// Undoes the appends made since rows() was `rows` and columns() had `columns` entries,
    /// complete or interrupted by an exception: the store is then as it was.
    void truncate(std::size_t rows, std::size_t columns) noexcept;

    /// Sets bits (LSB first, 64 per word) of the slots with lo <= value <= hi; words cleared first.
    void range_int(std::size_t column, std::int64_t lo, std::int64_t hi, std::uint64_t* words) const;
    void range_float(std::size_t column, double lo, double hi, std::uint64_t* words) const;
    /// Slots holding at least one of `values` / all of `values` (all of none: every slot).
    void labels_any(std::size_t column, const std::vector<std::int64_t>& values, std::uint64_t* words) const;
    void labels_all(std::size_t column, const std::vector<std::int64_t>& values, std::uint64_t* words) const;
    /// Slots whose value is one of `values` (sorted, distinct): one binary search per value.
    void in_int(std::size_t column, const std::vector<std::int64_t>& values, std::uint64_t* words) const;
    void in_float(std::size_t column, const std::vector<double>& values, std::uint64_t* words) const;

private:
    template <class T>
    void set_range(const std::vector<T>& values, const std::vector<std::uint32_t>& order, T lo, T hi,
                   std::uint64_t* words) const;
    template <class T>
    void set_in(const std::vector<T>& values, const std::vector<std::uint32_t>& order, const std::vector<T>& wanted,
                std::uint64_t* words) const;
    std::size_t rows_ = 0;
    std::vector<Column> columns_;
};

/// Bit helpers over words of 64 slots.
inline std::size_t bit_words(std::size_t bits) noexcept { return (bits + 63) / 64; }
inline bool test_bit(const std::uint64_t* words, std::size_t i) noexcept {
    return (words[i >> 6] >> (i & 63)) & 1u;
}
inline void set_bit(std::uint64_t* words, std::size_t i) noexcept { words[i >> 6] |= std::uint64_t(1) << (i & 63); }
inline void clear_bit(std::uint64_t* words, std::size_t i) noexcept {
    words[i >> 6] &= ~(std::uint64_t(1) << (i & 63));
}

}  // namespace latefold
