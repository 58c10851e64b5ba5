#include "latefold/row_store.h"

#include <cstring>

#include "kernels/table.h"

namespace latefold {

void RowStore::to_float(std::uint32_t r, float* out) const {
    switch (dtype) {
        case DType::f32: std::memcpy(out, row(r), dim * sizeof(float)); return;
        case DType::f16: kernels::active_kernels().f16_to_f32(static_cast<const half_bits*>(row(r)), out, dim); return;
        case DType::bf16: {
            const auto* x = static_cast<const std::uint16_t*>(row(r));
            for (std::size_t k = 0; k < dim; ++k) out[k] = bfloat16_to_float(x[k]);
            return;
        }
        case DType::i8: {
            const auto* x = static_cast<const std::int8_t*>(row(r));
            for (std::size_t k = 0; k < dim; ++k) out[k] = scales[r] * float(x[k]);
            return;
        }
    }
}

void RowStore::dots(const float* q, const std::uint32_t* rows, std::size_t count, float* out) const {
    const kernels::KernelTable& k = kernels::active_kernels();
    switch (dtype) {
        case DType::f32:
            k.dot_rows_f32(q, reinterpret_cast<const float*>(data), dim, rows, count, dim, out);
            return;
        case DType::f16:
            k.dot_rows_f16(q, reinterpret_cast<const half_bits*>(data), dim, rows, count, dim, out);
            return;
        case DType::bf16:
            for (std::size_t i = 0; i < count; ++i) {
                const auto* x = static_cast<const std::uint16_t*>(row(rows[i]));
                float sum = 0.0f;
                for (std::size_t d = 0; d < dim; ++d) sum += q[d] * bfloat16_to_float(x[d]);
                out[i] = sum;
            }
            return;
        case DType::i8:
            for (std::size_t i = 0; i < count; ++i) {
                const auto* x = static_cast<const std::int8_t*>(row(rows[i]));
                float sum = 0.0f;
                for (std::size_t d = 0; d < dim; ++d) sum += q[d] * float(x[d]);
                out[i] = scales[rows[i]] * sum;
            }
            return;
    }
}

void Scorer::distances(const std::uint32_t* rows, std::size_t count, float* out) const {
    if (pq_) {
        pq_->score_codes(lut_, codes_, rows, count, out);
        for (std::size_t i = 0; i < count; ++i)
            out[i] = metric_ == Metric::inner_product ? -out[i] : out[i] - lut_offset_;
        return;
    }
    rows_->dots(query_, rows, count, out);
    for (std::size_t i = 0; i < count; ++i) out[i] = distance_of_dot(out[i], rows[i]);
}

}  // namespace latefold
