// Validation services for lf.MultiVectors: offsets and finiteness checked in C++ (one pass,
// no temporary arrays), so that large corpora are validated at memory speed.
#include <algorithm>

#include "arrays.h"

namespace latefold {
namespace bindings {

void bind_multivectors(py::module_& m) {
    m.def(
        "validate_multivectors",
        [](const py::array& tokens, const py::array& offsets, const char* name) {
            const MultiVectorsView v = as_multivectors(tokens, offsets, name);
            std::int64_t bad;
            {
                py::gil_scoped_release release;
                bad = first_non_finite_row(v.tokens, v.rows, v.dim, v.row_stride, v.dtype);
            }
            if (bad >= 0) {
                const std::int64_t* o = v.offsets;
                const std::size_t item = std::size_t(
                    std::upper_bound(o, o + v.count + 1, bad) - o - 1);
                value_error(std::string(name) + ": item " + std::to_string(item) + " (token " +
                            std::to_string(bad - o[item]) + ") holds a NaN or infinite value");
            }
        },
        py::arg("tokens"), py::arg("offsets"), py::arg("name"),
        "Checks offsets and that every token value is finite; raises ValueError naming the item.");
}

}  // namespace bindings
}  // namespace latefold
