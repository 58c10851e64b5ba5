// The only place where numpy arrays are read. Converts Python arguments into core views and
// raises TypeError / ValueError (naming the argument) for anything that does not fit. The
// Python layer already normalises inputs; these checks guard the module's own entry points.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>

#include "latefold/interrupt.h"
#include "latefold/json.h"
#include "latefold/multivectors.h"
#include "latefold/thread_pool.h"

namespace latefold {
namespace bindings {

namespace py = pybind11;

[[noreturn]] inline void type_error(const std::string& message) { throw py::type_error(message); }
[[noreturn]] inline void value_error(const std::string& message) { throw py::value_error(message); }

/// Token dtype of an array: float32 or float16, else TypeError.
inline DType token_dtype(const py::array& a, const char* name) {
    const py::dtype dt = a.dtype();
    if (dt.kind() == 'f' && dt.itemsize() == 4) return DType::f32;
    if (dt.kind() == 'f' && dt.itemsize() == 2) return DType::f16;
    type_error(std::string(name) + ": tokens must be float32 or float16, got " +
               std::string(py::str(dt)));
}

inline void require_c_contiguous(const py::array& a, const char* name) {
    // C-contiguous with an aligned first element: every element is aligned.
    const auto address = reinterpret_cast<std::uintptr_t>(a.data());
    if (!(a.flags() & py::array::c_style) || address % std::uintptr_t(a.itemsize()) != 0)
        value_error(std::string(name) + " must be C-contiguous and aligned");
}

/// The data of a C-contiguous array of element type T with `ndim` dimensions (TypeError naming
/// the argument otherwise).
template <class T>
const T* typed(const py::array& a, const char* name, std::size_t ndim = 1) {
    if (!py::isinstance<py::array_t<T>>(a) || std::size_t(a.ndim()) != ndim)
        type_error(std::string(name) + " has the wrong dtype or number of dimensions");
    require_c_contiguous(a, name);
    return static_cast<const T*>(a.data());
}

/// A C-contiguous float32 matrix with `cols` columns (TypeError / ValueError otherwise).
inline const float* float_matrix(const py::array& a, std::size_t cols, const char* name) {
    if (!py::isinstance<py::array_t<float>>(a)) type_error(std::string(name) + " must be float32");
    if (a.ndim() != 2 || std::size_t(a.shape(1)) != cols)
        value_error(std::string(name) + " must have shape (n, " + std::to_string(cols) + ")");
    require_c_contiguous(a, name);
    return static_cast<const float*>(a.data());
}

/// A (tokens, offsets) pair as a validated view (offsets checked, values not scanned).
inline MultiVectorsView as_multivectors(const py::array& tokens, const py::array& offsets,
                                        const char* name) {
    MultiVectorsView v;
    v.dtype = token_dtype(tokens, name);
    if (tokens.ndim() != 2)
        value_error(std::string(name) + ": tokens must be a 2-D array, got " +
                    std::to_string(tokens.ndim()) + " dimensions");
    require_c_contiguous(tokens, name);
    if (!py::isinstance<py::array_t<std::int64_t>>(offsets) || offsets.ndim() != 1)
        type_error(std::string(name) + ": offsets must be a 1-D int64 array");
    require_c_contiguous(offsets, name);
    if (offsets.shape(0) < 1) value_error(std::string(name) + ": offsets must not be empty");
    v.tokens = tokens.data();
    v.offsets = static_cast<const std::int64_t*>(offsets.data());
    v.rows = std::size_t(tokens.shape(0));
    v.dim = std::size_t(tokens.shape(1));
    v.row_stride = v.dim;
    v.count = std::size_t(offsets.shape(0)) - 1;
    v.validate(name);
    return v;
}

/// A new C-contiguous array of the given shape, written by the core before it is returned.
template <class T>
py::array_t<T> new_array(std::initializer_list<py::ssize_t> shape) {
    return py::array_t<T>(std::vector<py::ssize_t>(shape));
}

/// A JSON value (an object's parameters) as Python values: dict, list, str, int, float, bool, None.
inline py::object to_python(const Json& value) {
    switch (value.type()) {
        case Json::Type::null: return py::none();
        case Json::Type::boolean: return py::bool_(value.as_bool());
        case Json::Type::integer: {
            const std::string text = value.dump();  // exact for any 64-bit value, signed or not
            return py::reinterpret_steal<py::object>(PyLong_FromString(text.c_str(), nullptr, 10));
        }
        case Json::Type::number: return py::float_(value.as_number());
        case Json::Type::string: return py::str(value.as_string());
        case Json::Type::array: {
            py::list out;
            for (const Json& item : value.items()) out.append(to_python(item));
            return std::move(out);
        }
        case Json::Type::object: {
            py::dict out;
            for (const auto& member : value.members()) out[py::str(member.first)] = to_python(member.second);
            return std::move(out);
        }
    }
    return py::none();
}

/// The interpreter's lock released for a call into the core, whose long loops stop on Ctrl-C
/// (this thread is the one the module's interrupt check looks at).
struct released_gil {
    py::gil_scoped_release release;
    InterruptibleScope interruptible;
};

/// f() without the GIL, for a call that waits for an object's lock: the lock's holder may be
/// waiting for the GIL (a long call asks the interpreter for Ctrl-C between chunks).
template <class F>
auto without_gil(F&& f) -> decltype(f()) {
    py::gil_scoped_release release;
    return f();
}

/// A file image (to_bytes) as a Python bytes object, made without the GIL.
template <class F>
py::bytes image_bytes(F&& to_bytes) {
    std::string image;
    {
        released_gil release;
        image = to_bytes();
    }
    return py::bytes(image);
}

/// The contents of a Python bytes object (valid while the object lives).
inline std::pair<const char*, std::size_t> bytes_contents(const py::bytes& b) {
    char* data = nullptr;
    Py_ssize_t size = 0;
    if (PyBytes_AsStringAndSize(b.ptr(), &data, &size) != 0) throw py::error_already_set();
    return {data, std::size_t(size)};
}

/// Thread count from Python: None -> all cores (0); any larger int than max_threads() is
/// capped there (by resolve_threads).
inline std::size_t as_threads(const py::object& threads) {
    if (threads.is_none()) return 0;
    if (PyBool_Check(threads.ptr()) || !PyIndex_Check(threads.ptr()))
        type_error("threads must be an int or None, got " + std::string(Py_TYPE(threads.ptr())->tp_name));
    const py::int_ value = py::reinterpret_steal<py::int_>(PyNumber_Index(threads.ptr()));
    if (!value) throw py::error_already_set();
    int overflow = 0;
    const long long t = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
    if (overflow < 0 || (overflow == 0 && t < 1))
        value_error("threads must be at least 1 (or None for all cores), got " + std::string(py::str(value)));
    return overflow > 0 ? max_threads() : std::size_t(t);
}

}  // namespace bindings
}  // namespace latefold
