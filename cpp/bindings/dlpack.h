// The DLPack data-exchange ABI (https://dmlc.github.io/dlpack/latest/c_api.html), the structures
// only: the layout every producer (NumPy, PyTorch, CuPy, JAX) fills in its capsules.
#pragma once

#include <cstdint>

namespace latefold {
namespace bindings {
namespace dlpack {

enum DeviceType : std::int32_t { cpu = 1, cuda = 2, cuda_host = 3, cuda_managed = 13 };
enum TypeCode : std::uint8_t { int_ = 0, uint = 1, float_ = 2, bfloat = 4 };

struct Device {
    std::int32_t device_type;
    std::int32_t device_id;
};

struct DataType {
    std::uint8_t code;
    std::uint8_t bits;
    std::uint16_t lanes;
};

struct Tensor {
    void* data;
    Device device;
    std::int32_t ndim;
    DataType dtype;
    std::int64_t* shape;
    std::int64_t* strides;  // in elements; null: C-contiguous
    std::uint64_t byte_offset;
};

struct ManagedTensor {  // capsule "dltensor"
    Tensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(ManagedTensor* self);
};

struct Version {
    std::uint32_t major;
    std::uint32_t minor;
};

constexpr std::uint64_t flag_read_only = 1;

struct ManagedTensorVersioned {  // capsule "dltensor_versioned" (DLPack 1.x)
    Version version;
    void* manager_ctx;
    void (*deleter)(ManagedTensorVersioned* self);
    std::uint64_t flags;
    Tensor dl_tensor;
};

}  // namespace dlpack
}  // namespace bindings
}  // namespace latefold
