// MUVERA FDE encoding on the GPU, with the CPU encoder's semantics (fde.h) and random matrices:
//  1. partitions: one thread per (token, repetition). A SimHash sign is that of the float64 sum,
//     in coordinate order, of the exact products: the reference value the CPU falls back to
//     whenever its float32 sign is uncertain (and agrees with otherwise), so the partitions are
//     the CPU's bit for bit.
//  2. blocks: a thread block per (item, repetition) adds the item's projected tokens into their
//     partitions in token order (each thread owns output coordinates: no atomics, the same
//     order every run); documents then divide by the partition sizes and fill empty partitions
//     from the nearest token (Hamming distance of sign patterns, ties to the lower token).
//  3. final count sketch: one thread per output slot sums its inputs in input order.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "cuda_check.h"
#include "latefold/cuda.h"
#include "latefold/fde.h"

namespace latefold {
namespace cuda {
namespace {

constexpr unsigned block_threads = 128;

struct Tokens {
    const void* rows;
    const float* scales;
    std::size_t row_stride;
    DType dtype;
};

/// Element k of token row r as the CPU encoder reads it (float32; int8: scale * code).
__device__ float token_value(const Tokens& t, std::size_t r, std::size_t k) {
    const std::size_t i = r * t.row_stride + k;
    switch (t.dtype) {
        case DType::f32: return static_cast<const float*>(t.rows)[i];
        case DType::f16: return __half2float(static_cast<const __half*>(t.rows)[i]);
        case DType::bf16: return __bfloat162float(static_cast<const __nv_bfloat16*>(t.rows)[i]);
        case DType::i8: return __fmul_rn(t.scales[r], float(static_cast<const signed char*>(t.rows)[i]));
    }
    return 0.0f;
}

__global__ void partitions_kernel(Tokens tokens, std::size_t rows, std::size_t dim, std::size_t reps,
                                  std::size_t k, const float* simhash, std::uint32_t* out) {
    const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < rows * reps; i += step) {
        const std::size_t row = i / reps, r = i % reps;
        std::uint32_t index = 0;
        for (std::size_t j = 0; j < k; ++j) {
            const float* g = simhash + (r * k + j) * dim;
            double sum = 0.0;  // products of floats are exact in float64: fused or not, the same sums
            for (std::size_t c = 0; c < dim; ++c) sum += double(token_value(tokens, row, c)) * double(g[c]);
            const std::uint32_t bit = sum > 0.0;
            index = (index << 1) + (bit ^ (index & 1u));  // the bits read as a Gray code
        }
        out[row * reps + r] = index;
    }
}

struct BlockArgs {
    Tokens tokens;
    const std::int64_t* offsets;
    std::size_t first_item, dim, reps, k, parts, d_proj;
    int projection;                // FdeProjection
    const float* dense;            // dense_sign: [r][dim][d_proj]
    const std::uint32_t* ams_start;  // ams_sketch: per (r, slot), its coordinates
    const std::uint32_t* ams_index;
    const float* ams_sign;
    const std::uint32_t* partition;  // [row][r]
    bool documents, fill_empty;
    float* out;                    // item (from first_item) * out_stride + r * parts * d_proj
    std::size_t out_stride;
};

/// Coordinate j of token `row`'s projection in repetition r.
__device__ float projected(const BlockArgs& a, std::size_t row, std::size_t r, std::size_t j) {
    switch (FdeProjection(a.projection)) {
        case FdeProjection::identity: return token_value(a.tokens, row, j);
        case FdeProjection::dense_sign: {
            const float* m = a.dense + r * a.dim * a.d_proj + j;
            float sum = 0.0f;
            for (std::size_t c = 0; c < a.dim; ++c) sum += token_value(a.tokens, row, c) * m[c * a.d_proj];
            return sum;
        }
        case FdeProjection::ams_sketch: {
            const std::size_t slot = r * a.d_proj + j;
            float sum = 0.0f;
            for (std::uint32_t e = a.ams_start[slot]; e < a.ams_start[slot + 1]; ++e)
                sum += a.ams_sign[e] * token_value(a.tokens, row, a.ams_index[e]);
            return sum;
        }
    }
    return 0.0f;
}

__device__ unsigned pattern(std::uint32_t partition) { return partition ^ (partition >> 1); }

__global__ void __launch_bounds__(block_threads) blocks_kernel(BlockArgs a) {
    const std::size_t item = a.first_item + blockIdx.x, r = blockIdx.y;
    const std::int64_t begin = a.offsets[item], end = a.offsets[item + 1];
    const std::size_t width = a.parts * a.d_proj;
    float* block = a.out + blockIdx.x * a.out_stride + r * width;
    for (std::size_t e = threadIdx.x; e < width; e += blockDim.x) block[e] = 0.0f;
    __syncthreads();
    // Sums in token order; thread j owns coordinate j of every partition.
    for (std::size_t j = threadIdx.x; j < a.d_proj; j += blockDim.x)
        for (std::int64_t row = begin; row < end; ++row)
            block[a.partition[row * a.reps + r] * a.d_proj + j] += projected(a, std::size_t(row), r, j);
    if (!a.documents) return;
    __syncthreads();
    // Thread p owns partition p: its size, then its average or its fill.
    for (std::size_t p = threadIdx.x; p < a.parts; p += blockDim.x) {
        std::uint32_t size = 0;
        for (std::int64_t row = begin; row < end; ++row) size += a.partition[row * a.reps + r] == p;
        float* target = block + p * a.d_proj;
        if (size > 1) {
            const float n = float(size);
            for (std::size_t j = 0; j < a.d_proj; ++j) target[j] = __fdiv_rn(target[j], n);
        } else if (size == 0 && a.fill_empty && a.k > 0) {
            int best = INT_MAX;
            std::int64_t nearest = begin;
            for (std::int64_t row = begin; row < end; ++row) {
                const int distance = __popc(pattern(a.partition[row * a.reps + r]) ^ pattern(std::uint32_t(p)));
                if (distance < best) best = distance, nearest = row;
            }
            for (std::size_t j = 0; j < a.d_proj; ++j) target[j] = projected(a, std::size_t(nearest), r, j);
        }
    }
}

/// out[item][s] = sum over the inputs c of slot s, in input order, of sign[c] * block[c].
__global__ void final_kernel(const float* blocks, std::size_t block_dim, const std::uint32_t* start,
                             const std::uint32_t* input, const float* sign, std::size_t slots, float* out) {
    const float* block = blocks + blockIdx.x * block_dim;
    float* target = out + blockIdx.x * slots;
    for (std::size_t s = threadIdx.x; s < slots; s += blockDim.x) {
        float sum = 0.0f;
        for (std::uint32_t e = start[s]; e < start[s + 1]; ++e) sum = __fadd_rn(sum, __fmul_rn(sign[e], block[input[e]]));
        target[s] = sum;
    }
}

template <class T>
Buffer device_copy(const std::vector<T>& v, int device) {
    Buffer b(v.size() * sizeof(T), device);
    copy_to_device(b.data(), v.data(), b.size(), device);
    return b;
}

/// Slot s's entries [start[s], start[s+1]) of (input, sign) pairs in input order.
void by_slot(const std::vector<std::uint32_t>& slot_of, const std::vector<float>& sign_of, std::size_t slots,
             std::vector<std::uint32_t>& start, std::vector<std::uint32_t>& input, std::vector<float>& sign) {
    start.assign(slots + 1, 0);
    for (std::uint32_t s : slot_of) ++start[s + 1];
    for (std::size_t s = 0; s < slots; ++s) start[s + 1] += start[s];
    std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
    input.resize(slot_of.size());
    sign.resize(slot_of.size());
    for (std::size_t c = 0; c < slot_of.size(); ++c) {
        input[fill[slot_of[c]]] = std::uint32_t(c);
        sign[fill[slot_of[c]]++] = sign_of[c];
    }
}

Tokens tokens_of(const DeviceItems& items) {
    return Tokens{items.tokens, items.scales, items.row_stride, items.dtype};
}

Buffer simhash_columns(const FdeEncoder& encoder, int device) {
    const FdeConfig& c = encoder.config();
    std::vector<float> columns(std::max<std::size_t>(1, c.num_repetitions * c.num_simhash_projections * c.dimension));
    for (std::size_t r = 0; r < c.num_repetitions; ++r) {
        const std::vector<float> g = encoder.simhash_matrix(r);  // dimension x k, row-major
        for (std::size_t j = 0; j < c.num_simhash_projections; ++j)
            for (std::size_t i = 0; i < c.dimension; ++i)
                columns[(r * c.num_simhash_projections + j) * c.dimension + i] = g[i * c.num_simhash_projections + j];
    }
    return device_copy(columns, device);
}

void check_encoder_items(const FdeEncoder& encoder, const DeviceItems& items) {
    if (items.count && items.dim != encoder.config().dimension)
        throw std::invalid_argument("items have token dimension " + std::to_string(items.dim) +
                                    ", the encoder expects " + std::to_string(encoder.config().dimension));
}

}  // namespace

void fde_partitions(const FdeEncoder& encoder, const DeviceItems& items, std::uint32_t* out) {
    check_encoder_items(encoder, items);
    const FdeConfig& c = encoder.config();
    if (items.rows == 0) return;
    const DeviceScope scope(items.device);
    const Buffer simhash = simhash_columns(encoder, items.device);
    const std::size_t work = items.rows * c.num_repetitions;
    const unsigned blocks = unsigned(std::min<std::size_t>((work + 255) / 256, 65535));
    partitions_kernel<<<blocks, 256>>>(tokens_of(items), items.rows, c.dimension, c.num_repetitions,
                                       c.num_simhash_projections, static_cast<const float*>(simhash.data()), out);
    finish("FDE partitions");
}

void fde_encode(const FdeEncoder& encoder, const DeviceItems& items, bool documents, float* out) {
    check_encoder_items(encoder, items);
    if (items.count == 0) return;
    const FdeConfig& c = encoder.config();
    const int device = items.device;
    const DeviceScope scope(device);
    Buffer partition(items.rows * c.num_repetitions * sizeof(std::uint32_t), device);
    fde_partitions(encoder, items, static_cast<std::uint32_t*>(partition.data()));

    BlockArgs a{};
    a.tokens = tokens_of(items);
    a.offsets = items.offsets;
    a.dim = c.dimension;
    a.reps = c.num_repetitions;
    a.k = c.num_simhash_projections;
    a.parts = c.partitions();
    a.d_proj = c.projected_dim();
    a.projection = int(c.projection_type);
    a.partition = static_cast<const std::uint32_t*>(partition.data());
    a.documents = documents;
    a.fill_empty = c.fill_empty_partitions;
    Buffer dense, ams_start, ams_index, ams_sign;
    if (c.projection_type != FdeProjection::identity) {
        std::vector<float> m(c.num_repetitions * c.dimension * a.d_proj);
        for (std::size_t r = 0; r < c.num_repetitions; ++r) {
            const std::vector<float> p = encoder.projection_matrix(r);  // dimension x d_proj
            std::copy(p.begin(), p.end(), m.begin() + r * c.dimension * a.d_proj);
        }
        if (c.projection_type == FdeProjection::dense_sign) {
            dense = device_copy(m, device);
            a.dense = static_cast<const float*>(dense.data());
        } else {  // each coordinate has one slot and a sign: listed per slot, coordinates in order
            std::vector<std::uint32_t> slot_of(c.num_repetitions * c.dimension);
            std::vector<float> sign_of(slot_of.size());
            for (std::size_t r = 0; r < c.num_repetitions; ++r)
                for (std::size_t i = 0; i < c.dimension; ++i)
                    for (std::size_t j = 0; j < a.d_proj; ++j)
                        if (const float v = m[(r * c.dimension + i) * a.d_proj + j]; v != 0.0f) {
                            slot_of[r * c.dimension + i] = std::uint32_t(r * a.d_proj + j);
                            sign_of[r * c.dimension + i] = v;
                        }
            std::vector<std::uint32_t> start, index;
            std::vector<float> sign;
            by_slot(slot_of, sign_of, c.num_repetitions * a.d_proj, start, index, sign);
            for (std::uint32_t& i : index) i %= std::uint32_t(c.dimension);  // input r * dim + i -> coordinate i
            ams_start = device_copy(start, device);
            ams_index = device_copy(index, device);
            ams_sign = device_copy(sign, device);
            a.ams_start = static_cast<const std::uint32_t*>(ams_start.data());
            a.ams_index = static_cast<const std::uint32_t*>(ams_index.data());
            a.ams_sign = static_cast<const float*>(ams_sign.data());
        }
    }

    const std::size_t block_dim = c.block_dim(), final_dim = c.final_projection_dimension;
    Buffer final_start, final_input, final_sign, scratch;
    std::size_t chunk = items.count;
    if (final_dim) {  // blocks of a chunk of items in scratch (at most ~256 MiB), then sketched
        std::vector<std::uint32_t> start, input;
        std::vector<float> sign;
        by_slot(encoder.final_slots(), encoder.final_signs(), final_dim, start, input, sign);
        final_start = device_copy(start, device);
        final_input = device_copy(input, device);
        final_sign = device_copy(sign, device);
        chunk = std::max<std::size_t>(1, std::min(items.count, (std::size_t(64) << 20) / block_dim));
        scratch = Buffer(chunk * block_dim * sizeof(float), device);
    }
    for (std::size_t first = 0; first < items.count; first += chunk) {
        const std::size_t n = std::min(chunk, items.count - first);
        a.first_item = first;
        a.out = final_dim ? static_cast<float*>(scratch.data()) : out + first * block_dim;
        a.out_stride = block_dim;
        for (std::size_t i0 = 0; i0 < n; i0 += 65535) {  // grid.x limit kept for older drivers
            BlockArgs part = a;
            part.first_item = first + i0;
            part.out = a.out + i0 * block_dim;
            blocks_kernel<<<dim3(unsigned(std::min<std::size_t>(n - i0, 65535)), unsigned(c.num_repetitions)),
                            block_threads>>>(part);
            check(cudaGetLastError(), "FDE blocks");
        }
        if (final_dim)
            final_kernel<<<unsigned(n), 256>>>(static_cast<const float*>(scratch.data()), block_dim,
                                               static_cast<const std::uint32_t*>(final_start.data()),
                                               static_cast<const std::uint32_t*>(final_input.data()),
                                               static_cast<const float*>(final_sign.data()), final_dim,
                                               out + first * final_dim);
        finish("FDE encoding");
    }
}

}  // namespace cuda
}  // namespace latefold
