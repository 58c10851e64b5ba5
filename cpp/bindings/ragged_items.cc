// RaggedItems: a list of token arrays read through a pointer table (ragged_items.h).
#include "ragged_items.h"

#include "quantized_tokens.h"

namespace latefold {
namespace bindings {

namespace {

// The element type of an item the core can read where it lies (an ndarray of float32 or float16
// in native byte order, 2-D with at least one column, C-contiguous and aligned), f32 / f16, or
// none. Reads the array's own fields: this runs for every item of a list on every call, and the
// accessors that make Python objects (dtype) cost more than a short call's arithmetic.
enum class InPlace { none, f32, f16 };
constexpr int npy_half = 23;  // NPY_HALF, numpy's type number of float16

InPlace readable_in_place(const py::handle& item) {
    if (!py::isinstance<py::array>(item)) return InPlace::none;
    const auto* a = py::detail::array_proxy(item.ptr());
    if (a->nd != 2 || a->dimensions[1] < 1 || !(a->flags & py::detail::npy_api::NPY_ARRAY_C_CONTIGUOUS_))
        return InPlace::none;
    const auto* d = py::detail::array_descriptor_proxy(a->descr);
    const std::uint16_t probe = 1;
    const char native = *reinterpret_cast<const char*>(&probe) == 1 ? '<' : '>';
    if (d->byteorder != '=' && d->byteorder != native) return InPlace::none;
    const InPlace kind = d->type_num == py::detail::npy_api::NPY_FLOAT_ ? InPlace::f32
                         : d->type_num == npy_half                     ? InPlace::f16
                                                                       : InPlace::none;
    const std::uintptr_t size = kind == InPlace::f32 ? 4 : 2;
    return kind != InPlace::none && reinterpret_cast<std::uintptr_t>(a->data) % size == 0 ? kind : InPlace::none;
}

}  // namespace

RaggedItems::RaggedItems(const py::object& items, const std::string& name, const py::object& normalize) {
    if (!PyList_Check(items.ptr()) && !PyTuple_Check(items.ptr()))
        type_error(name + ": expected a list of 2-D arrays, got " + std::string(Py_TYPE(items.ptr())->tp_name));
    // A snapshot: normalize and astype run Python code, during which another thread may change the list.
    const py::tuple list = py::tuple(items);
    const std::size_t n = list.size();
    if (n == 0) value_error(name + ": an empty list has no token dimension: use MultiVectors(tokens, [0])");
    const py::dtype f32 = py::dtype::of<float>();
    arrays_.reserve(n);
    std::vector<bool> half(n);
    for (std::size_t i = 0; i < n; ++i) {
        py::object item = list[i];
        InPlace kind = readable_in_place(item);
        if (kind == InPlace::none) {
            try {
                item = normalize(item, "item " + std::to_string(i));
            } catch (py::error_already_set& error) {
                if (error.matches(PyExc_TypeError)) type_error(name + ": " + std::string(py::str(error.value())));
                if (error.matches(PyExc_ValueError)) value_error(name + ": " + std::string(py::str(error.value())));
                throw;
            }
            kind = readable_in_place(item);
            if (kind == InPlace::none)
                type_error(name + ": item " + std::to_string(i) + " could not be made a float32 or float16 matrix");
        }
        half[i] = kind == InPlace::f16;
        arrays_.push_back(py::reinterpret_borrow<py::array>(item));
    }
    const std::size_t dim = std::size_t(arrays_[0].shape(1));
    bool any_f32 = false, any_f16 = false;
    for (std::size_t i = 0; i < n; ++i) {
        if (std::size_t(arrays_[i].shape(1)) != dim)
            value_error(name + ": item " + std::to_string(i) + " has dimension " + std::to_string(arrays_[i].shape(1)) +
                        ", item 0 has " + std::to_string(dim));
        (half[i] ? any_f16 : any_f32) = true;
    }
    // float16 items among float32 ones are widened (exactly), as MultiVectors(list) stores them.
    if (any_f32 && any_f16)
        for (std::size_t i = 0; i < n; ++i)
            if (half[i]) arrays_[i] = arrays_[i].attr("astype")(f32);
    rows_.resize(n);
    offsets_.resize(n + 1);
    offsets_[0] = 0;
    for (std::size_t i = 0; i < n; ++i) {
        rows_[i] = arrays_[i].data();
        offsets_[i + 1] = offsets_[i] + std::int64_t(arrays_[i].shape(0));
    }
    view_.offsets = offsets_.data();
    view_.item_rows = rows_.data();
    view_.rows = std::size_t(offsets_[n]);
    view_.count = n;
    view_.dim = view_.row_stride = dim;
    view_.dtype = any_f32 ? DType::f32 : DType::f16;
    view_.values_checked = false;  // by the call that reads them, as it reads them
    view_.validate(name.c_str());  // empty items
}

MultiVectorsView as_items(const py::object& tokens, const py::object& offsets, const char* name) {
    if (py::isinstance<RaggedItems>(tokens)) {
        if (!offsets.is_none()) type_error(std::string(name) + ": offsets must be None with a list of arrays");
        return tokens.cast<const RaggedItems&>().view();
    }
    if (py::isinstance<QuantizedTokens>(tokens)) {
        if (!offsets.is_none()) type_error(std::string(name) + ": offsets must be None with quantized tokens");
        return tokens.cast<const QuantizedTokens&>().view();
    }
    const py::array t = py::array::ensure(tokens), o = py::array::ensure(offsets);
    if (!t || !o) type_error(std::string(name) + ": expected arrays (tokens, offsets), a RaggedItems or QuantizedTokens");
    return as_multivectors(t, o, name);
}

void bind_ragged_items(py::module_& m) {
    py::class_<RaggedItems>(m, "RaggedItems")
        .def(py::init<const py::object&, const std::string&, const py::object&>(), py::arg("items"),
             py::arg("name"), py::arg("normalize"))
        .def("__len__", [](const RaggedItems& r) { return r.view().count; })
        .def_property_readonly("dim", [](const RaggedItems& r) { return r.view().dim; })
        .def_property_readonly("dtype", [](const RaggedItems& r) { return py::dtype(dtype_name(r.view().dtype)); })
        .def_property_readonly("rows", [](const RaggedItems& r) { return r.view().rows; })
        .def_property_readonly("offsets", [](const RaggedItems& r) {
            const MultiVectorsView& v = r.view();
            auto out = new_array<std::int64_t>({py::ssize_t(v.count + 1)});
            std::copy(v.offsets, v.offsets + v.count + 1, out.mutable_data());
            return out;
        });
}

}  // namespace bindings
}  // namespace latefold
