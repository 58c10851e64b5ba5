// TokenRows (token_rows.h).
#include "latefold/token_rows.h"

#include <algorithm>

namespace latefold {

namespace {

// The smallest block: adds of a few documents share blocks of this size.
constexpr std::size_t least_block_bytes = std::size_t(64) << 20;

}  // namespace

const TokenRows::Block& TokenRows::block_of(std::size_t r) const noexcept {
    // The last block starting at or before r (a trailing empty block starts at rows(), past r).
    const auto after = std::upper_bound(blocks_.begin(), blocks_.end(), r,
                                        [](std::size_t row, const Block& b) { return row < b.first_row; });
    return *(after - 1);
}

const std::uint8_t* TokenRows::row(std::size_t r) const noexcept {
    if (r < rows_in_first()) return first_.data() + r * row_bytes_;
    const Block& b = block_of(r);
    return b.bytes.data() + (r - b.first_row) * row_bytes_;
}

std::size_t TokenRows::part_end(std::size_t r) const noexcept {
    if (r < rows_in_first()) return rows_in_first();
    const Block& b = block_of(r);
    return b.first_row + b.bytes.size() / row_bytes_;
}

bool TokenRows::contiguous() const noexcept {
    std::size_t parts = first_.empty() ? 0 : 1;
    for (const Block& b : blocks_) parts += b.bytes.empty() ? 0 : 1;
    return parts <= 1;
}

TokenRows TokenRows::with_mapped_rows(AlignedVector<std::uint8_t> rest) const {
    if (!mapped_) return TokenRows(Buffer<std::uint8_t>(std::move(rest)), row_bytes_);
    TokenRows out(first_, row_bytes_, true);
    if (!rest.empty()) {
        out.added_ = rest.size() / row_bytes_;
        out.blocks_.push_back({std::move(rest), out.rows_in_first()});
    }
    return out;
}

void TokenRows::reserve(std::size_t rows) {
    const std::size_t bytes = rows * row_bytes_;
    if (!bytes || (!blocks_.empty() && blocks_.back().bytes.capacity() - blocks_.back().bytes.size() >= bytes)) return;
    AlignedVector<std::uint8_t> block;
    block.reserve(std::max(bytes, least_block_bytes));
    if (!blocks_.empty() && blocks_.back().bytes.empty()) {  // an unused block too small: replaced
        blocks_.back().bytes.swap(block);
        return;
    }
    blocks_.reserve(blocks_.size() + 1);
    blocks_.push_back({std::move(block), this->rows()});
}

void TokenRows::append(const std::uint8_t* data, std::size_t bytes) noexcept {
    blocks_.back().bytes.insert(blocks_.back().bytes.end(), data, data + bytes);
    added_ += bytes / row_bytes_;
}

}  // namespace latefold
