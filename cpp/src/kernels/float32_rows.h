// Private: token rows as float32, read in place or converted into a scratch buffer (float16 by
// the path's kernel; bfloat16 and int8 times its row's scale by plain loops).
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
    const char* first = static_cast<const char*>(set.tokens) + first_row * set.row_stride * dtype_size(set.dtype);
    if (set.dtype == DType::f32) return {reinterpret_cast<const float*>(first), set.row_stride};
    if (scratch.size() < rows * set.dim) scratch.resize(rows * set.dim);
    float* out = scratch.data();
    switch (set.dtype) {
        case DType::f32: break;
        case DType::f16: {
            const half_bits* src = reinterpret_cast<const half_bits*>(first);
            if (set.row_stride == set.dim) {
                kern.f16_to_f32(src, out, rows * set.dim);
            } else {
                for (std::size_t r = 0; r < rows; ++r)
                    kern.f16_to_f32(src + r * set.row_stride, out + r * set.dim, set.dim);
            }
            break;
        }
        case DType::bf16: {
            const auto* src = reinterpret_cast<const std::uint16_t*>(first);
            for (std::size_t r = 0; r < rows; ++r)
                for (std::size_t k = 0; k < set.dim; ++k) out[r * set.dim + k] = bfloat16_to_float(src[r * set.row_stride + k]);
            break;
        }
        case DType::i8: {
            const auto* src = reinterpret_cast<const std::int8_t*>(first);
            for (std::size_t r = 0; r < rows; ++r) {
                const float scale = set.scales[first_row + r];
                for (std::size_t k = 0; k < set.dim; ++k) out[r * set.dim + k] = scale * float(src[r * set.row_stride + k]);
            }
            break;
        }
    }
    return {out, set.dim};
}

}  // namespace latefold
