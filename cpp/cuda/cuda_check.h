// Error handling shared by the CUDA sources: a failed runtime call becomes a C++ exception
// (std::bad_alloc for out-of-memory, cuda::Unavailable for a missing driver or device,
// std::runtime_error naming the call otherwise).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <new>
#include <string>

#include "latefold/cuda.h"

namespace latefold {
namespace cuda {

/// Set once a kernel fault has lost the process's CUDA context (status() then says so).
inline std::atomic<bool>& context_lost() {
    static std::atomic<bool> lost{false};
    return lost;
}

/// Errors after which the context is unusable until the process ends.
inline bool sticky(cudaError_t error) {
    return error == cudaErrorIllegalAddress || error == cudaErrorLaunchFailure ||
           error == cudaErrorMisalignedAddress || error == cudaErrorIllegalInstruction ||
           error == cudaErrorInvalidPc || error == cudaErrorHardwareStackError || error == cudaErrorAssert;
}

inline void check(cudaError_t error, const char* what) {
    if (error == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so later calls start clean
    if (error == cudaErrorMemoryAllocation) throw std::bad_alloc();
    const std::string message = std::string(what) + ": " + cudaGetErrorString(error);
    if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver || error == cudaErrorInvalidDevice)
        throw Unavailable(message);
    if (sticky(error)) {
        context_lost() = true;
        throw std::runtime_error("CUDA " + message + " (the process's CUDA context is lost: restart the process)");
    }
    throw std::runtime_error("CUDA " + message);
}

/// A device attribute (cheap, unlike cudaGetDeviceProperties).
inline int attribute(cudaDeviceAttr what, int device) {
    int value = 0;
    check(cudaDeviceGetAttribute(&value, what, device), "cudaDeviceGetAttribute");
    return value;
}

/// Makes `device` current for this thread while it lives, then restores the caller's current
/// device (other libraries in the process rely on theirs).
class DeviceScope {
public:
    explicit DeviceScope(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (device != previous_) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceScope() { cudaSetDevice(previous_); }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int previous_ = 0;
};

/// The launch just queued, then the stream: an error of either is thrown.
inline void finish(const char* kernel) {
    check(cudaGetLastError(), kernel);
    check(cudaStreamSynchronize(0), kernel);
}

}  // namespace cuda
}  // namespace latefold
