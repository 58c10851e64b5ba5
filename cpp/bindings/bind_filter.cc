// Filters: built by the Python Filter class, compiled by an index against its columns at search.
#include <pybind11/stl.h>

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
        .def_static("combine", [](const std::string& op, const std::vector<Expr>& children) {
            auto f = std::make_shared<FilterExpr>();
            if (op == "and") f->op = FilterExpr::Op::all_of;
            else if (op == "or") f->op = FilterExpr::Op::any_of;
            else if (op == "not" && children.size() == 1) f->op = FilterExpr::Op::none_of;
            else value_error("filter: unknown combination '" + op + "'");
            f->children.assign(children.begin(), children.end());
            return f;
        });
}

}  // namespace bindings
}  // namespace latefold
