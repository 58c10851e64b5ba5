// Private: the finiteness check of a view whose values are not yet checked (values_checked
// false: a list of arrays), made where an engine reads the rows instead of as a second pass over
// the corpus on every call: MaxSim's float kernels flag a document as they read it (the exact
// scan then runs on that one only), float16 conversion reports for free, FDE scans each batch
// it converts. Workers report what they find; the lowest item wins, so the error names the item
// that a scan in item order would, whatever the threads did.
#pragma once

#include <mutex>

#include "kernels/table.h"
#include "latefold/multivectors.h"

namespace latefold {

class FiniteCheck {
public:
    FiniteCheck(const MultiVectorsView& view, const char* name) noexcept
        : needed_(!view.values_checked), dim_(view.dim), name_(name), kern_(kernels::active_kernels()) {}

    bool needed() const noexcept { return needed_; }

    /// Item `item`'s float32 rows as the engine reads them (`count` rows, `stride` apart);
    /// whether one of their values is not finite.
    bool rows(std::size_t item, const float* data, std::size_t count, std::size_t stride) {
        const std::size_t bad = kern_.first_non_finite(data, count, stride, dim_);
        if (bad < count) report(item, std::int64_t(bad));
        return bad < count;
    }

    /// Item `item`'s rows in the view's own type (for engines that read them so).
    void stored_rows(const MultiVectorsView& view, std::size_t item) {
        const std::int64_t first = view.offsets[item];
        const std::int64_t bad = first_non_finite_row(view.item_data(item), view.item_length(item), view.dim,
                                                      view.row_stride, view.dtype,
                                                      view.scales ? view.scales + first : nullptr);
        if (bad >= 0) report(item, bad);
    }

    /// Records that token `token` of item `item` is not finite (the lowest item wins).
    void report(std::size_t item, std::int64_t token) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (found_.item < 0 || std::int64_t(item) < found_.item) found_ = {std::int64_t(item), token};
    }

    /// After the loop: std::invalid_argument naming the lowest item found, if any.
    void raise() const { fail_non_finite(name_, found_); }

private:
    bool needed_;
    std::size_t dim_;
    const char* name_;
    const kernels::KernelTable& kern_;
    std::mutex mutex_;
    NonFiniteToken found_;
};

}  // namespace latefold
