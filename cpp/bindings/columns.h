// Attribute columns from Python, for the indexes that filter on them (graph, multi-vector).
#pragma once

#include <string>
#include <vector>

#include "arrays.h"
#include "latefold/attributes.h"

namespace latefold {
namespace bindings {

// Attribute columns from Python: a list of (name, kind, a, b): int64 (a = values), float64
// (a = values), labels (a = offsets of n + 1, b = labels).
inline std::vector<ColumnBatch> column_batches(const py::list& spec, std::size_t n) {
    std::vector<ColumnBatch> out;
    for (const py::handle h : spec) {
        const py::tuple t = py::reinterpret_borrow<py::tuple>(h);
        ColumnBatch b;
        b.name = t[0].cast<std::string>();
        const std::string kind = t[1].cast<std::string>();
        const py::array a = py::reinterpret_borrow<py::array>(t[2]);
        if (kind == "int64") {
            b.kind = ColumnKind::int64;
            b.ints = typed<std::int64_t>(a, "attribute");
            if (std::size_t(a.shape(0)) != n) value_error("attributes: column '" + b.name + "' has the wrong length");
        } else if (kind == "float64") {
            b.kind = ColumnKind::float64;
            b.floats = typed<double>(a, "attribute");
            if (std::size_t(a.shape(0)) != n) value_error("attributes: column '" + b.name + "' has the wrong length");
        } else if (kind == "labels") {
            b.kind = ColumnKind::labels;
            const py::array labels = py::reinterpret_borrow<py::array>(t[3]);
            b.offsets = typed<std::int64_t>(a, "label offsets");
            b.labels = typed<std::int64_t>(labels, "labels");
            if (std::size_t(a.shape(0)) != n + 1) value_error("attributes: column '" + b.name + "' has the wrong length");
            for (std::size_t i = 0; i <= n; ++i)
                if (b.offsets[i] < 0 || b.offsets[i] > labels.shape(0)) value_error("attributes: label offsets out of range");
        } else {
            value_error("attributes: unknown column kind '" + kind + "'");
        }
        out.push_back(b);
    }
    return out;
}


}  // namespace bindings
}  // namespace latefold
