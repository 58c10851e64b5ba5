// Stored vectors as a search reads them: rows of one element type, in memory or in a mapped
// file, and the two ways a traversal ranks them against one query (exact distances from the
// rows, or estimates from product-quantization codes), so that search code never branches on
// the storage type or on whether codes are used.
#pragma once

#include <cstddef>
#include <cstdint>

#include "latefold/common.h"
#include "latefold/pq.h"

namespace latefold {

/// Rows of `dim` values of type `dtype`, row r at data + r * row_bytes(). float32 and float16
/// rows are read by the SIMD kernels; bfloat16 and int8 rows (value = scales[r] * int8) by
/// plain loops that accumulate in float32 in coordinate order.
struct RowStore {
    const std::uint8_t* data = nullptr;
    std::size_t dim = 0;
    DType dtype = DType::f32;
    const float* scales = nullptr;  ///< int8 only: one per row

    std::size_t row_bytes() const noexcept { return dim * dtype_size(dtype); }
    const void* row(std::uint32_t r) const noexcept { return data + std::size_t(r) * row_bytes(); }
    /// Row r as float32 (dim values).
    void to_float(std::uint32_t r, float* out) const;
    /// out[i] = <q, row rows[i]> for a float32 q of dim values.
    void dots(const float* q, const std::uint32_t* rows, std::size_t count, float* out) const;
};

/// Distances of stored vectors to one query, lower is closer, as traversals rank them.
class Scorer {
public:
    /// Exact, from the rows: ip -<q, x>; l2 |x|^2 - 2 <q, x> (norms[r] = |x_r|^2; |q|^2 is left out).
    static Scorer exact(const RowStore& rows, Metric metric, const float* norms, const float* query) {
        Scorer s;
        s.rows_ = &rows, s.metric_ = metric, s.norms_ = norms, s.query_ = query;
        s.fetched_ = rows.data, s.fetched_bytes_ = rows.row_bytes();
        return s;
    }
    /// Estimated from PQ codes through the query's lookup tables (lut, m x ksub): ip -adc,
    /// l2 adc - lut_offset (with lut_offset = |q|^2 the same scale as exact distances).
    static Scorer codes(const ProductQuantizer& pq, const std::uint8_t* codes, const float* lut, float lut_offset) {
        Scorer s;
        s.pq_ = &pq, s.metric_ = pq.metric(), s.codes_ = codes, s.lut_ = lut, s.lut_offset_ = lut_offset;
        s.fetched_ = codes, s.fetched_bytes_ = pq.code_size();
        return s;
    }

    bool is_exact() const noexcept { return pq_ == nullptr; }
    const float* query() const noexcept { return query_; }  ///< exact scorers
    /// out[i] = the distance of row rows[i] (out may not alias rows).
    void distances(const std::uint32_t* rows, std::size_t count, float* out) const;
    /// The exact distance of a row whose inner product with the query is `dot`.
    float distance_of_dot(float dot, std::uint32_t row) const noexcept {
        return metric_ == Metric::inner_product ? -dot : norms_[row] - 2.0f * dot;
    }
    /// What distances() reads for a row: prefetch it before scoring a batch.
    const std::uint8_t* fetched(std::uint32_t row) const noexcept { return fetched_ + std::size_t(row) * fetched_bytes_; }
    std::size_t fetched_bytes() const noexcept { return fetched_bytes_; }

private:
    const RowStore* rows_ = nullptr;
    const ProductQuantizer* pq_ = nullptr;
    Metric metric_ = Metric::inner_product;
    const float* norms_ = nullptr;
    const float* query_ = nullptr;
    const std::uint8_t* codes_ = nullptr;
    const float* lut_ = nullptr;
    float lut_offset_ = 0.0f;
    const std::uint8_t* fetched_ = nullptr;
    std::size_t fetched_bytes_ = 0;
};

}  // namespace latefold
