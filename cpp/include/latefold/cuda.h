// Optional CUDA engines (cpp/cuda/). Declared without CUDA types, so every build has the same
// API: a build without a CUDA compiler (cpp/src/cuda_off.cc) reports why in status() and every
// other call throws cuda::Unavailable. The CUDA runtime is linked statically and loads the
// driver only when first used: a module built with CUDA imports on machines with no GPU.
//
// Device data uses the CPU engines' layouts: token rows flat (row r at tokens + r * row_stride
// elements), int64 offsets, int8 scales one float32 per row. Every call is synchronous (results
// are complete when it returns) and runs on the legacy default stream of `device`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "latefold/common.h"
#include "latefold/multivectors.h"

namespace latefold {

class FdeEncoder;
class ProductQuantizer;

namespace cuda {

struct Device {
    int index = 0;
    std::string name;
    int major = 0, minor = 0;  ///< compute capability
    std::size_t memory_bytes = 0;
    int multiprocessors = 0;
};

struct Status {
    bool built = false;   ///< this build has the CUDA engines
    bool usable = false;  ///< built, a driver loads and at least one device is present
    std::string reason;   ///< why not usable (empty when usable)
    int runtime_version = 0, driver_version = 0;  ///< as 1000 * major + 10 * minor
    std::vector<Device> devices;
};

/// What this build and machine offer; never throws.
Status status() noexcept;

/// A CUDA call where the engines are not built or no device is usable.
class Unavailable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Device memory of one device, owned (move-only). Throws std::bad_alloc when the device is out
/// of memory, Unavailable without a usable device.
class Buffer {
public:
    Buffer() = default;
    Buffer(std::size_t bytes, int device);
    ~Buffer();
    Buffer(Buffer&& other) noexcept;
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return bytes_; }
    int device() const noexcept { return device_; }

private:
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    int device_ = 0;
};

void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes, int device);
void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes, int device);
/// `rows` rows of row_bytes, src_stride_bytes apart on the device, packed on the host.
void copy_rows_to_host(void* host_dst, const void* device_src, std::size_t rows, std::size_t row_bytes,
                       std::size_t src_stride_bytes, int device);
/// Waits for the work queued on a stream handle given by another library (0: none).
void synchronize_stream(std::uintptr_t stream, int device);
/// The device whose memory holds `pointer` (std::invalid_argument when it is host memory).
int pointer_device(const void* pointer);

/// Multi-vectors on a device (all pointers device memory; offsets validated by the caller).
struct DeviceItems {
    const void* tokens = nullptr;
    const std::int64_t* offsets = nullptr;
    const float* scales = nullptr;  ///< int8 only
    std::size_t count = 0, rows = 0, dim = 0, row_stride = 0;
    DType dtype = DType::f32;
    int device = 0;
};

/// A host view copied to a device (flat rows, row_stride == dim); owns the copy.
struct UploadedItems {
    Buffer tokens, offsets, scales;
    DeviceItems items;
};
UploadedItems upload(const MultiVectorsView& host, int device);

/// Index of the first token row holding a NaN or an infinity (int8: a scale that is not
/// finite), -1 when all are finite.
std::int64_t first_non_finite_row(const DeviceItems& items);

// MaxSim on the device, with the CPU engines' arithmetic per storage (maxsim.h): float32 and
// float16 documents against float32 queries (float16 on tensor cores with the query split into
// two float16 terms, error ~2^-22 relative), bfloat16 against queries rounded to bfloat16, int8
// against queries quantized per token (the same bits as the CPU). Queries are host views (small;
// copied), outputs device memory. The token score matrix is never written to device memory.

/// out: queries.count x docs.count floats (row-major).
void maxsim_scores(const MultiVectorsView& queries, const DeviceItems& docs, float* out);
/// candidates (device): queries.count x per_query document indices, -1 for padding (scores
/// -inf); validated by the caller. out: the same shape.
void maxsim_rerank(const MultiVectorsView& queries, const DeviceItems& docs, const std::int64_t* candidates,
                   std::size_t per_query, float* out);
/// Top k per query, best first, ties to the lower index; 1 <= k <= docs.count.
void maxsim_topk(const MultiVectorsView& queries, const DeviceItems& docs, std::size_t k, float* scores,
                 std::int64_t* ids);

// FDE encoding on the device (FdeEncoder's semantics and matrices): the partitions are the
// CPU's bit for bit, the values within float32 rounding of its (the same bits with the identity
// projection). Outputs device memory.

/// out: items.rows x num_repetitions partition indices (FdeEncoder::partition_indices).
void fde_partitions(const FdeEncoder& encoder, const DeviceItems& items, std::uint32_t* out);
/// out: items.count x output_dim floats (queries: partition sums; documents: averages, fills).
void fde_encode(const FdeEncoder& encoder, const DeviceItems& items, bool documents, float* out);

/// Top k of n coded vectors (codes: device, n x code_size bytes, row-major) for each of nq host
/// queries by asymmetric distance with float tables (4-bit codes too: exact scores), best first
/// (ip: highest, l2: lowest; ties to the lower row); allowed: null or device bits (bit i of byte
/// i / 8 allows row i). Places with no allowed row left: id -1, score NaN. Outputs device memory.
void pq_search(const ProductQuantizer& pq, const std::uint8_t* codes, std::size_t n, const float* queries,
               std::size_t nq, std::size_t k, const std::uint8_t* allowed, float* scores, std::int64_t* ids,
               int device);

}  // namespace cuda
}  // namespace latefold
