// Error handling shared by the CUDA sources: a failed runtime call becomes a C++ exception
// (std::bad_alloc for out-of-memory, cuda::Unavailable for a missing driver or device,
// std::runtime_error naming the call otherwise).
#pragma once

#include <cuda_runtime.h>

#include <new>
#include <string>

#include "latefold/cuda.h"

namespace latefold {
namespace cuda {

inline void check(cudaError_t error, const char* what) {
    if (error == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so later calls start clean
    if (error == cudaErrorMemoryAllocation) throw std::bad_alloc();
    const std::string message = std::string(what) + ": " + cudaGetErrorString(error);
    if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver || error == cudaErrorInvalidDevice)
        throw Unavailable(message);
    throw std::runtime_error("CUDA " + message);
}

/// Makes `device` current for this thread.
inline void use_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }

/// The launch just queued, then the stream: an error of either is thrown.
inline void finish(const char* kernel) {
    check(cudaGetLastError(), kernel);
    check(cudaStreamSynchronize(0), kernel);
}

}  // namespace cuda
}  // namespace latefold
