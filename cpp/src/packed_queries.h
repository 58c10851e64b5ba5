// Private: queries packed for the MaxSim kernels in the form the documents' storage asks for
// (the engine in maxsim.cc and the index's exact stage share it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "finite_check.h"
#include "kernels/float32_rows.h"
#include "kernels/table.h"
#include "latefold/quantize.h"
#include "latefold/thread_pool.h"

namespace latefold {

// The form queries take for the documents' storage: float32 for float32 and float16 documents
// (widened by the engine), else the documents' own type.
inline DType query_form(DType docs) { return docs == DType::f16 ? DType::f32 : docs; }

// Elements of the packed form of an m-token query.
inline std::size_t packed_size(std::size_t m, std::size_t dim, DType form) {
    switch (form) {
        case DType::i8: return kernels::lane_layout_size(m, dim, 4);
        case DType::bf16: return kernels::lane_layout_size(m, dim, 2);
        case DType::f32:
        case DType::f16: break;
    }
    return kernels::padded_query_rows(m) * dim;
}

// Requests the cache lines of item d, read next from memory, into L2 (its first
// `item_request_bytes`: a longer item would evict the query and the rows in use; the kernels
// stream the rest). The float kernels request a document's rows a tile ahead, but that was too
// late for rows read at random: one query's MaxSim over 174 of 100,000 float16 documents of 100 x
// 128 took 10.1 us a document against 7.8 when they were in cache; with this, 8.9 (a line in each
// 4 KiB page only, for the address translations: 10.1; the lines into L1: 9.4).
constexpr std::size_t item_request_bytes = 128 * 1024;

[[gnu::always_inline]] inline void request_item(const MultiVectorsView& docs, std::size_t d) {
    const std::size_t bytes = docs.item_length(d) * docs.row_stride * dtype_size(docs.dtype);
    kernels::prefetch_lines<kernels::into_l2>(docs.item_data(d), std::min(bytes, item_request_bytes));
}

// Every query packed once (layouts.h) in the form the documents' storage asks for: float32
// columns, int8 lanes with a scale per token (quantized here: the caller gives float values), or
// bfloat16 lanes (rounded to nearest even). Values are checked as they are read, when not yet.
class PackedQueries {
public:
    PackedQueries(const MultiVectorsView& queries, DType docs, std::size_t threads, const kernels::KernelTable& kern)
        : form_(query_form(docs)), dim_(queries.dim), start_(queries.count + 1), first_row_(queries.count + 1),
          padded_(queries.count) {
        for (std::size_t q = 0; q < queries.count; ++q) {
            const std::size_t m = queries.item_length(q);
            padded_[q] = kernels::padded_query_rows(m);
            start_[q + 1] = start_[q] + packed_size(m, dim_, form_);
            first_row_[q + 1] = first_row_[q] + padded_[q];
        }
        switch (form_) {
            case DType::i8:
                codes_.resize(start_[queries.count]);
                scales_.assign(first_row_[queries.count], 0.0f);
                break;
            case DType::bf16: halves_.resize(start_[queries.count]); break;
            case DType::f32:
            case DType::f16: floats_.resize(start_[queries.count]); break;
        }
        std::vector<AlignedVector<float>> scratch(resolve_threads(threads, queries.count));
        std::vector<std::vector<std::int8_t>> codes(scratch.size());
        FiniteCheck check(queries, "queries");
        parallel_for(queries.count, threads, [&](std::size_t q, std::size_t worker) {
            const std::size_t m = queries.item_length(q);
            const ItemRows rows = float_items(queries, q, q + 1, scratch[worker], kern);
            const float* x = rows.item(q);
            const std::size_t stride = rows.stride;
            if (check.needed() && !rows.finite) check.rows(q, x, m, stride);
            switch (form_) {
                case DType::i8: {
                    std::vector<std::int8_t>& c = codes[worker];
                    c.resize(m * dim_);
                    for (std::size_t t = 0; t < m; ++t)
                        scales_[first_row_[q] + t] = quantize_int8_row(x + t * stride, dim_, c.data() + t * dim_);
                    kernels::pack_lanes<std::int8_t>(
                        m, dim_, [&](std::size_t t, std::size_t k) { return c[t * dim_ + k]; }, codes_.data() + start_[q]);
                    break;
                }
                case DType::bf16:
                    kernels::pack_lanes<std::uint16_t>(
                        m, dim_, [&](std::size_t t, std::size_t k) { return float_to_bfloat16(x[t * stride + k]); },
                        halves_.data() + start_[q]);
                    break;
                case DType::f32:
                case DType::f16:
                    kernels::pack_columns(
                        m, dim_, [&](std::size_t t, std::size_t k) { return x[t * stride + k]; },
                        floats_.data() + start_[q]);
                    break;
            }
        });
        check.raise();
    }

    // Whether documents are read as float32 rows (ItemRows) rather than in their own type.
    bool reads_floats() const { return form_ == DType::f32; }

