// Filters: built by the Python Filter class, compiled by an index against its columns at search.
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>

#include "arrays.h"
#include "latefold/filter.h"

namespace latefold {
namespace bindings {

namespace {

using Expr = std::shared_ptr<FilterExpr>;

template <class T>
std::vector<T> copied(const py::array& a, const char* name) {
    const T* data = typed<T>(a, name);
    return std::vector<T>(data, data + a.shape(0));
}

}  // namespace

void bind_filter(py::module_& m) {
    py::class_<FilterExpr, Expr>(m, "FilterExpr")
        .def_static("labels",
                    [](const std::string& column, bool all, const py::array& labels) {
                        auto f = std::make_shared<FilterExpr>();
                        f->op = all ? FilterExpr::Op::labels_all : FilterExpr::Op::labels_any;
                        f->column = column;
                        f->values = copied<std::int64_t>(labels, "labels");
                        return f;
                    })
        .def_static("range",
                    [](const std::string& column, std::int64_t int_lo, std::int64_t int_hi, double float_lo,
                       double float_hi) {
                        auto f = std::make_shared<FilterExpr>();
                        f->op = FilterExpr::Op::range;
                        f->column = column;
                        f->int_lo = int_lo, f->int_hi = int_hi, f->float_lo = float_lo, f->float_hi = float_hi;
                        return f;
                    })
        .def_static("ids",
                    [](const py::array& ids) {
                        auto f = std::make_shared<FilterExpr>();
                        f->op = FilterExpr::Op::ids;
                        f->values = copied<std::int64_t>(ids, "ids");
                        return f;
                    })
        .def_static("mask",
                    [](const py::array& mask) {
                        auto f = std::make_shared<FilterExpr>();
                        f->op = FilterExpr::Op::mask;
                        f->mask = copied<std::uint8_t>(mask, "mask");
                        return f;
                    })
        .def_static("isin",
                    [](const std::string& column, const py::array& ints, const py::array& floats) {
                        auto f = std::make_shared<FilterExpr>();
                        f->op = FilterExpr::Op::in_set;
                        f->column = column;
                        f->values = copied<std::int64_t>(ints, "values");
                        f->floats = copied<double>(floats, "values");
                        // Sorted and distinct: the column's sorted slots are then read in one sweep.
                        std::sort(f->values.begin(), f->values.end());
                        f->values.erase(std::unique(f->values.begin(), f->values.end()), f->values.end());
                        std::sort(f->floats.begin(), f->floats.end());
                        f->floats.erase(std::unique(f->floats.begin(), f->floats.end()), f->floats.end());
                        return f;
                    })
        .def_static("combine", [](const std::string& op, const std::vector<Expr>& children) {
            FilterExpr::Op kind = FilterExpr::Op::all_of;
            if (op == "and") kind = FilterExpr::Op::all_of;
            else if (op == "or") kind = FilterExpr::Op::any_of;
            else if (op == "not" && children.size() == 1) kind = FilterExpr::Op::none_of;
            else value_error("filter: unknown combination '" + op + "'");
            return combine_filters(kind, {children.begin(), children.end()});  // invalid_argument: ValueError
        })
        .def_property_readonly("depth", [](const FilterExpr& f) { return f.depth; })
        .def_property_readonly("n_children", [](const FilterExpr& f) { return f.children.size(); });
    m.attr("FILTER_MAX_DEPTH") = max_filter_depth;
}

}  // namespace bindings
}  // namespace latefold
