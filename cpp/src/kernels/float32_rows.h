// Private: token rows as float32, read in place or converted into a scratch buffer (float16 by
// the path's kernel; bfloat16 and int8 times its row's scale by plain loops).
#pragma once

#include <cstring>

#include "latefold/multivectors.h"
#include "table.h"

namespace latefold {

// Items [first, last) of a set as float32 rows, `stride` floats apart: item i at item(i).
struct ItemRows {
    const float* run;          // the items' rows one after another (item i at row offsets[i] - first_row), or
    const void* const* table;  // (run null) item i in place at table[i]
    const std::int64_t* offsets;
    std::size_t first_row, stride;
    bool finite = false;  // every value seen finite as it was converted (float16 rows)

    const float* item(std::size_t i) const noexcept {
        return run ? run + (std::size_t(offsets[i]) - first_row) * stride : static_cast<const float*>(table[i]);
    }
};

// `rows` rows from `src` (token row `first_row` of the set, for int8 scales) as float32 into `out`,
// `dim` floats apart. Returns whether every value was seen finite (float16 only: false for the
// other types, which are not looked at).
inline bool convert_rows(const MultiVectorsView& set, const void* src, std::size_t first_row, std::size_t rows,
                         float* out, const kernels::KernelTable& kern) {
    const std::size_t dim = set.dim, stride = set.row_stride;
    switch (set.dtype) {
        case DType::f32: {
            const auto* from = static_cast<const float*>(src);
            if (stride == dim) {
                std::memcpy(out, from, rows * dim * sizeof(float));
            } else {
                for (std::size_t r = 0; r < rows; ++r)
                    std::memcpy(out + r * dim, from + r * stride, dim * sizeof(float));
            }
            break;
        }
        case DType::f16: {
            const auto* from = static_cast<const half_bits*>(src);
            if (stride == dim) return kern.f16_to_f32(from, out, rows * dim);
            bool finite = true;
            for (std::size_t r = 0; r < rows; ++r) finite &= kern.f16_to_f32(from + r * stride, out + r * dim, dim);
            return finite;
        }
        case DType::bf16: {
            const auto* from = static_cast<const std::uint16_t*>(src);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t k = 0; k < dim; ++k) out[r * dim + k] = bfloat16_to_float(from[r * stride + k]);
            break;
        }
        case DType::i8: {
            const auto* from = static_cast<const std::int8_t*>(src);
            for (std::size_t r = 0; r < rows; ++r) {
                const float scale = set.scales[first_row + r];
                for (std::size_t k = 0; k < dim; ++k) out[r * dim + k] = scale * float(from[r * stride + k]);
            }
            break;
        }
    }
    return false;
}

// Items [first, last) (first < last) as float32 (the caller keeps `scratch` alive). float32 rows
// are read in place: a flat set's as one run, a table's item by item, unless `one_run` asks for
// them one after another (a batch that kernels read as one matrix): then a table's items are
// copied, unless there is just one. Other types are converted, item after item.
inline ItemRows float_items(const MultiVectorsView& set, std::size_t first, std::size_t last,
                            AlignedVector<float>& scratch, const kernels::KernelTable& kern, bool one_run = false) {
    const std::size_t first_row = std::size_t(set.offsets[first]);
    if (set.dtype == DType::f32) {
        if (set.flat() || last - first == 1)
            return {static_cast<const float*>(set.item_data(first)), nullptr, set.offsets, first_row, set.row_stride};
        if (!one_run) return {nullptr, set.item_rows, set.offsets, first_row, set.row_stride};
    }
    const std::size_t rows = std::size_t(set.offsets[last]) - first_row;
    if (scratch.size() < rows * set.dim) scratch.resize(rows * set.dim);
    float* out = scratch.data();
    bool finite = true;
    if (set.flat()) {
        finite = convert_rows(set, set.item_data(first), first_row, rows, out, kern);
    } else {
        for (std::size_t i = first; i < last; ++i)
            finite &= convert_rows(set, set.item_data(i), std::size_t(set.offsets[i]), set.item_length(i),
                                   out + (std::size_t(set.offsets[i]) - first_row) * set.dim, kern);
    }
    return {out, nullptr, set.offsets, first_row, set.dim, finite};
}

}  // namespace latefold
