// Private: float16 rows widened to float32 (exact), with a finiteness check riding on the loads,
// written once over a vector type `V` (vector_<isa>.h: V::load_row(p), V::load_row(p, worst),
// V::hcheck, V::hzero(), V::all_finite(worst), V::store). The row kernels' f16_to_f32 and the
// MaxSim kernel's float16 documents (tile_templates.h) share it.
#pragma once

#include <cstddef>

#include "table.h"

namespace latefold {
namespace kernels {

// Rows [first, first + n) of a float16 document widened into rows [first, first + n) of `wide`
// (`dim` floats apart): exact. With `flag`, clears `finite` at a value that is not (the check
// rides on the loads: integer operations the FMA ports do not wait for).
template <class V>
inline void widen_rows(const half_bits* doc, std::size_t first, std::size_t n, std::size_t row_stride,
                       std::size_t dim, float* wide, bool flag, bool& finite) {
    const std::size_t full = dim - dim % V::lanes;
    typename V::hcheck worst = V::hzero();
    for (std::size_t r = first; r < first + n; ++r) {
        const half_bits* row = doc + r * row_stride;
        float* out = wide + r * dim;
        if (flag) {
            for (std::size_t k = 0; k < full; k += V::lanes) V::store(out + k, V::load_row(row + k, worst));
            for (std::size_t k = full; k < dim; ++k) finite = finite && (row[k] & 0x7C00u) != 0x7C00u;
        } else {
            for (std::size_t k = 0; k < full; k += V::lanes) V::store(out + k, V::load_row(row + k));
        }
        for (std::size_t k = full; k < dim; ++k) out[k] = half_to_float(row[k]);
    }
    if (flag) finite = finite && V::all_finite(worst);
}

}  // namespace kernels
}  // namespace latefold
