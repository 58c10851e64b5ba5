// Attribute columns from Python, for the indexes that filter on them (graph, multi-vector).
#pragma once

#include <string>
#include <vector>

#include "arrays.h"
#include "latefold/attributes.h"

namespace latefold {
namespace bindings {

// Attribute columns from Python: a list of (name, kind, a, b): int64 (a = values), float64
// (a = values), labels (a = offsets of n + 1, b = labels). The batches point into copies made
// here: the core checks the values (NaN, offsets) and reads them without the GIL, when another
// thread could change the caller's arrays.
struct Columns {
    std::vector<ColumnBatch> batches;
    std::vector<std::vector<std::int64_t>> ints;  // a moved vector keeps its buffer: batches stay valid
    std::vector<std::vector<double>> floats;
};

template <class T>
inline const T* copy_into(std::vector<std::vector<T>>& store, const py::array& a, const char* name) {
    const T* data = typed<T>(a, name);
    store.emplace_back(data, data + a.shape(0));
    return store.back().data();
}

inline Columns column_batches(const py::list& spec, std::size_t n) {
    Columns out;
    for (const py::handle h : spec) {
        const py::tuple t = py::reinterpret_borrow<py::tuple>(h);
        ColumnBatch b;
        b.name = t[0].cast<std::string>();
        const std::string kind = t[1].cast<std::string>();
        const py::array a = py::reinterpret_borrow<py::array>(t[2]);
        if (kind == "int64") {
            b.kind = ColumnKind::int64;
            b.ints = copy_into(out.ints, a, "attribute");
            if (std::size_t(a.shape(0)) != n) value_error("attributes: column '" + b.name + "' has the wrong length");
        } else if (kind == "float64") {
            b.kind = ColumnKind::float64;
            b.floats = copy_into(out.floats, a, "attribute");
            if (std::size_t(a.shape(0)) != n) value_error("attributes: column '" + b.name + "' has the wrong length");
        } else if (kind == "labels") {
            b.kind = ColumnKind::labels;
            const py::array labels = py::reinterpret_borrow<py::array>(t[3]);
            b.offsets = copy_into(out.ints, a, "label offsets");
            b.labels = copy_into(out.ints, labels, "labels");
            if (std::size_t(a.shape(0)) != n + 1) value_error("attributes: column '" + b.name + "' has the wrong length");
            for (std::size_t i = 0; i <= n; ++i)
                if (b.offsets[i] < 0 || b.offsets[i] > labels.shape(0)) value_error("attributes: label offsets out of range");
        } else {
            value_error("attributes: unknown column kind '" + kind + "'");
        }
        out.batches.push_back(b);
    }
    return out;
}

}  // namespace bindings
}  // namespace latefold
