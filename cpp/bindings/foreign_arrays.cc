// Reading __cuda_array_interface__ and __dlpack__ (foreign_arrays.h).
#include "foreign_arrays.h"

#include <cstring>

#include "dlpack.h"
#include "latefold/cuda.h"

namespace latefold {
namespace bindings {

namespace {

using namespace pybind11::literals;

std::vector<std::int64_t> c_strides(const std::vector<std::int64_t>& shape) {
    std::vector<std::int64_t> strides(shape.size());
    std::int64_t step = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        strides[i] = step;
        step *= shape[i];
    }
    return strides;
}

std::int64_t element_count(const std::vector<std::int64_t>& shape) {
    std::int64_t n = 1;
    for (std::int64_t s : shape) n *= s;
    return n;
}

ForeignArray from_cuda_array_interface(const py::object& obj, const std::string& name) {
    const py::object interface = obj.attr("__cuda_array_interface__");
    if (!py::isinstance<py::dict>(interface)) type_error(name + ": __cuda_array_interface__ is not a dict");
    const py::dict cai = interface;
    auto field = [&](const char* key) -> py::object {
        if (!cai.contains(key)) value_error(name + ": __cuda_array_interface__ has no '" + key + "'");
        return cai[key];
    };
    const long long version = py::cast<long long>(field("version"));
    if (version < 2 || version > 3)
        value_error(name + ": __cuda_array_interface__ version " + std::to_string(version) + " is not 2 or 3");
    ForeignArray a;
    a.on_device = true;
    for (const py::handle& s : py::tuple(field("shape"))) a.shape.push_back(py::cast<std::int64_t>(s));
    const std::string typestr = py::cast<std::string>(field("typestr"));
    if (typestr.size() < 3 || (typestr[0] != '<' && typestr[0] != '|' && typestr[0] != '='))
        type_error(name + ": unsupported typestr '" + typestr + "' (little-endian types only)");
    if (typestr[1] != 'f' && typestr[1] != 'i' && typestr[1] != 'u')
        type_error(name + ": unsupported typestr '" + typestr + "'");
    a.kind = typestr[1];
    const int itemsize = std::atoi(typestr.c_str() + 2);
    if (itemsize != 1 && itemsize != 2 && itemsize != 4 && itemsize != 8)
        type_error(name + ": unsupported typestr '" + typestr + "'");
    a.bits = 8 * itemsize;
    const py::tuple data = field("data");
    if (data.size() != 2) value_error(name + ": __cuda_array_interface__ 'data' must be (pointer, read_only)");
    a.data = reinterpret_cast<void*>(py::cast<std::uintptr_t>(data[0]));
    a.read_only = py::cast<bool>(data[1]);
    if (cai.contains("mask") && !cai["mask"].is_none()) value_error(name + ": masked arrays are not supported");
    a.strides = c_strides(a.shape);
    if (cai.contains("strides") && !cai["strides"].is_none()) {
        const py::tuple strides = cai["strides"];
        if (strides.size() != a.shape.size()) value_error(name + ": strides and shape differ in length");
        for (std::size_t i = 0; i < strides.size(); ++i) {
            const std::int64_t bytes = py::cast<std::int64_t>(strides[i]);
            if (bytes % itemsize != 0) value_error(name + ": strides are not whole elements");
            a.strides[i] = bytes / itemsize;
        }
    }
    if (a.data == nullptr && element_count(a.shape) > 0) value_error(name + ": null data pointer");
    a.owner = obj;
    return a;
}

/// Takes ownership of a DLPack capsule's tensor (renamed "used_...", as the protocol asks).
template <class Managed>
ForeignArray from_capsule(const py::capsule& capsule, const char* used, const std::string& name) {
    auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule.ptr(), capsule.name()));
    if (!managed) throw py::error_already_set();
    bool read_only = false;
    if constexpr (std::is_same_v<Managed, dlpack::ManagedTensorVersioned>) {
        if (managed->version.major != 1)
            type_error(name + ": DLPack version " + std::to_string(managed->version.major) + " is not supported");
        read_only = (managed->flags & dlpack::flag_read_only) != 0;
    }
    if (PyCapsule_SetName(capsule.ptr(), used) != 0) throw py::error_already_set();
    ForeignArray a;
    a.owner = py::capsule(managed, [](void* p) {
        auto* m = static_cast<Managed*>(p);
        if (m->deleter) m->deleter(m);
    });
    a.read_only = read_only;
    const dlpack::Tensor& t = managed->dl_tensor;
    switch (t.device.device_type) {
        case dlpack::cpu:
        case dlpack::cuda_host: break;
        case dlpack::cuda:
        case dlpack::cuda_managed:
            a.on_device = true;
            a.device = t.device.device_id;
            break;
        default: type_error(name + ": DLPack device type " + std::to_string(t.device.device_type) + " is not supported");
    }
    if (t.dtype.lanes != 1) type_error(name + ": vector element types are not supported");
    switch (t.dtype.code) {
        case dlpack::int_: a.kind = 'i'; break;
        case dlpack::uint: a.kind = 'u'; break;
        case dlpack::float_: a.kind = 'f'; break;
        case dlpack::bfloat: a.kind = 'b'; break;
        default: type_error(name + ": DLPack type code " + std::to_string(t.dtype.code) + " is not supported");
    }
    a.bits = t.dtype.bits;
    if (t.ndim < 0) value_error(name + ": negative number of dimensions");
    a.shape.assign(t.shape, t.shape + t.ndim);
    a.strides = t.strides ? std::vector<std::int64_t>(t.strides, t.strides + t.ndim) : c_strides(a.shape);
    a.data = static_cast<char*>(t.data) + t.byte_offset;
    return a;
}

