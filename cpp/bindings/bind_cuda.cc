// The CUDA engines: status, device arrays in (foreign_arrays.h) and out (DeviceArray, exported by
// __cuda_array_interface__ and __dlpack__), documents held on a device (DeviceTokens), MaxSim.
#include <algorithm>
#include <cstring>
#include <memory>

#include <pybind11/stl.h>

#include "dlpack.h"
#include "foreign_arrays.h"
#include "latefold/cuda.h"
#include "latefold/fde.h"
#include "latefold/pq.h"
#include "ragged_items.h"

namespace latefold {
namespace bindings {

namespace {

using namespace pybind11::literals;

// ------------------------------------------------------------------------------ DeviceArray

/// A C-contiguous array in device memory that latefold allocated (results).
class DeviceArray {
public:
    enum class Type { f32, i64, u32 };

    DeviceArray(std::vector<std::int64_t> shape, Type type, int device) : shape_(std::move(shape)), type_(type) {
        buffer_ = std::make_shared<cuda::Buffer>(std::size_t(size()) * item_size(), device);
    }

    std::int64_t size() const {
        std::int64_t n = 1;
        for (std::int64_t s : shape_) n *= s;
        return n;
    }
    std::size_t item_size() const { return type_ == Type::i64 ? 8 : 4; }
    void* data() const { return buffer_->data(); }
    int device() const { return buffer_->device(); }
    const std::vector<std::int64_t>& shape() const { return shape_; }
    const char* typestr() const { return type_ == Type::f32 ? "<f4" : type_ == Type::i64 ? "<i8" : "<u4"; }
    std::string dtype() const { return type_ == Type::f32 ? "float32" : type_ == Type::i64 ? "int64" : "uint32"; }
    dlpack::DataType dl_type() const {
        return type_ == Type::f32   ? dlpack::DataType{dlpack::float_, 32, 1}
               : type_ == Type::i64 ? dlpack::DataType{dlpack::int_, 64, 1}
                                    : dlpack::DataType{dlpack::uint, 32, 1};
    }

    /// The same memory with another shape of as many elements.
    DeviceArray reshape(std::vector<std::int64_t> shape) const {
        DeviceArray other = *this;
        other.shape_ = std::move(shape);
        if (other.size() != size()) value_error("reshape: the number of elements must stay the same");
        return other;
    }

    py::array numpy() const {
        py::array out(py::dtype(dtype()), shape_);
        void* target = out.mutable_data();
        released_gil release;
        cuda::copy_to_host(target, data(), std::size_t(size()) * item_size(), device());
        return out;
    }

    py::dict cuda_array_interface() const {
        py::tuple shape(shape_.size());
        for (std::size_t i = 0; i < shape_.size(); ++i) shape[i] = shape_[i];
        // Results are complete when the call that made them returns: no stream to wait on.
        return py::dict("shape"_a = shape, "typestr"_a = typestr(),
                        "data"_a = py::make_tuple(reinterpret_cast<std::uintptr_t>(data()), false), "version"_a = 3,
                        "strides"_a = py::none(), "stream"_a = py::none());
    }

