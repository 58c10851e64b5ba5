// The token rows an index stores: a first part, read from a file (mapped with mmap=True, which
// then stays in the file) or made by a compaction, followed by blocks of the rows added since.
// A block is allocated once and never moves, so an add copies no stored row: a large index grows
// without holding its rows twice, and a mapped one without reading its rows into memory. A
// compaction keeps a mapped first part as it is (copying it would read the file into memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "latefold/buffer.h"
#include "latefold/common.h"

namespace latefold {

class TokenRows {
public:
    TokenRows() = default;
    /// `mapped`: the first part lies in a mapped file.
    TokenRows(Buffer<std::uint8_t> first, std::size_t row_bytes, bool mapped = false)
        : first_(std::move(first)), row_bytes_(row_bytes), mapped_(mapped) {}

    std::size_t rows() const noexcept { return rows_in_first() + added_; }
    /// Row r (< rows()); the rows of one add lie in one part, so each document's rows follow it.
    const std::uint8_t* row(std::size_t r) const noexcept;
    /// The row after the last of r's part: rows r .. part_end(r) - 1 follow one another.
    std::size_t part_end(std::size_t r) const noexcept;
    /// Whether at most one part holds rows (then they all follow row(0)).
    bool contiguous() const noexcept;
    /// The rows in a mapped file (the first part's when it is mapped, else 0).
    std::size_t mapped_rows() const noexcept { return mapped_ ? rows_in_first() : 0; }
    /// The mapped rows (if any) followed by `rest`, whole rows in a part of their own (a
    /// compaction's result); may throw, changes nothing.
    TokenRows with_mapped_rows(AlignedVector<std::uint8_t> rest) const;

    /// Room for `rows` more rows in the last block (a new block when it lacks it); may throw,
    /// changes nothing that shows.
    void reserve(std::size_t rows);
    /// Appends whole rows within the room reserve() made.
    void append(const std::uint8_t* data, std::size_t bytes) noexcept;

private:
    struct Block {
        AlignedVector<std::uint8_t> bytes;
        std::size_t first_row;
    };
    std::size_t rows_in_first() const noexcept { return row_bytes_ ? first_.size() / row_bytes_ : 0; }
    const Block& block_of(std::size_t r) const noexcept;

    Buffer<std::uint8_t> first_;
    std::vector<Block> blocks_;
    std::size_t row_bytes_ = 0, added_ = 0;
    bool mapped_ = false;
};

}  // namespace latefold
