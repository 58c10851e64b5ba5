// MaxSim on the GPU: one warp scores one (query group, document) pair at a time, reading the
// document's token rows once for every query token of the group; scores of token pairs stay in
// registers and shared memory. Two kernels with the same arguments:
//  - tensor: float16 / bfloat16 / int8 documents on tensor cores (WMMA 16x16x16 tiles; float32
//    or int32 accumulation). The group's query rows sit in shared memory, the warp stages 16
//    document rows at a time in shared memory (zero-filled past the document's end and past dim)
//    and keeps a running maximum per query row.
//  - simt: every storage, any dimension: one dot product per (query row, document row) across
//    the warp's lanes. The twin the tensor kernel is tested against, and the path for float32
//    documents and for groups too large for shared memory.
// Both use the CPU engines' arithmetic per storage (cuda.h); int8 gives the CPU's bits: exact
// int32 products, then sum_t s_t * max_r (s_r * float(dot)) in token order, unfused.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_check.h"
#include "latefold/cuda.h"
#include "latefold/quantize.h"
#include "../src/kernels/float32_rows.h"
#include "topk.h"

namespace latefold {
namespace cuda {
namespace {

namespace wmma = nvcuda::wmma;

constexpr unsigned warps_per_block = 8;
constexpr unsigned full_mask = 0xffffffffu;
constexpr std::size_t max_group_rows = 128;        // query rows a tensor-kernel block holds
constexpr std::size_t query_smem_budget = 64 << 10;  // bytes of them in shared memory

/// Where a kernel reads its documents and writes its scores.
struct Args {
    // Queries, in groups scored together (blockIdx.y strides over groups).
    const void* query_rows;        // simt: flat rows (float32, or int8 codes) ; tensor: per group, planes x [dim/16][group_rows][16]
    const float* query_scales;     // int8: one per query row, laid out like the rows; float16
                                   // (tensor): the power of two undoing the row's scaling
    const int* query_first_row;    // per query: its first row (simt: in query_rows; tensor: in its group)
    const int* query_rows_count;   // per query: its rows
    const int* group_first_query;  // groups + 1 entries
    std::size_t groups, group_rows, padded_dim, dim;
    // Documents.
    const void* tokens;
    const std::int64_t* offsets;
    const float* scales;
    std::size_t row_stride;
    bool vector_loads;  // rows 16-byte aligned and dim * element a multiple of 16
    // Items: documents 0 .. count-1, or list[query * count + j] (rerank; -1 is padding).
    const std::int64_t* list;
    std::size_t count;
    float* out;  // query * count + j
};

// ---------------------------------------------------------------------------------------- simt

template <DType D>
__device__ float element(const void* rows, std::size_t i) {
    if constexpr (D == DType::f32) return static_cast<const float*>(rows)[i];
    if constexpr (D == DType::f16) return __half2float(static_cast<const __half*>(rows)[i]);
    if constexpr (D == DType::bf16) return __bfloat162float(static_cast<const __nv_bfloat16*>(rows)[i]);
    return float(static_cast<const signed char*>(rows)[i]);
}

template <DType D>
__device__ float simt_score(const Args& a, int query, std::int64_t begin, std::int64_t end, unsigned lane) {
    const int first = a.query_first_row[query], rows = a.query_rows_count[query];
    float total = 0.0f;
    for (int t = first; t < first + rows; ++t) {
        float best = -INFINITY;
        for (std::int64_t r = begin; r < end; ++r) {
            const std::size_t x = std::size_t(r) * a.row_stride;
            float value;
            if constexpr (D == DType::i8) {
                const signed char* q = static_cast<const signed char*>(a.query_rows) + std::size_t(t) * a.dim;
                const signed char* d = static_cast<const signed char*>(a.tokens) + x;
                int dot = 0;
                for (std::size_t k = lane; k < a.dim; k += 32) dot += int(q[k]) * int(d[k]);
                for (int s = 16; s > 0; s >>= 1) dot += __shfl_xor_sync(full_mask, dot, s);
                value = __fmul_rn(a.scales[r], __int2float_rn(dot));
            } else {
                const float* q = static_cast<const float*>(a.query_rows) + std::size_t(t) * a.dim;
                float dot = 0.0f;
                for (std::size_t k = lane; k < a.dim; k += 32) dot = fmaf(q[k], element<D>(a.tokens, x + k), dot);
                for (int s = 16; s > 0; s >>= 1) dot += __shfl_xor_sync(full_mask, dot, s);
                value = dot;
            }
            best = value > best ? value : best;
        }
        total = D == DType::i8 ? __fadd_rn(total, __fmul_rn(a.query_scales[t], best)) : __fadd_rn(total, best);
    }
    return total;
}

template <DType D>
__global__ void __launch_bounds__(warps_per_block * 32) simt_kernel(Args a) {
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    for (std::size_t g = blockIdx.y; g < a.groups; g += gridDim.y) {
        const int q0 = a.group_first_query[g], q1 = a.group_first_query[g + 1];
        for (std::size_t j = std::size_t(blockIdx.x) * warps_per_block + warp; j < a.count;
             j += std::size_t(gridDim.x) * warps_per_block) {
            for (int q = q0; q < q1; ++q) {
                const std::int64_t doc = a.list ? a.list[std::size_t(q) * a.count + j] : std::int64_t(j);
                const float score = doc < 0 ? -INFINITY : simt_score<D>(a, q, a.offsets[doc], a.offsets[doc + 1], lane);
                if (lane == 0) a.out[std::size_t(q) * a.count + j] = score;
            }
        }
    }
}

// -------------------------------------------------------------------------------------- tensor

template <DType D> struct Tensor;
template <> struct Tensor<DType::f16> {
    using element = __half;
    using accumulator = float;
    static constexpr int planes = 2;  // the query as a float16 pair: hi + lo
};
template <> struct Tensor<DType::bf16> {
    using element = __nv_bfloat16;
    using accumulator = float;
    static constexpr int planes = 1;
};
template <> struct Tensor<DType::i8> {
    using element = signed char;
    using accumulator = int;
    static constexpr int planes = 1;
};

/// Shared memory of a tensor-kernel block: the group's query planes, then per warp its staged
/// document tile, a 16x16 accumulator scratch and the running maximum of each query row.
template <DType D>
__host__ __device__ std::size_t tensor_smem(std::size_t group_rows, std::size_t padded_dim) {
    const std::size_t e = sizeof(typename Tensor<D>::element);
    return Tensor<D>::planes * group_rows * padded_dim * e +
           warps_per_block * (16 * padded_dim * e + 16 * 16 * 4 + group_rows * 4);
}

/// Stages document rows [row, row + valid) into the k-blocked tile [dim/16][16 rows][16].
template <DType D>
__device__ void stage_tile(const Args& a, std::int64_t row, int valid, typename Tensor<D>::element* tile,
                           unsigned lane) {
    using E = typename Tensor<D>::element;
    const E* src = static_cast<const E*>(a.tokens);
    if (a.vector_loads) {
        constexpr int per_chunk = 16 / sizeof(E);  // elements in 16 bytes
        const int chunks = int(a.padded_dim / per_chunk), data_chunks = int(a.dim / per_chunk);
        for (int i = lane; i < 16 * chunks; i += 32) {
            const int t = i / chunks, c = i % chunks;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (t < valid && c < data_chunks)
                v = *reinterpret_cast<const uint4*>(src + std::size_t(row + t) * a.row_stride + std::size_t(c) * per_chunk);
            const int k = c * per_chunk;
            *reinterpret_cast<uint4*>(tile + ((k / 16) * 16 + t) * 16 + k % 16) = v;
        }
    } else {
        const int width = int(a.padded_dim);
        for (int i = lane; i < 16 * width; i += 32) {
            const int t = i / width, k = i % width;
            E v{};
            if (t < valid && k < int(a.dim)) v = src[std::size_t(row + t) * a.row_stride + k];
            tile[((k / 16) * 16 + t) * 16 + k % 16] = v;
        }
    }
}

/// MB: the most 16-row query blocks a group holds (accumulators in registers: 2 for one typical
/// query keeps the kernel small, 8 for batches).
template <DType D, int MB>
__global__ void __launch_bounds__(warps_per_block * 32) tensor_kernel(Args a) {
    using T = Tensor<D>;
    using E = typename T::element;
    using Acc = typename T::accumulator;
    extern __shared__ __align__(128) unsigned char smem[];
    const std::size_t plane = a.group_rows * a.padded_dim;
    E* query = reinterpret_cast<E*>(smem);
    E* tiles = query + T::planes * plane;
    Acc* scratch = reinterpret_cast<Acc*>(tiles + warps_per_block * 16 * a.padded_dim);
    float* maxima = reinterpret_cast<float*>(scratch + warps_per_block * 256);
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    E* tile = tiles + warp * 16 * a.padded_dim;
    Acc* acc_out = scratch + warp * 256;
    float* best = maxima + warp * a.group_rows;
    const int k_blocks = int(a.padded_dim / 16), m_blocks = int(a.group_rows / 16);

    for (std::size_t g = blockIdx.y; g < a.groups; g += gridDim.y) {
        __syncthreads();  // the previous group's rows are no longer read
        const uint4* from = reinterpret_cast<const uint4*>(static_cast<const E*>(a.query_rows) + g * T::planes * plane);
        uint4* to = reinterpret_cast<uint4*>(query);
        for (std::size_t i = threadIdx.x; i < T::planes * plane * sizeof(E) / 16; i += blockDim.x) to[i] = from[i];
        __syncthreads();
        const int q0 = a.group_first_query[g], q1 = a.group_first_query[g + 1];
        const float* q_scales = a.query_scales ? a.query_scales + g * a.group_rows : nullptr;

        for (std::size_t j = std::size_t(blockIdx.x) * warps_per_block + warp; j < a.count;
             j += std::size_t(gridDim.x) * warps_per_block) {
            __syncwarp();  // every lane is done with the previous document's maxima
            // Rerank: a group is one query, its own candidate list.
            const std::int64_t doc = a.list ? a.list[std::size_t(q0) * a.count + j] : std::int64_t(j);
            if (doc < 0) {
                if (lane == 0) a.out[std::size_t(q0) * a.count + j] = -INFINITY;
                continue;
            }
            for (std::size_t r = lane; r < a.group_rows; r += 32) best[r] = -INFINITY;
            const std::int64_t end = a.offsets[doc + 1];
            for (std::int64_t row = a.offsets[doc]; row < end; row += 16) {
                const int valid = end - row < 16 ? int(end - row) : 16;
                __syncwarp();
                stage_tile<D>(a, row, valid, tile, lane);
                __syncwarp();
                // Every query block's accumulator in registers, each document fragment loaded once.
                wmma::fragment<wmma::accumulator, 16, 16, 16, Acc> acc[MB];
#pragma unroll
                for (int m = 0; m < MB; ++m)
                    if (m < m_blocks) wmma::fill_fragment(acc[m], Acc(0));
                for (int kb = 0; kb < k_blocks; ++kb) {
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, E, wmma::col_major> b;
                    wmma::load_matrix_sync(b, tile + kb * 256, 16);
#pragma unroll
                    for (int m = 0; m < MB; ++m) {
                        if (m >= m_blocks) break;
                        for (int p = 0; p < T::planes; ++p) {
                            wmma::fragment<wmma::matrix_a, 16, 16, 16, E, wmma::row_major> q;
                            wmma::load_matrix_sync(q, query + p * plane + (std::size_t(kb) * a.group_rows + m * 16) * 16, 16);
                            wmma::mma_sync(acc[m], q, b, acc[m]);
                        }
                    }
                }
#pragma unroll
                for (int m = 0; m < MB; ++m) {
                    if (m >= m_blocks) break;
                    wmma::store_matrix_sync(acc_out, acc[m], 16, wmma::mem_row_major);
                    __syncwarp();
                    // Lanes l and l + 16: row l, columns 0-7 and 8-15.
                    const int t = lane % 16, c0 = (lane / 16) * 8;
                    float m_best = -INFINITY;
                    for (int c = c0; c < c0 + 8 && c < valid; ++c) {
                        float v;
                        if constexpr (D == DType::i8) v = __fmul_rn(a.scales[row + c], __int2float_rn(acc_out[t * 16 + c]));
                        else v = acc_out[t * 16 + c];
                        m_best = v > m_best ? v : m_best;
                    }
                    const float other = __shfl_xor_sync(full_mask, m_best, 16);
                    m_best = other > m_best ? other : m_best;
                    if (lane < 16 && m_best > best[m * 16 + t]) best[m * 16 + t] = m_best;
                    __syncwarp();
                }
            }
            __syncwarp();
            for (int q = q0 + int(lane); q < q1; q += 32) {
                const int first = a.query_first_row[q], rows = a.query_rows_count[q];
                float total = 0.0f;
                for (int t = first; t < first + rows; ++t)
                    total = __fadd_rn(total, q_scales ? __fmul_rn(q_scales[t], best[t]) : best[t]);
                a.out[std::size_t(q) * a.count + j] = total;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------- host

/// Query rows as a kernel reads them: quantized per storage, grouped, copied to the device.
struct PackedQueries {
    Buffer rows, scales, first_row, rows_count, group_first;
    std::size_t groups = 0, group_rows = 0, padded_dim = 0;
};

bool use_tensor_kernel(const MultiVectorsView& queries, DType docs, std::size_t dim, bool one_per_group,
                       int device, std::size_t* group_rows) {
    if (docs == DType::f32) return false;
    if (const char* forced = std::getenv("LATEFOLD_CUDA_KERNEL"); forced && std::strcmp(forced, "simt") == 0)
        return false;
    if (attribute(cudaDevAttrComputeCapabilityMajor, device) < 8) return false;
    const std::size_t padded_dim = (dim + 15) / 16 * 16;
    const std::size_t bytes_per_row = (docs == DType::f16 ? 4 : docs == DType::bf16 ? 2 : 1) * padded_dim;
    std::size_t longest = 0, total = 0;
    for (std::size_t q = 0; q < queries.count; ++q) {
        longest = std::max(longest, queries.item_length(q));
        total += queries.item_length(q);
    }
    // Rerank: a group per query, as many rows as the longest. Else groups of up to
    // max_group_rows rows (the accumulators a warp holds) within the shared-memory budget.
    const std::size_t needed = (longest + 15) / 16 * 16;
    if (needed > max_group_rows) return false;
    std::size_t rows = one_per_group ? needed : std::max(needed, std::min((total + 15) / 16 * 16, max_group_rows));
    while (rows > needed && rows * bytes_per_row > query_smem_budget) rows -= 16;
    const std::size_t smem = docs == DType::f16    ? tensor_smem<DType::f16>(rows, padded_dim)
                             : docs == DType::bf16 ? tensor_smem<DType::bf16>(rows, padded_dim)
                                                   : tensor_smem<DType::i8>(rows, padded_dim);
    if (smem > std::size_t(attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device))) return false;
    *group_rows = rows;
    return true;
}

/// Groups of consecutive queries; one query per group for rerank (each has its own list).
PackedQueries pack_queries(const MultiVectorsView& queries, DType docs, bool tensor, std::size_t group_rows,
                           bool one_per_group, int device) {
    PackedQueries p;
    const std::size_t dim = queries.dim, n = queries.count;
    std::vector<int> first_row(n), rows_count(n), group_first{0};
    // simt: a query per group (more blocks); its first row counts from the view's first row.
    std::size_t used = 0;
    for (std::size_t q = 0; q < n; ++q) {
        const std::size_t m = queries.item_length(q);
        if (q > 0 && (one_per_group || !tensor || used + m > group_rows)) {
            group_first.push_back(int(q));
            used = 0;
        }
        first_row[q] = int(tensor ? used : std::size_t(queries.offsets[q] - queries.offsets[0]));
        rows_count[q] = int(m);
        used += m;
    }
    group_first.push_back(int(n));
    p.groups = group_first.size() - 1;
    p.group_rows = group_rows;
    p.padded_dim = tensor ? (dim + 15) / 16 * 16 : dim;

    // Every query's rows as float32, converted as the CPU engines convert them.
    AlignedVector<float> scratch;
    const ItemRows query_rows = float_items(queries, 0, n, scratch, kernels::active_kernels(), true);
    auto query_row = [&](std::size_t q, std::size_t t) { return query_rows.item(q) + t * query_rows.stride; };
    const bool int8 = docs == DType::i8;
    std::vector<float> scales;  // int8: per row; float16 (tensor): the power of two undoing the row's scaling
    if (!tensor) {  // flat rows: float32 values (bfloat16-rounded for bfloat16 documents) or int8 codes
        const std::size_t total = std::size_t(queries.offsets[n] - queries.offsets[0]);
        std::vector<float> values(total * dim);
        for (std::size_t q = 0; q < n; ++q)
            for (std::size_t t = 0; t < queries.item_length(q); ++t)
                for (std::size_t k = 0; k < dim; ++k) {
                    float v = query_row(q, t)[k];
                    if (docs == DType::bf16) v = bfloat16_to_float(float_to_bfloat16(v));
                    values[(std::size_t(first_row[q]) + t) * dim + k] = v;
                }
        if (int8) {
            std::vector<std::int8_t> codes(values.size());
            scales.resize(total);
            for (std::size_t r = 0; r < total; ++r) scales[r] = quantize_int8_row(&values[r * dim], dim, &codes[r * dim]);
            p.rows = Buffer(codes.size(), device);
            copy_to_device(p.rows.data(), codes.data(), codes.size(), device);
        } else {
            p.rows = Buffer(values.size() * sizeof(float), device);
            copy_to_device(p.rows.data(), values.data(), p.rows.size(), device);
        }
    } else {  // per group: planes x [padded_dim / 16][group_rows][16], zero padded
        const std::size_t plane = group_rows * p.padded_dim, planes = docs == DType::f16 ? 2 : 1;
        const std::size_t e = int8 ? 1 : 2;
        std::vector<unsigned char> image(p.groups * planes * plane * e, 0);
        scales.assign(p.groups * group_rows, 0.0f);
        std::vector<float> row(dim);
        std::vector<std::int8_t> codes(dim);
        for (std::size_t g = 0; g < p.groups; ++g)
            for (int q = group_first[g]; q < group_first[g + 1]; ++q)
                for (int t = 0; t < rows_count[q]; ++t) {
                    const std::size_t r = std::size_t(first_row[q] + t);
                    std::copy(query_row(q, t), query_row(q, t) + dim, row.begin());
                    if (int8) scales[g * group_rows + r] = quantize_int8_row(row.data(), dim, codes.data());
                    if (docs == DType::f16) {  // the row scaled by a power of two to a largest |x| in [2^14, 2^15)
                        float largest = 0.0f;
                        for (std::size_t k = 0; k < dim; ++k) largest = std::max(largest, std::fabs(row[k]));
                        int exponent = 0;
                        std::frexp(largest, &exponent);
                        const int shift = largest > 0.0f ? std::min(15 - exponent, 125) : 0;  // 2^-shift stays normal
                        for (std::size_t k = 0; k < dim; ++k) row[k] = std::ldexp(row[k], shift);
                        scales[g * group_rows + r] = std::ldexp(1.0f, -shift);
                    }
                    for (std::size_t k = 0; k < dim; ++k) {
                        const std::size_t at = ((k / 16) * group_rows + r) * 16 + k % 16;
                        unsigned char* base = image.data() + g * planes * plane * e;
                        if (int8) {
                            std::memcpy(base + at, &codes[k], 1);
                        } else if (docs == DType::bf16) {
                            const std::uint16_t bits = float_to_bfloat16(row[k]);
                            std::memcpy(base + at * 2, &bits, 2);
                        } else {  // float16 pair: hi = round(x), lo = round(x - hi); x - hi is exact
                            const __half hi = __float2half_rn(row[k]);
                            const __half lo = __float2half_rn(row[k] - __half2float(hi));
                            std::memcpy(base + at * 2, &hi, 2);
                            std::memcpy(base + (plane + at) * 2, &lo, 2);
                        }
                    }
                }
        p.rows = Buffer(image.size(), device);
        copy_to_device(p.rows.data(), image.data(), image.size(), device);
    }
    if (int8 || (tensor && docs == DType::f16)) {
        p.scales = Buffer(scales.size() * sizeof(float), device);
        copy_to_device(p.scales.data(), scales.data(), p.scales.size(), device);
    }
    auto put = [&](Buffer& b, const std::vector<int>& v) {
        b = Buffer(v.size() * sizeof(int), device);
        copy_to_device(b.data(), v.data(), b.size(), device);
    };
    put(p.first_row, first_row);
    put(p.rows_count, rows_count);
    put(p.group_first, group_first);
    return p;
}

template <DType D>
void launch(const Args& a, bool tensor, int device) {
    const std::size_t per_block = warps_per_block;
    const std::size_t wanted = std::size_t(attribute(cudaDevAttrMultiProcessorCount, device)) * 8;
    const std::size_t x = std::max<std::size_t>(
        1, std::min((a.count + per_block - 1) / per_block, (wanted + a.groups - 1) / a.groups));
    const dim3 grid(unsigned(x), unsigned(std::min<std::size_t>(a.groups, 65535)));
    if constexpr (D != DType::f32) {
        if (tensor) {
            const std::size_t smem = tensor_smem<D>(a.group_rows, a.padded_dim);
            const auto kernel = a.group_rows <= 32 ? tensor_kernel<D, 2> : tensor_kernel<D, max_group_rows / 16>;
            check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                  "cudaFuncSetAttribute");
            kernel<<<grid, warps_per_block * 32, smem>>>(a);
            finish("MaxSim (tensor cores)");
            return;
        }
    }
    simt_kernel<D><<<grid, warps_per_block * 32>>>(a);
    finish("MaxSim");
}

/// Scores of every query against `count` items (documents, or each query's list).
void run(const MultiVectorsView& queries, const DeviceItems& docs, const std::int64_t* list, std::size_t count,
         float* out) {
    if (queries.count == 0 || count == 0) return;
    if (queries.dim != docs.dim) throw std::invalid_argument("queries and docs differ in dimension");
    const DeviceScope scope(docs.device);
    std::size_t group_rows = 0;
    const bool tensor = use_tensor_kernel(queries, docs.dtype, docs.dim, list != nullptr, docs.device, &group_rows);
    const PackedQueries p = pack_queries(queries, docs.dtype, tensor, group_rows, list != nullptr, docs.device);
    Args a{};
    a.query_rows = p.rows.data();
    a.query_scales = static_cast<const float*>(p.scales.data());
    a.query_first_row = static_cast<const int*>(p.first_row.data());
    a.query_rows_count = static_cast<const int*>(p.rows_count.data());
    a.group_first_query = static_cast<const int*>(p.group_first.data());
    a.groups = p.groups;
    a.group_rows = p.group_rows;
    a.padded_dim = p.padded_dim;
    a.dim = docs.dim;
    a.tokens = docs.tokens;
    a.offsets = docs.offsets;
    a.scales = docs.scales;
    a.row_stride = docs.row_stride;
    const std::size_t e = dtype_size(docs.dtype);
    a.vector_loads = reinterpret_cast<std::uintptr_t>(docs.tokens) % 16 == 0 && (docs.row_stride * e) % 16 == 0 &&
                     (docs.dim * e) % 16 == 0;
    a.list = list;
    a.count = count;
    a.out = out;
    switch (docs.dtype) {
        case DType::f32: return launch<DType::f32>(a, tensor, docs.device);
        case DType::f16: return launch<DType::f16>(a, tensor, docs.device);
        case DType::bf16: return launch<DType::bf16>(a, tensor, docs.device);
        case DType::i8: return launch<DType::i8>(a, tensor, docs.device);
    }
}

}  // namespace

void maxsim_scores(const MultiVectorsView& queries, const DeviceItems& docs, float* out) {
    run(queries, docs, nullptr, docs.count, out);
}

void maxsim_rerank(const MultiVectorsView& queries, const DeviceItems& docs, const std::int64_t* candidates,
                   std::size_t per_query, float* out) {
    run(queries, docs, candidates, per_query, out);
}

void maxsim_topk(const MultiVectorsView& queries, const DeviceItems& docs, std::size_t k, float* scores,
                 std::int64_t* ids) {
    if (k < 1 || k > docs.count) throw std::invalid_argument("k must be in [1, number of documents]");
    // Queries in slices whose score rows take at most ~1 GiB of device memory.
    const std::size_t per_slice = std::max<std::size_t>(1, (std::size_t(1) << 28) / docs.count);
    for (std::size_t q0 = 0; q0 < queries.count; q0 += per_slice) {
        MultiVectorsView slice = queries;
        slice.count = std::min(per_slice, queries.count - q0);
        slice.offsets = queries.offsets + q0;
        if (queries.item_rows) slice.item_rows = queries.item_rows + q0;
        // A flat view keeps its rows: offsets are absolute, item_data reads tokens + offsets[i].
        Buffer all(slice.count * docs.count * sizeof(float), docs.device);
        run(slice, docs, nullptr, docs.count, static_cast<float*>(all.data()));
        select_topk(static_cast<const float*>(all.data()), slice.count, docs.count, k, scores + q0 * k, ids + q0 * k,
                    docs.device);
    }
}

}  // namespace cuda
}  // namespace latefold
