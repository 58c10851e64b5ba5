// PQ asymmetric-distance scans on the GPU: each query's lookup table (m x ksub floats, built
// on the host by ProductQuantizer::lookup_tables, rotation included) in shared memory, one
// thread per coded vector summing its table entries in subspace order (the CPU's float ADC
// sums, bit for bit), then the top k selected on the device. 4-bit codes are scanned with the
// float tables too: exact scores, no re-scoring needed.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_check.h"
#include "latefold/cuda.h"
#include "latefold/pq.h"
#include "topk.h"

namespace latefold {
namespace cuda {
namespace {

constexpr unsigned scan_threads = 256;

/// out[q * n + i]: the score of code row i for query q (blockIdx.y), negated for l2 (the
/// selection keeps the highest), -inf where `allowed` (bits) excludes it.
__global__ void adc_kernel(const std::uint8_t* codes, std::size_t n, std::size_t code_size, std::size_t m,
                           int nbits, const float* luts, const std::uint8_t* allowed, bool l2, bool lut_in_smem,
                           float* out) {
    extern __shared__ float shared_lut[];
    const std::size_t ksub = std::size_t(1) << nbits, q = blockIdx.y;
    const float* lut = luts + q * m * ksub;
    if (lut_in_smem) {
        for (std::size_t i = threadIdx.x; i < m * ksub; i += blockDim.x) shared_lut[i] = lut[i];
        __syncthreads();
        lut = shared_lut;
    }
    const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += step) {
        float score;
        if (allowed && !((allowed[i / 8] >> (i % 8)) & 1)) {
            score = -INFINITY;
        } else {
            const std::uint8_t* code = codes + i * code_size;
            float sum = 0.0f;
            for (std::size_t s = 0; s < m; ++s) {
                const unsigned c = nbits == 8 ? code[s] : (code[s / 2] >> (4 * (s % 2))) & 15u;
                sum = __fadd_rn(sum, lut[s * ksub + c]);
            }
            score = l2 ? -sum : sum;
        }
        out[q * n + i] = score;
    }
}

/// The selected pairs into (nq, k) outputs: scores back to distances for l2; excluded rows
/// and places beyond n become id -1, score NaN (as the CPU search pads).
__global__ void finish_kernel(const float* picked_scores, const std::int64_t* picked_ids, std::size_t nq,
                              std::size_t picked, std::size_t k, bool l2, float* scores, std::int64_t* ids) {
    const std::size_t step = std::size_t(gridDim.x) * blockDim.x;
    for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < nq * k; i += step) {
        const std::size_t q = i / k, j = i % k;
        float s = NAN;
        std::int64_t id = -1;
        if (j < picked && picked_scores[q * picked + j] != -INFINITY) {
            s = picked_scores[q * picked + j];
            s = l2 ? -s : s;
            id = picked_ids[q * picked + j];
        }
        scores[i] = s;
        ids[i] = id;
    }
}

}  // namespace

void pq_search(const ProductQuantizer& pq, const std::uint8_t* codes, std::size_t n, const float* queries,
               std::size_t nq, std::size_t k, const std::uint8_t* allowed, float* scores, std::int64_t* ids,
               int device) {
    if (nq == 0 || k == 0) return;
    const DeviceScope scope(device);
    const std::size_t m = pq.m(), ksub = pq.ksub(), table = m * ksub;
    const bool l2 = pq.metric() == Metric::l2;
    std::vector<float> host_luts(nq * table);
    pq.lookup_tables(queries, nq, host_luts.data(), 0);
    const std::size_t smem = table * sizeof(float);
    const bool lut_in_smem = smem <= std::size_t(attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const std::size_t multiprocessors = std::size_t(attribute(cudaDevAttrMultiProcessorCount, device));
    if (lut_in_smem)
        check(cudaFuncSetAttribute(adc_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
              "cudaFuncSetAttribute");
    const std::size_t picked = std::min(k, n);
    // Queries in slices whose score rows take at most ~1 GiB of device memory.
    const std::size_t per_slice = n ? std::max<std::size_t>(1, (std::size_t(1) << 28) / n) : nq;
    Buffer out_scores(nq * k * sizeof(float), device), out_ids(nq * k * sizeof(std::int64_t), device);
    for (std::size_t q0 = 0; q0 < nq; q0 += per_slice) {
        const std::size_t count = std::min(per_slice, nq - q0);
        Buffer luts(count * table * sizeof(float), device);
        copy_to_device(luts.data(), host_luts.data() + q0 * table, luts.size(), device);
        Buffer all(count * n * sizeof(float), device), best_s(count * picked * sizeof(float), device),
            best_i(count * picked * sizeof(std::int64_t), device);
        if (picked) {
            const unsigned blocks_x = unsigned(std::max<std::size_t>(
                1, std::min<std::size_t>((n + scan_threads - 1) / scan_threads, multiprocessors * 8)));
            for (std::size_t y0 = 0; y0 < count; y0 += 65535) {
                const std::size_t rows = std::min<std::size_t>(count - y0, 65535);
                adc_kernel<<<dim3(blocks_x, unsigned(rows)), scan_threads, lut_in_smem ? smem : 0>>>(
                    codes, n, pq.code_size(), m, int(pq.nbits()), static_cast<const float*>(luts.data()) + y0 * table,
                    allowed, l2, lut_in_smem, static_cast<float*>(all.data()) + y0 * n);
                check(cudaGetLastError(), "PQ scan");
            }
            select_topk(static_cast<const float*>(all.data()), count, n, picked, static_cast<float*>(best_s.data()),
                        static_cast<std::int64_t*>(best_i.data()), device);
        }
        finish_kernel<<<unsigned(std::min<std::size_t>((count * k + 255) / 256, 65535)), 256>>>(
            static_cast<const float*>(best_s.data()), static_cast<const std::int64_t*>(best_i.data()), count, picked, k,
            l2, scores + q0 * k, ids + q0 * k);
        finish("PQ search");
    }
}

}  // namespace cuda
}  // namespace latefold