    py::capsule dlpack(bool versioned) const;

private:
    std::shared_ptr<cuda::Buffer> buffer_;
    std::vector<std::int64_t> shape_;
    Type type_;
};

/// What an exported tensor keeps alive: the memory, and the shape and strides it points at.
struct Export {
    std::shared_ptr<cuda::Buffer> buffer;
    std::vector<std::int64_t> shape, strides;
};

template <class Managed>
void delete_managed(Managed* self) {  // any thread, no GIL needed: frees device memory only
    delete static_cast<Export*>(self->manager_ctx);
    delete self;
}

template <class Managed>
void capsule_destructor(PyObject* capsule) {  // a capsule nobody consumed still owns its tensor
    const char* name = std::is_same_v<Managed, dlpack::ManagedTensorVersioned> ? "dltensor_versioned" : "dltensor";
    if (PyCapsule_IsValid(capsule, name)) {
        auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
        m->deleter(m);
    }
}

template <class Managed>
py::capsule export_tensor(const std::shared_ptr<cuda::Buffer>& buffer, const std::vector<std::int64_t>& shape,
                          dlpack::DataType type) {
    std::vector<std::int64_t> strides(shape.size(), 1);  // C order, in elements (DLPack >= 1.2 wants them)
    for (std::size_t i = shape.size(); i-- > 1;) strides[i - 1] = strides[i] * shape[i];
    auto* ctx = new Export{buffer, shape, strides};
    auto* m = new Managed{};
    m->manager_ctx = ctx;
    m->deleter = &delete_managed<Managed>;
    if constexpr (std::is_same_v<Managed, dlpack::ManagedTensorVersioned>) m->version = {1, 0};
    dlpack::Tensor& t = m->dl_tensor;
    t.data = buffer->data();
    t.device = {dlpack::cuda, buffer->device()};
    t.ndim = std::int32_t(shape.size());
    t.dtype = type;
    t.shape = ctx->shape.data();
    t.strides = ctx->strides.data();
    t.byte_offset = 0;
    const char* name = std::is_same_v<Managed, dlpack::ManagedTensorVersioned> ? "dltensor_versioned" : "dltensor";
    PyObject* capsule = PyCapsule_New(m, name, &capsule_destructor<Managed>);
    if (!capsule) {
        delete_managed(m);
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::capsule>(capsule);
}

py::capsule DeviceArray::dlpack(bool versioned) const {
    return versioned ? export_tensor<dlpack::ManagedTensorVersioned>(buffer_, shape_, dl_type())
                     : export_tensor<dlpack::ManagedTensor>(buffer_, shape_, dl_type());
}

// ----------------------------------------------------------------------------- DeviceTokens

/// Host int64 values of a 1-D array (NumPy, or a foreign array on the host or a device).
std::vector<std::int64_t> int64_values(const py::object& obj, const char* name) {
    if (is_foreign_array(obj)) {
        const ForeignArray a = read_foreign_array(obj, name);
        if (a.kind != 'i' || a.bits != 64 || a.shape.size() != 1 || !a.c_contiguous())
            type_error(std::string(name) + " must be a contiguous 1-D int64 array");
        std::vector<std::int64_t> out(std::size_t(a.shape[0]));
        if (a.on_device) cuda::copy_to_host(out.data(), a.data, out.size() * 8, a.device);
        else if (!out.empty()) std::memcpy(out.data(), a.data, out.size() * 8);
        return out;
    }
    const py::array a = py::array::ensure(obj);
    if (!a || !py::isinstance<py::array_t<std::int64_t>>(a) || a.ndim() != 1)
        type_error(std::string(name) + " must be a 1-D int64 array");
    const py::array_t<std::int64_t, py::array::c_style> c(a);
    return std::vector<std::int64_t>(c.data(), c.data() + c.size());
}

/// Multi-vectors on a device: a producer's tokens read in place (kept alive here), or a copy of
/// host tokens latefold made. Offsets are held on the host (validated) and on the device.
class DeviceTokens {
public:
    static std::shared_ptr<DeviceTokens> from_foreign(const py::object& tokens, const py::object& offsets,
                                                      const py::object& scales, const py::object& dtype,
                                                      const std::string& name);
    static std::shared_ptr<DeviceTokens> upload(const py::object& tokens, const py::object& offsets, int device,
                                                const std::string& name);

    const cuda::DeviceItems& items() const { return items_; }
    py::array offsets() const {
        py::array_t<std::int64_t> out(py::ssize_t(offsets_.size()));
        std::copy(offsets_.begin(), offsets_.end(), out.mutable_data());
        return std::move(out);
    }
    std::size_t nbytes() const {
        return items_.rows * items_.dim * dtype_size(items_.dtype) + offsets_.size() * 8 +
               (items_.scales ? items_.rows * 4 : 0);
    }
    /// (tokens, offsets, scales or None) copied to host arrays (bfloat16 as uint16 bits).
    py::tuple to_host() const;

private:
    void finish(const std::string& name);

    py::object owner_, scales_owner_;  // producers' arrays read in place
    cuda::UploadedItems uploaded_;     // or latefold's own copy
    cuda::Buffer device_offsets_, device_scales_;
    std::vector<std::int64_t> offsets_;
    cuda::DeviceItems items_;
};

std::shared_ptr<DeviceTokens> DeviceTokens::from_foreign(const py::object& tokens, const py::object& offsets,
                                                         const py::object& scales, const py::object& dtype,
                                                         const std::string& name) {
    auto d = std::make_shared<DeviceTokens>();
    const ForeignArray t = read_foreign_array(tokens, name + ": tokens");
    if (!t.on_device) type_error(name + ": tokens are in host memory (use lf.to_device, or a NumPy array)");
    if (t.shape.size() != 2 || t.shape[1] < 1)
        value_error(name + ": tokens must be a 2-D array with at least one column");
    if (t.strides[1] != 1 || (t.shape[0] > 1 && t.strides[0] < t.shape[1]))
        value_error(name + ": tokens must have contiguous rows (unit stride along a row)");
    const std::string type = t.dtype_name();
    const std::string wanted = dtype.is_none() ? type : py::cast<std::string>(dtype);
    DType dt;
    if (type == "float32" && wanted == "float32") dt = DType::f32;
    else if (type == "float16" && wanted == "float16") dt = DType::f16;
    else if ((type == "bfloat16" || type == "uint16") && wanted == "bfloat16") dt = DType::bf16;
    else if (type == "int8" && wanted == "int8") dt = DType::i8;
    else type_error(name + ": tokens of type " + type + (dtype.is_none() ? "" : " as " + wanted) +
                    " are not a token storage (float32, float16, bfloat16, int8 with scales)");
    if (reinterpret_cast<std::uintptr_t>(t.data) % dtype_size(dt) != 0)  // strides are whole elements
        value_error(name + ": tokens are not aligned to their element size");
    d->owner_ = t.owner;
    d->offsets_ = int64_values(offsets, "offsets");
    if (d->offsets_.empty()) value_error(name + ": offsets must not be empty");
    cuda::DeviceItems& items = d->items_;
    items.tokens = t.data;
    items.count = d->offsets_.size() - 1;
    items.rows = std::size_t(t.shape[0]);
    items.dim = std::size_t(t.shape[1]);
    items.row_stride = t.shape[0] > 1 ? std::size_t(t.strides[0]) : items.dim;
    items.dtype = dt;
    items.device = t.device;
    if (!scales.is_none()) {
        if (dt != DType::i8) value_error(name + ": scales are for int8 tokens only");
        if (is_foreign_array(scales)) {
            const ForeignArray s = read_foreign_array(scales, name + ": scales");
            if (s.dtype_name() != "float32" || s.shape.size() != 1 || !s.c_contiguous())
                type_error(name + ": scales must be a contiguous 1-D float32 array");
            if (std::size_t(s.shape[0]) != items.rows) value_error(name + ": scales must have one value per token");
            if (!s.on_device || s.device != t.device) value_error(name + ": scales must be on the tokens' device");
            if (reinterpret_cast<std::uintptr_t>(s.data) % 4 != 0) value_error(name + ": scales are not aligned");
            d->scales_owner_ = s.owner;
            items.scales = static_cast<const float*>(s.data);
        } else {
            const py::array_t<float, py::array::c_style | py::array::forcecast> s(scales);
            if (s.ndim() != 1 || std::size_t(s.shape(0)) != items.rows)
                value_error(name + ": scales must have one value per token");
            d->device_scales_ = cuda::Buffer(items.rows * 4, items.device);
            cuda::copy_to_device(d->device_scales_.data(), s.data(), items.rows * 4, items.device);
            items.scales = static_cast<const float*>(d->device_scales_.data());
        }
    }
    d->finish(name);
    return d;
}

std::shared_ptr<DeviceTokens> DeviceTokens::upload(const py::object& tokens, const py::object& offsets, int device,
                                                   const std::string& name) {
    auto d = std::make_shared<DeviceTokens>();
    const MultiVectorsView host = as_items(tokens, offsets, name.c_str());  // read while the caller holds them
    {
        released_gil release;
        if (!host.values_checked) check_unchecked_values(host, name.c_str());
        d->uploaded_ = cuda::upload(host, device);
    }
    d->items_ = d->uploaded_.items;
    d->offsets_.assign(host.offsets, host.offsets + host.count + 1);
    return d;
}

void DeviceTokens::finish(const std::string& name) {
    MultiVectorsView view;  // the offsets' checks of the CPU engines (tokens never read here)
    view.tokens = items_.tokens;
    view.offsets = offsets_.data();
    view.rows = items_.rows;
    view.count = items_.count;
    view.dim = items_.dim;
    view.row_stride = items_.row_stride;
    view.dtype = items_.dtype;
    view.scales = items_.scales;
    view.validate(name.c_str());
    std::int64_t bad = -1;
    {
        released_gil release;
        device_offsets_ = cuda::Buffer(offsets_.size() * 8, items_.device);
        cuda::copy_to_device(device_offsets_.data(), offsets_.data(), offsets_.size() * 8, items_.device);
        items_.offsets = static_cast<const std::int64_t*>(device_offsets_.data());
        bad = cuda::first_non_finite_row(items_);
    }
    if (bad >= 0) {
        const std::size_t item = std::size_t(std::upper_bound(offsets_.begin(), offsets_.end(), bad) - offsets_.begin()) - 1;
        fail_non_finite(name.c_str(), {std::int64_t(item), bad - offsets_[item]});
    }
}

py::tuple DeviceTokens::to_host() const {
    const std::size_t e = dtype_size(items_.dtype);
    py::dtype dt = items_.dtype == DType::f32 ? py::dtype::of<float>()
                   : items_.dtype == DType::f16 ? py::dtype("float16")
                   : items_.dtype == DType::bf16 ? py::dtype::of<std::uint16_t>()
                                                 : py::dtype::of<std::int8_t>();
    py::array tokens(dt, std::vector<py::ssize_t>{py::ssize_t(items_.rows), py::ssize_t(items_.dim)});
    py::object scales = py::none();
    py::array_t<float> host_scales(py::ssize_t(items_.scales ? items_.rows : 0));
    void* token_target = tokens.mutable_data();
    float* scale_target = host_scales.mutable_data();
    {
        released_gil release;
        cuda::copy_rows_to_host(token_target, items_.tokens, items_.rows, items_.dim * e, items_.row_stride * e,
                                items_.device);
        if (items_.scales) cuda::copy_to_host(scale_target, items_.scales, items_.rows * 4, items_.device);
    }
    if (items_.scales) scales = host_scales;
    return py::make_tuple(tokens, offsets(), scales);
}

// ------------------------------------------------------------------------------------ MaxSim

/// Host queries as the CUDA calls take them (values checked).
MultiVectorsView host_queries(const py::object& tokens, const py::object& offsets) {
    const MultiVectorsView q = as_items(tokens, offsets, "queries");
    if (!q.values_checked) {
        released_gil release;
        check_unchecked_values(q, "queries");
    }
    return q;
}

void same_dim(const MultiVectorsView& q, const DeviceTokens& d) {
    if (q.count && d.items().count && q.dim != d.items().dim)
        value_error("queries have token dimension " + std::to_string(q.dim) + " but docs have " +
                    std::to_string(d.items().dim));
}

py::dict status_dict() {
    const cuda::Status s = cuda::status();
    py::list devices;
    for (const cuda::Device& d : s.devices)
        devices.append(py::dict("index"_a = d.index, "name"_a = d.name,
                                "compute_capability"_a = py::make_tuple(d.major, d.minor),
                                "memory_bytes"_a = d.memory_bytes, "multiprocessors"_a = d.multiprocessors));
    auto version = [](int v) { return v ? py::object(py::str(std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10))) : py::object(py::none()); };
    return py::dict("built"_a = s.built, "usable"_a = s.usable, "reason"_a = s.reason,
                    "runtime_version"_a = version(s.runtime_version), "driver_version"_a = version(s.driver_version),
                    "devices"_a = devices);
}

}  // namespace

void bind_cuda(py::module_& m) {
    m.def(
        "cuda_fde_encode",
        [](const FdeEncoder& encoder, const DeviceTokens& items, bool documents) {
            const cuda::DeviceItems& d = items.items();
            DeviceArray out({std::int64_t(d.count), std::int64_t(encoder.config().output_dim())},
                            DeviceArray::Type::f32, d.device);
            {
                released_gil release;
                cuda::fde_encode(encoder, d, documents, static_cast<float*>(out.data()));
            }
            return out;
        },
        py::arg("encoder"), py::arg("items"), py::arg("documents"));
    m.def(
        "cuda_pq_search",
        [](const ProductQuantizer& pq, const py::object& codes, const py::array& queries, long long k,
           const py::object& allowed, int device) {
            const float* q = float_matrix(queries, pq.dim(), "queries");
            const std::size_t nq = std::size_t(queries.shape(0));
            if (k < 1) value_error("k must be at least 1");
            // Codes: a device array read in place, or host codes copied for the call.
            py::object keep;
            const std::uint8_t* device_codes = nullptr;
            std::size_t n = 0;
            cuda::Buffer uploaded, bits;
            if (is_foreign_array(codes)) {
                const ForeignArray c = read_foreign_array(codes, "codes");
                if (!c.on_device || c.dtype_name() != "uint8" || c.shape.size() != 2 || !c.c_contiguous() ||
                    std::size_t(c.shape[1]) != pq.code_size())
                    type_error("codes must be a C-contiguous uint8 (n, " + std::to_string(pq.code_size()) +
                               ") array on the device");
                if (c.device != device) value_error("codes are on another device");
                keep = c.owner;
                device_codes = static_cast<const std::uint8_t*>(c.data);
                n = std::size_t(c.shape[0]);
            } else {
                const py::array host = py::array::ensure(codes);
                const auto* data = typed<std::uint8_t>(host, "codes", 2);
                if (std::size_t(host.shape(1)) != pq.code_size())
                    value_error("codes must have " + std::to_string(pq.code_size()) + " bytes per vector");
                n = std::size_t(host.shape(0));
                released_gil release;
                uploaded = cuda::Buffer(n * pq.code_size(), device);
                cuda::copy_to_device(uploaded.data(), data, uploaded.size(), device);
                device_codes = static_cast<const std::uint8_t*>(uploaded.data());
            }
            if (!allowed.is_none()) {  // packed bits, validated by the caller
                const py::array mask = py::array::ensure(allowed);
                const auto* data = typed<std::uint8_t>(mask, "allowed", 1);
                if (std::size_t(mask.shape(0)) != (n + 7) / 8) value_error("allowed must hold a bit per code");
                bits = cuda::Buffer(std::size_t(mask.shape(0)), device);
                cuda::copy_to_device(bits.data(), data, bits.size(), device);
            }
            DeviceArray scores({std::int64_t(nq), k}, DeviceArray::Type::f32, device);
            DeviceArray ids({std::int64_t(nq), k}, DeviceArray::Type::i64, device);
            {
                released_gil release;
                cuda::pq_search(pq, device_codes, n, q, nq, std::size_t(k), static_cast<const std::uint8_t*>(bits.data()),
                                static_cast<float*>(scores.data()), static_cast<std::int64_t*>(ids.data()), device);
            }
            return py::make_tuple(scores, ids);
        },
        py::arg("pq"), py::arg("codes"), py::arg("queries"), py::arg("k"), py::arg("allowed"), py::arg("device"));
    m.def(
        "cuda_fde_partitions",
        [](const FdeEncoder& encoder, const DeviceTokens& items) {
            const cuda::DeviceItems& d = items.items();
            DeviceArray out({std::int64_t(d.rows), std::int64_t(encoder.config().num_repetitions)},
                            DeviceArray::Type::u32, d.device);
            {
                released_gil release;
                cuda::fde_partitions(encoder, d, static_cast<std::uint32_t*>(out.data()));
            }
            return out;
        },
        py::arg("encoder"), py::arg("items"));

    m.def("cuda_status", &status_dict);

    m.def(
        "foreign_array",  // what the protocols say of an array, without touching its memory (tests)
        [](const py::object& obj) {
            const ForeignArray a = read_foreign_array(obj, "array", false);
            return py::dict("data"_a = reinterpret_cast<std::uintptr_t>(a.data), "dtype"_a = a.dtype_name(),
                            "shape"_a = a.shape, "strides"_a = a.strides, "on_device"_a = a.on_device,
                            "device"_a = a.device, "read_only"_a = a.read_only, "c_contiguous"_a = a.c_contiguous());
        },
        py::arg("obj"));

    py::class_<DeviceArray>(m, "DeviceArray",
                            "A float32, int64 or uint32 array in CUDA device memory that latefold allocated (results).\n\n"
                            "shape, dtype, device; numpy() (or np.asarray) copies it to the host;\n"
                            "__cuda_array_interface__ and __dlpack__ hand it to other libraries without a copy.")
        .def_property_readonly("shape", [](const DeviceArray& a) { return py::tuple(py::cast(a.shape())); })
        .def_property_readonly("dtype", &DeviceArray::dtype)
        .def_property_readonly("device", &DeviceArray::device)
        .def_property_readonly("__cuda_array_interface__", &DeviceArray::cuda_array_interface)
        .def("__dlpack_device__", [](const DeviceArray& a) { return py::make_tuple(int(dlpack::cuda), a.device()); })
        .def(
            "__dlpack__",
            [](const DeviceArray& a, const py::object& stream, const py::object& max_version,
               const py::object& dl_device, const py::object& copy) {
                (void)stream;  // the data is complete: nothing is pending on any stream
                if (!dl_device.is_none()) {
                    const py::tuple want = dl_device;
                    if (py::cast<int>(want[0]) != dlpack::cuda || py::cast<int>(want[1]) != a.device())
                        throw py::buffer_error("latefold.DeviceArray: only its own device can be exported");
                }
                if (!copy.is_none() && py::cast<bool>(copy))
                    throw py::buffer_error("latefold.DeviceArray: exports without a copy");
                const bool versioned = !max_version.is_none() && py::cast<int>(py::tuple(max_version)[0]) >= 1;
                return a.dlpack(versioned);
            },
            py::kw_only(), py::arg("stream") = py::none(), py::arg("max_version") = py::none(),
            py::arg("dl_device") = py::none(), py::arg("copy") = py::none())
        .def("numpy", &DeviceArray::numpy)
        .def(
            "__array__",
            [](const DeviceArray& a, const py::object& dtype, const py::object& copy) -> py::object {
                if (!copy.is_none() && !py::cast<bool>(copy))
                    value_error("a latefold.DeviceArray is in device memory: a host array is always a copy");
                py::array out = a.numpy();
                return dtype.is_none() ? py::object(out) : out.attr("astype")(dtype);
            },
            py::arg("dtype") = py::none(), py::arg("copy") = py::none())
        .def("reshape", [](const DeviceArray& a, std::vector<std::int64_t> shape) { return a.reshape(std::move(shape)); });

    py::class_<DeviceTokens, std::shared_ptr<DeviceTokens>>(m, "DeviceTokens")
        .def_static("from_foreign", &DeviceTokens::from_foreign, py::arg("tokens"), py::arg("offsets"),
                    py::arg("scales"), py::arg("dtype"), py::arg("name"))
        .def_static("upload", &DeviceTokens::upload, py::arg("tokens"), py::arg("offsets"), py::arg("device"),
                    py::arg("name"))
        .def("__len__", [](const DeviceTokens& d) { return d.items().count; })
        .def_property_readonly("count", [](const DeviceTokens& d) { return d.items().count; })
        .def_property_readonly("rows", [](const DeviceTokens& d) { return d.items().rows; })
        .def_property_readonly("dim", [](const DeviceTokens& d) { return d.items().dim; })
        .def_property_readonly("storage", [](const DeviceTokens& d) { return std::string(dtype_name(d.items().dtype)); })
        .def_property_readonly("device", [](const DeviceTokens& d) { return d.items().device; })
        .def_property_readonly("nbytes", &DeviceTokens::nbytes)
        .def("offsets", &DeviceTokens::offsets)
        .def("to_host", &DeviceTokens::to_host);

    m.def(
        "cuda_maxsim",
        [](const py::object& q_tokens, const py::object& q_offsets, const DeviceTokens& docs) {
            const MultiVectorsView q = host_queries(q_tokens, q_offsets);
            same_dim(q, docs);
            DeviceArray out({std::int64_t(q.count), std::int64_t(docs.items().count)}, DeviceArray::Type::f32, docs.items().device);
            released_gil release;
            cuda::maxsim_scores(q, docs.items(), static_cast<float*>(out.data()));
            return out;
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("docs"));

    m.def(
        "cuda_maxsim_rerank",
        [](const py::object& q_tokens, const py::object& q_offsets, const DeviceTokens& docs,
           const py::array& candidates) {
            const MultiVectorsView q = host_queries(q_tokens, q_offsets);
            same_dim(q, docs);
            const auto* ids = typed<std::int64_t>(candidates, "candidates", 2);
            if (std::size_t(candidates.shape(0)) != q.count) value_error("candidates must have a row per query");
            const std::size_t per_query = std::size_t(candidates.shape(1));
            for (py::ssize_t i = 0; i < candidates.size(); ++i)
                if (ids[i] < -1 || ids[i] >= std::int64_t(docs.items().count))
                    value_error("candidates hold an index that is not a document's nor -1");
            const int device = docs.items().device;
            DeviceArray out({std::int64_t(q.count), std::int64_t(per_query)}, DeviceArray::Type::f32, device);
            released_gil release;
            cuda::Buffer device_ids(q.count * per_query * 8, device);
            cuda::copy_to_device(device_ids.data(), ids, device_ids.size(), device);
            cuda::maxsim_rerank(q, docs.items(), static_cast<const std::int64_t*>(device_ids.data()), per_query,
                                static_cast<float*>(out.data()));
            return out;
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("docs"), py::arg("candidates"));

    m.def(
        "cuda_maxsim_topk",
        [](const py::object& q_tokens, const py::object& q_offsets, const DeviceTokens& docs, long long k) {
            const MultiVectorsView q = host_queries(q_tokens, q_offsets);
            same_dim(q, docs);
            if (k < 1 || std::size_t(k) > docs.items().count)
                value_error("k must be in [1, " + std::to_string(docs.items().count) + "], got " + std::to_string(k));
            const int device = docs.items().device;
            DeviceArray scores({std::int64_t(q.count), k}, DeviceArray::Type::f32, device);
            DeviceArray ids({std::int64_t(q.count), k}, DeviceArray::Type::i64, device);
            {
                released_gil release;
                cuda::maxsim_topk(q, docs.items(), std::size_t(k), static_cast<float*>(scores.data()),
                                  static_cast<std::int64_t*>(ids.data()));
            }
            return py::make_tuple(scores, ids);
        },
        py::arg("q_tokens"), py::arg("q_offsets"), py::arg("docs"), py::arg("k"));
}

}  // namespace bindings
}  // namespace latefold
