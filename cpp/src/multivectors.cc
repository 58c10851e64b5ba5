#include "latefold/multivectors.h"

#include <algorithm>

#include "kernels/table.h"
#include "latefold/thread_pool.h"

namespace latefold {

void MultiVectorsView::validate(const char* name) const {
    const std::string n(name);
    if (dim == 0) fail_argument(n + ": token dimension must be at least 1");
    if (row_stride < dim) fail_argument(n + ": row stride is smaller than the dimension");
    if (count == 0) return;
    if (!offsets) fail_argument(n + ": offsets are missing");
    if (offsets[0] != 0) fail_argument(n + ": offsets[0] must be 0");
    for (std::size_t i = 0; i < count; ++i) {
        if (offsets[i + 1] < offsets[i])
            fail_argument(n + ": offsets must be non-decreasing (item " + std::to_string(i) + ")");
        if (offsets[i + 1] == offsets[i])
            fail_argument(n + ": item " + std::to_string(i) + " is empty (it has no token)");
    }
    if (std::uint64_t(offsets[count]) != rows)
        fail_argument(n + ": offsets[-1] = " + std::to_string(offsets[count]) +
                      " does not match the number of token rows (" + std::to_string(rows) + ")");
    if (item_rows) {
        for (std::size_t i = 0; i < count; ++i)
            if (!item_rows[i]) fail_argument(n + ": item " + std::to_string(i) + " has no rows");
    } else if (!tokens) {
        fail_argument(n + ": tokens are missing");
    }
    if ((dtype == DType::i8) != (scales != nullptr))
        fail_argument(n + (dtype == DType::i8 ? ": int8 tokens need a scale per token"
                                               : ": scales are for int8 tokens only"));
}

namespace {
// A value is NaN or infinite exactly when all its exponent bits are set; testing bits keeps the
// loop branch-free and independent of floating-point flags. An OR of equality tests vectorises
// on the baseline instruction set (a maximum of unsigned 32-bit values would need SSE4.1).
// float32 rows have a kernel (first_non_finite); this loop serves the 16-bit types and scales.
template <class Bits, Bits exponent_mask>
std::int64_t first_bad_row(const Bits* data, std::size_t rows, std::size_t dim, std::size_t stride) {
    for (std::size_t r = 0; r < rows; ++r) {
        const Bits* row = data + r * stride;
        Bits bad = 0;
        for (std::size_t k = 0; k < dim; ++k) bad |= Bits((row[k] & exponent_mask) == exponent_mask);
        if (bad) return std::int64_t(r);
    }
    return -1;
}
}  // namespace

std::int64_t first_non_finite_row(const void* tokens, std::size_t rows, std::size_t dim,
                                  std::size_t row_stride, DType dtype, const float* scales) noexcept {
    switch (dtype) {
        case DType::f32: {  // the active path's kernel (the common case: worth a SIMD loop)
            const std::size_t bad = kernels::active_kernels().first_non_finite(static_cast<const float*>(tokens), rows,
                                                                                row_stride, dim);
            return bad < rows ? std::int64_t(bad) : -1;
        }
        case DType::f16:
            return first_bad_row<std::uint16_t, 0x7C00u>(static_cast<const std::uint16_t*>(tokens), rows, dim,
                                                         row_stride);
        case DType::bf16:
            return first_bad_row<std::uint16_t, 0x7F80u>(static_cast<const std::uint16_t*>(tokens), rows, dim,
                                                         row_stride);
        case DType::i8:  // integers are finite; their scales may not be
            return scales ? first_bad_row<std::uint32_t, 0x7F800000u>(reinterpret_cast<const std::uint32_t*>(scales),
                                                                      rows, 1, 1)
                          : -1;
    }
    return -1;
}

namespace {
// The first non-finite token of items [begin, end), item by item.
NonFiniteToken first_in_items(const MultiVectorsView& v, std::size_t begin, std::size_t end) noexcept {
    for (std::size_t i = begin; i < end; ++i) {
        const std::int64_t bad = first_non_finite_row(v.item_data(i), v.item_length(i), v.dim, v.row_stride, v.dtype,
                                                      v.scales ? v.scales + v.offsets[i] : nullptr);
        if (bad >= 0) return {std::int64_t(i), bad};
    }
    return {};
}
}  // namespace

NonFiniteToken first_non_finite_token(const MultiVectorsView& v) noexcept {
    if (!v.flat()) return first_in_items(v, 0, v.count);
    // One pass over all rows, then the item holding the row.
    const std::int64_t bad = first_non_finite_row(v.tokens, v.rows, v.dim, v.row_stride, v.dtype, v.scales);
    if (bad < 0) return {};
    const std::int64_t* o = v.offsets;
    const std::int64_t item = std::int64_t(std::upper_bound(o, o + v.count + 1, bad) - o - 1);
    return {item, bad - o[item]};
}

void fail_non_finite(const char* name, NonFiniteToken bad) {
    if (bad.item < 0) return;
    fail_argument(std::string(name) + ": item " + std::to_string(bad.item) + " (token " + std::to_string(bad.token) +
                  ") holds a NaN or infinite value");
}

void check_unchecked_values(const MultiVectorsView& view, const char* name, std::size_t threads) {
    if (view.values_checked) return;
    constexpr std::size_t items_per_task = 256;
    const std::size_t tasks = (view.count + items_per_task - 1) / items_per_task;
    if (resolve_threads(threads, tasks) <= 1) return fail_non_finite(name, first_non_finite_token(view));
    std::vector<NonFiniteToken> found(tasks);  // per run of items: its first; the lowest wins
    parallel_for(tasks, threads, [&](std::size_t task, std::size_t) {
        found[task] = first_in_items(view, task * items_per_task, std::min(view.count, (task + 1) * items_per_task));
    });
    for (const NonFiniteToken& bad : found)
        if (bad.item >= 0) return fail_non_finite(name, bad);
}

}  // namespace latefold
