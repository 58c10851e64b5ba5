// Devices, memory and copies; the finite-value check of device token rows.
#include <cmath>
#include <utility>

#include "cuda_check.h"
#include "latefold/cuda.h"

namespace latefold {
namespace cuda {

namespace {

Status probe() noexcept {
    Status s;
    s.built = true;
    cudaRuntimeGetVersion(&s.runtime_version);
    if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess || s.driver_version == 0) {
        s.reason = "no CUDA driver is installed (libcuda.so.1 not found)";
        return s;
    }
    int count = 0;
    const cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess || count == 0) {
        s.reason = error == cudaSuccess ? "no CUDA device is present"
                                        : std::string("no usable CUDA device: ") + cudaGetErrorString(error);
        cudaGetLastError();
        return s;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        Device d;
        d.index = i;
        d.name = prop.name;
        d.major = prop.major;
        d.minor = prop.minor;
        d.memory_bytes = prop.totalGlobalMem;
        d.multiprocessors = prop.multiProcessorCount;
        s.devices.push_back(d);
    }
    // The kernels are built for compute capability 8.0 and later (sm_80, sm_90, PTX beyond).
    for (const Device& d : s.devices)
        if (d.major >= 8) s.usable = true;
    if (!s.usable) s.reason = "no device of compute capability 8.0 or later";
    return s;
}

}  // namespace

Status status() noexcept {
    static const Status found = probe();  // the driver and devices do not change while a process runs
    Status s = found;
    if (context_lost()) {
        s.usable = false;
        s.reason = "a kernel fault lost this process's CUDA context: restart the process";
    }
    return s;
}

Buffer::Buffer(std::size_t bytes, int device) : bytes_(bytes), device_(device) {
    if (bytes == 0) return;
    const DeviceScope scope(device);
    check(cudaMalloc(&data_, bytes), "cudaMalloc");
}

Buffer::~Buffer() {
    if (data_) {
        int previous = 0;
        cudaGetDevice(&previous);
        cudaSetDevice(device_);
        cudaFree(data_);
        cudaSetDevice(previous);
    }
}

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)), device_(other.device_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
    if (this != &other) {
        Buffer old(std::move(*this));
        data_ = std::exchange(other.data_, nullptr);
        bytes_ = std::exchange(other.bytes_, 0);
        device_ = other.device_;
    }
    return *this;
}

void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes, int device) {
    if (bytes == 0) return;
    const DeviceScope scope(device);
    check(cudaMemcpy(device_dst, host_src, bytes, cudaMemcpyHostToDevice), "copy to the device");
}

void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes, int device) {
    if (bytes == 0) return;
    const DeviceScope scope(device);
    check(cudaMemcpy(host_dst, device_src, bytes, cudaMemcpyDeviceToHost), "copy from the device");
}

void copy_rows_to_host(void* host_dst, const void* device_src, std::size_t rows, std::size_t row_bytes,
                       std::size_t src_stride_bytes, int device) {
    if (rows == 0 || row_bytes == 0) return;
    const DeviceScope scope(device);
    check(cudaMemcpy2D(host_dst, row_bytes, device_src, src_stride_bytes, row_bytes, rows, cudaMemcpyDeviceToHost),
          "copy from the device");
}

void synchronize_stream(std::uintptr_t stream, int device) {
    if (stream == 0) return;
    const DeviceScope scope(device);
    check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)), "synchronizing the producer's stream");
}

int pointer_device(const void* pointer) {
    cudaPointerAttributes attributes{};
    check(cudaPointerGetAttributes(&attributes, pointer), "cudaPointerGetAttributes");
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
        throw std::invalid_argument("the array is not in CUDA device memory");
    return attributes.device;
}

UploadedItems upload(const MultiVectorsView& host, int device) {
    UploadedItems up;
    const std::size_t element = dtype_size(host.dtype);
    const std::size_t row_bytes = host.dim * element;
    up.tokens = Buffer(host.rows * row_bytes, device);
    up.offsets = Buffer((host.count + 1) * sizeof(std::int64_t), device);
    copy_to_device(up.offsets.data(), host.offsets, up.offsets.size(), device);
    char* dst = static_cast<char*>(up.tokens.data());
    if (host.flat()) {  // one 2-D copy (rows may be strided)
        const DeviceScope scope(device);
        check(cudaMemcpy2D(dst, row_bytes, host.tokens, host.row_stride * element, row_bytes, host.rows,
                           cudaMemcpyHostToDevice),
              "copy to the device");
    } else {  // a table of items: one 2-D copy per item
        const DeviceScope scope(device);
        for (std::size_t i = 0; i < host.count; ++i) {
            const std::size_t rows = host.item_length(i);
            check(cudaMemcpy2D(dst + std::size_t(host.offsets[i]) * row_bytes, row_bytes, host.item_data(i),
                               host.row_stride * element, row_bytes, rows, cudaMemcpyHostToDevice),
                  "copy to the device");
        }
    }
    if (host.scales) {
        up.scales = Buffer(host.rows * sizeof(float), device);
        copy_to_device(up.scales.data(), host.scales, up.scales.size(), device);
    }
    up.items = DeviceItems{up.tokens.data(), static_cast<const std::int64_t*>(up.offsets.data()),
                           static_cast<const float*>(up.scales.data()), host.count, host.rows, host.dim,
                           host.dim, host.dtype, device};
    return up;
}

namespace {

__device__ bool finite_value(float x) { return isfinite(x); }

/// Lowest non-finite row into *first (atomicMin over rows; each thread strides over rows).
__global__ void first_non_finite_kernel(const void* tokens, const float* scales, std::size_t rows,
                                        std::size_t dim, std::size_t row_stride, int dtype,
                                        unsigned long long* first) {
    const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t r = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; r < rows; r += step) {
        if (r >= *first) return;  // a lower row is already known
        bool ok = true;
        if (dtype == int(DType::i8)) {
            ok = finite_value(scales[r]);
        } else if (dtype == int(DType::f32)) {
            const float* row = static_cast<const float*>(tokens) + r * row_stride;
            for (std::size_t c = 0; c < dim && ok; ++c) ok = finite_value(row[c]);
        } else {  // 16-bit floats: exponent all ones (float16 0x7c00, bfloat16 0x7f80)
            const std::uint16_t mask = dtype == int(DType::f16) ? 0x7c00 : 0x7f80;
            const std::uint16_t* row = static_cast<const std::uint16_t*>(tokens) + r * row_stride;
            for (std::size_t c = 0; c < dim && ok; ++c) ok = (row[c] & mask) != mask;
        }
        if (!ok) atomicMin(first, static_cast<unsigned long long>(r));
    }
}

}  // namespace

std::int64_t first_non_finite_row(const DeviceItems& items) {
    if (items.rows == 0) return -1;
    const DeviceScope scope(items.device);
    Buffer first(sizeof(unsigned long long), items.device);
    const unsigned long long none = ~0ull;
    copy_to_device(first.data(), &none, sizeof none, items.device);
    const unsigned blocks = unsigned(std::min<std::size_t>((items.rows + 255) / 256, 4096));
    first_non_finite_kernel<<<blocks, 256>>>(items.tokens, items.scales, items.rows, items.dim, items.row_stride,
                                             int(items.dtype), static_cast<unsigned long long*>(first.data()));
    finish("the finite-value check");
    unsigned long long row = none;
    copy_to_host(&row, first.data(), sizeof row, items.device);
    return row == none ? -1 : std::int64_t(row);
}

}  // namespace cuda
}  // namespace latefold