ForeignArray from_dlpack(const py::object& obj, const std::string& name) {
    int device_type = dlpack::cpu;
    if (py::hasattr(obj, "__dlpack_device__")) device_type = py::cast<int>(py::tuple(obj.attr("__dlpack_device__")())[0]);
    py::dict kwargs;
    // CUDA producers order their pending work before the legacy default stream, which our calls use.
    if (device_type == dlpack::cuda || device_type == dlpack::cuda_managed) kwargs["stream"] = 1;
    py::object capsule;
    try {
        capsule = obj.attr("__dlpack__")(**kwargs, "max_version"_a = py::make_tuple(1, 0));
    } catch (py::error_already_set& error) {
        if (!error.matches(PyExc_TypeError)) throw;
        capsule = obj.attr("__dlpack__")(**kwargs);  // a producer before DLPack 1.0
    }
    if (!PyCapsule_CheckExact(capsule.ptr())) type_error(name + ": __dlpack__ did not return a capsule");
    const py::capsule cap = py::reinterpret_borrow<py::capsule>(capsule);
    const std::string cname = cap.name() ? cap.name() : "";
    if (cname == "dltensor_versioned")
        return from_capsule<dlpack::ManagedTensorVersioned>(cap, "used_dltensor_versioned", name);
    if (cname == "dltensor") return from_capsule<dlpack::ManagedTensor>(cap, "used_dltensor", name);
    type_error(name + ": __dlpack__ returned a capsule named '" + cname + "'");
}

}  // namespace

bool ForeignArray::c_contiguous() const {
    std::int64_t step = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        if (shape[i] != 1 && strides[i] != step) return false;
        step *= shape[i];
    }
    return true;
}

std::string ForeignArray::dtype_name() const {
    if (kind == 'b' && bits == 16) return "bfloat16";
    const char* base = kind == 'f' ? "float" : kind == 'i' ? "int" : kind == 'u' ? "uint" : "bfloat";
    return base + std::to_string(bits);
}

bool is_foreign_array(const py::handle& obj) {
    if (py::isinstance<py::array>(obj)) return false;
    return py::hasattr(obj, "__cuda_array_interface__") || py::hasattr(obj, "__dlpack__");
}

ForeignArray read_foreign_array(const py::object& obj, const std::string& name, bool resolve) {
    if (py::hasattr(obj, "__cuda_array_interface__")) {
        ForeignArray a = from_cuda_array_interface(obj, name);
        if (resolve) {
            if (a.data) a.device = cuda::pointer_device(a.data);
            const py::dict cai = obj.attr("__cuda_array_interface__");
            if (cai.contains("stream") && !cai["stream"].is_none())
                cuda::synchronize_stream(py::cast<std::uintptr_t>(cai["stream"]), a.device);
        }
        return a;
    }
    if (py::hasattr(obj, "__dlpack__")) return from_dlpack(obj, name);
    type_error(name + ": expected an array with __cuda_array_interface__ or __dlpack__, got " +
               std::string(Py_TYPE(obj.ptr())->tp_name));
}

}  // namespace bindings
}  // namespace latefold
