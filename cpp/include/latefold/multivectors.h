// A non-owning view of a ragged set of token matrices ("multi-vectors").
//
// Layout (the canonical one everywhere in latefold):
//   offsets : count + 1 int64, offsets[0] == 0, non-decreasing, offsets[count] == T
//   item i  : offsets[i+1] - offsets[i] rows, its token rows offsets[i] .. offsets[i+1]-1
//   rows    : either flat, all T rows in one array (row r at tokens + r * row_stride elements), or
//             a table, item i's rows at item_rows[i] + r * row_stride (a list of arrays, read
//             where each lies); unit stride inside a row
//   scales  : int8 tokens only: one float32 per token row, token r = scales[r] * tokens[r]
// Readers go through item_data / item_length; only a flat view can be read as one run of rows.
#pragma once

#include "latefold/common.h"

namespace latefold {

struct MultiVectorsView {
    const void* tokens = nullptr;             ///< flat layout: all token rows (null with a table)
    const std::int64_t* offsets = nullptr;
    const void* const* item_rows = nullptr;   ///< table layout: `count` addresses, item i's first row
    std::size_t rows = 0;        ///< token rows in all (must equal offsets[count])
    std::size_t count = 0;       ///< number of items
    std::size_t dim = 0;         ///< elements per token vector
    std::size_t row_stride = 0;  ///< elements between consecutive token rows (>= dim)
    DType dtype = DType::f32;
    const float* scales = nullptr;  ///< int8: T scales (row r's values are scales[r] * int8); else null
    /// false: the values are not yet known to be finite (a list of arrays, read afresh on every
    /// call). Then a reader checks the rows as it reads them (while they are in cache, not in a
    /// second pass over the corpus), or calls check_unchecked_values, and fails naming the item
    /// before it returns a result.
    bool values_checked = true;

    /// Whether all rows lie in one array: then items [i, j) are the rows offsets[i] .. offsets[j]-1.
    bool flat() const noexcept { return item_rows == nullptr; }

    std::size_t item_length(std::size_t i) const noexcept {
        return std::size_t(offsets[i + 1] - offsets[i]);
    }
    /// Address of the first row of item i.
    const void* item_data(std::size_t i) const noexcept {
        if (item_rows) return item_rows[i];
        return static_cast<const char*>(tokens) +
               std::size_t(offsets[i]) * row_stride * dtype_size(dtype);
    }

    /// Checks the offsets (start at 0, non-decreasing, no empty item, end at `rows`), that the
    /// rows are given (every item's, for a table) and that scales are given exactly for int8
    /// tokens; `name` is used in messages.
    /// Throws std::invalid_argument naming the first offending item.
    void validate(const char* name) const;
};

/// Index of the first token row holding a NaN or an infinity (for int8 tokens: a scale that is
/// not finite), or -1 when all are finite. Reads rows * dim elements (row r at tokens + r *
/// row_stride elements); `scales` as in MultiVectorsView.
std::int64_t first_non_finite_row(const void* tokens, std::size_t rows, std::size_t dim,
                                  std::size_t row_stride, DType dtype, const float* scales = nullptr) noexcept;

/// Where a validated view first holds a NaN or an infinity: item and token within it, both -1
/// when every value is finite (first_non_finite_row over each item's rows, in item order).
struct NonFiniteToken {
    std::int64_t item = -1, token = -1;
};
NonFiniteToken first_non_finite_token(const MultiVectorsView& view) noexcept;

/// Throws std::invalid_argument "<name>: item i (token t) holds a NaN or infinite value" when
/// `bad` names a token.
void fail_non_finite(const char* name, NonFiniteToken bad);

/// For a view whose values are not yet checked: first_non_finite_token (items scanned on up to
/// `threads` threads, 0 = all cores), then fail_non_finite.
void check_unchecked_values(const MultiVectorsView& view, const char* name, std::size_t threads = 1);

}  // namespace latefold