    // Whether `docs` are better read in place than converted first (as float32 rows, float_items),
    // when each is read `uses` times: float16 rows read once are widened by the kernel as it
    // reads them (the read from memory then overlaps the arithmetic); rows read by several
    // queries are converted once.
    static bool reads_in_place(const MultiVectorsView& docs, std::size_t uses) {
        return docs.dtype == DType::f16 && uses == 1;
    }

    // MaxSim of query q against documents [d0, d1) into out[0 .. d1 - d0); `rows` holds their
    // float32 rows when reads_floats(), except float16 rows read in place (rows = {}: see
    // reads_in_place). `first_read`: the documents' rows are read for the first
    // time in this task (from memory, unless converted into a buffer: the float kernel streams
    // rows read in place; see maxsim_packed). `check` (float rows only; null when their values are
    // known finite): the kernel flags a document with a value that is not finite, which is then
    // looked for and reported to `check`.
    void score(std::size_t q, const MultiVectorsView& docs, std::size_t d0, std::size_t d1, const ItemRows& rows,
               const kernels::KernelTable& kern, float* out, bool first_read, FiniteCheck* check = nullptr) const {
        switch (form_) {
            case DType::i8:
            case DType::bf16:
                if (docs.flat()) {
                    quantized(q, docs.tokens, docs.scales, docs.row_stride, docs.offsets + d0, d1 - d0, kern, out);
                } else {  // a table: each item where it lies, its rows counted from 0
                    for (std::size_t d = d0; d < d1; ++d) {
                        const std::int64_t rows[2] = {0, docs.offsets[d + 1] - docs.offsets[d]};
                        quantized(q, docs.item_data(d), docs.scales ? docs.scales + docs.offsets[d] : nullptr,
                                  docs.row_stride, rows, 1, kern, out + (d - d0));
                    }
                }
                return;
            case DType::f32:
            case DType::f16: {
                if (!rows.run && !rows.table) {  // float16 in place
                    for (std::size_t d = d0; d < d1; ++d) {
                        if (first_read && d + 1 < d1) request_item(docs, d + 1);
                        out[d - d0] = kern.maxsim_packed_f16(
                            floats_.data() + start_[q], padded_[q], dim_, static_cast<const half_bits*>(docs.item_data(d)),
                            docs.item_length(d), docs.row_stride, first_read, check != nullptr);
                        if (check && std::isnan(out[d - d0])) check->stored_rows(docs, d);
                    }
                    return;
                }
                const bool stream = first_read && docs.dtype == DType::f32, flag = check && !rows.finite;
                for (std::size_t d = d0; d < d1; ++d) {
                    if (stream && d + 1 < d1) request_item(docs, d + 1);
                    const float* doc = rows.item(d);
                    const std::size_t length = docs.item_length(d);
                    out[d - d0] = kern.maxsim_packed(floats_.data() + start_[q], padded_[q], dim_, doc, length,
                                                     rows.stride, stream, flag);
                    // Flagged: a value that is not finite, or sums of finite values that
                    // overflowed (their result stands: scored again, unflagged).
                    if (flag && std::isnan(out[d - d0]) && !check->rows(d, doc, length, rows.stride))
                        out[d - d0] = kern.maxsim_packed(floats_.data() + start_[q], padded_[q], dim_, doc, length,
                                                         rows.stride, false, false);
                }
                return;
            }
        }
    }

    // The int8 or bfloat16 kernel over `count` documents of `tokens` (rows offsets[i] ..).
    void quantized(std::size_t q, const void* tokens, const float* scales, std::size_t stride,
                   const std::int64_t* offsets, std::size_t count, const kernels::KernelTable& kern, float* out) const {
        if (form_ == DType::i8)
            kern.maxsim_i8(codes_.data() + start_[q], scales_.data() + first_row_[q], padded_[q], dim_,
                           static_cast<const std::int8_t*>(tokens), scales, stride, offsets, count, out);
        else
            kern.maxsim_bf16(halves_.data() + start_[q], padded_[q], dim_, static_cast<const std::uint16_t*>(tokens),
                             stride, offsets, count, out);
    }

    // Documents the kernels read in their own type are not seen as float32 rows: when their
    // values are not yet checked, they are checked before (one pass).
    void check_docs(const MultiVectorsView& docs, std::size_t threads) const {
        if (!reads_floats()) check_unchecked_values(docs, "docs", threads);
    }

    // Bytes per document row as the kernels read it (float32 rows for float forms).
    std::size_t row_bytes() const { return dim_ * (form_ == DType::f32 ? 4 : dtype_size(form_)); }

private:
    DType form_;
    std::size_t dim_;
    std::vector<std::size_t> start_, first_row_, padded_;  // per query: element offset, scale offset, padded rows
    AlignedVector<float> floats_;
    AlignedVector<std::int8_t> codes_;
    AlignedVector<std::uint16_t> halves_;
    std::vector<float> scales_;
};

}  // namespace latefold
