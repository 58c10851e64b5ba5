// Private: token rows as float32, converted from float16 into a scratch buffer when needed.
#pragma once

#include "latefold/multivectors.h"
#include "table.h"

namespace latefold {

// Rows [first_row, first_row + rows) of a set as float32 (the caller keeps `scratch` alive).
struct Rows {
    const float* data;
    std::size_t stride;
};

inline Rows float_rows(const MultiVectorsView& set, std::size_t first_row, std::size_t rows,
                        AlignedVector<float>& scratch, const kernels::KernelTable& kern) {
    const char* base = static_cast<const char*>(set.tokens);
    const std::size_t row_bytes = set.row_stride * dtype_size(set.dtype);
    if (set.dtype == DType::f32)
        return {reinterpret_cast<const float*>(base + first_row * row_bytes), set.row_stride};
    if (scratch.size() < rows * set.dim) scratch.resize(rows * set.dim);
    const half_bits* src = reinterpret_cast<const half_bits*>(base + first_row * row_bytes);
    if (set.row_stride == set.dim) {
        kern.f16_to_f32(src, scratch.data(), rows * set.dim);
    } else {
        for (std::size_t r = 0; r < rows; ++r)
            kern.f16_to_f32(src + r * set.row_stride, scratch.data() + r * set.dim, set.dim);
    }
    return {scratch.data(), set.dim};
}

}  // namespace latefold
