// The CUDA API of a build without a CUDA compiler (LATEFOLD_CUDA=OFF, or none found): status()
// says so and every other call throws cuda::Unavailable.
#include "latefold/cuda.h"

namespace latefold {
namespace cuda {
namespace {

constexpr const char* not_built =
    "this build of latefold has no CUDA kernels (built with LATEFOLD_CUDA=OFF or without a CUDA compiler)";

[[noreturn]] void unavailable() { throw Unavailable(not_built); }

}  // namespace

Status status() noexcept {
    Status s;
    s.reason = not_built;
    return s;
}

Buffer::Buffer(std::size_t, int) { unavailable(); }
Buffer::~Buffer() = default;
Buffer::Buffer(Buffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_), device_(other.device_) {
    other.data_ = nullptr;
    other.bytes_ = 0;
}
Buffer& Buffer::operator=(Buffer&& other) noexcept {
    data_ = other.data_;
    bytes_ = other.bytes_;
    device_ = other.device_;
    other.data_ = nullptr;
    other.bytes_ = 0;
    return *this;
}

void copy_to_device(void*, const void*, std::size_t, int) { unavailable(); }
void copy_to_host(void*, const void*, std::size_t, int) { unavailable(); }
void copy_rows_to_host(void*, const void*, std::size_t, std::size_t, std::size_t, int) { unavailable(); }
void synchronize_stream(std::uintptr_t, int) { unavailable(); }
int pointer_device(const void*) { unavailable(); }
UploadedItems upload(const MultiVectorsView&, int) { unavailable(); }
std::int64_t first_non_finite_row(const DeviceItems&) { unavailable(); }
void maxsim_scores(const MultiVectorsView&, const DeviceItems&, float*) { unavailable(); }
void maxsim_rerank(const MultiVectorsView&, const DeviceItems&, const std::int64_t*, std::size_t, float*) {
    unavailable();
}
void maxsim_topk(const MultiVectorsView&, const DeviceItems&, std::size_t, float*, std::int64_t*) { unavailable(); }
void fde_partitions(const FdeEncoder&, const DeviceItems&, std::uint32_t*) { unavailable(); }
void fde_encode(const FdeEncoder&, const DeviceItems&, bool, float*) { unavailable(); }
void pq_search(const ProductQuantizer&, const std::uint8_t*, std::size_t, const float*, std::size_t, std::size_t,
               const std::uint8_t*, float*, std::int64_t*, int) {
    unavailable();
}

}  // namespace cuda
}  // namespace latefold
