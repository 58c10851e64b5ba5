// A non-owning view of a ragged set of token matrices ("multi-vectors").
//
// Layout (the canonical one everywhere in latefold):
//   tokens  : T rows of `dim` elements, row r at tokens + r * row_stride (elements), unit stride inside a row
//   offsets : count + 1 int64, offsets[0] == 0, non-decreasing, offsets[count] == T
//   item i  : rows offsets[i] .. offsets[i+1]-1
//   scales  : int8 tokens only: one float32 per token row, token r = scales[r] * tokens[r]
#pragma once

#include "latefold/common.h"

namespace latefold {

struct MultiVectorsView {
    const void* tokens = nullptr;
    const std::int64_t* offsets = nullptr;
    std::size_t rows = 0;        ///< token rows available in `tokens` (must equal offsets[count])
    std::size_t count = 0;       ///< number of items
    std::size_t dim = 0;         ///< elements per token vector
    std::size_t row_stride = 0;  ///< elements between consecutive token rows (>= dim)
    DType dtype = DType::f32;
    const float* scales = nullptr;  ///< int8: T scales (row r's values are scales[r] * int8); else null

    std::size_t item_length(std::size_t i) const noexcept {
        return std::size_t(offsets[i + 1] - offsets[i]);
    }
    /// Address of the first row of item i.
    const void* item_data(std::size_t i) const noexcept {
        return static_cast<const char*>(tokens) +
               std::size_t(offsets[i]) * row_stride * dtype_size(dtype);
    }

    /// Checks the offsets (start at 0, non-decreasing, no empty item, end at `rows`) and that
    /// scales are given exactly for int8 tokens; `name` is used in messages.
    /// Throws std::invalid_argument naming the first offending item.
    void validate(const char* name) const;
};

/// Index of the first token row holding a NaN or an infinity (for int8 tokens: a scale that is
/// not finite), or -1 when all are finite. Reads rows * dim elements (row r at tokens + r *
/// row_stride elements); `scales` as in MultiVectorsView.
std::int64_t first_non_finite_row(const void* tokens, std::size_t rows, std::size_t dim,
                                  std::size_t row_stride, DType dtype, const float* scales = nullptr) noexcept;

}  // namespace latefold
