// Top-k on the device by rounds of block-wise bitonic sorts: each block sorts a chunk of 2,048
// (score, index) pairs and keeps its best k, until one chunk is left (k <= 1,024: every round
// halves the pairs at least). The order is latefold::TopK's: NaN (float32 sums that overflowed)
// after every number, equal scores by index.
#include <algorithm>
#include <climits>
#include <vector>

#include "cuda_check.h"
#include "latefold/topk.h"
#include "topk.h"

namespace latefold {
namespace cuda {
namespace {

constexpr unsigned chunk = 2048;
constexpr unsigned threads = 1024;
constexpr std::size_t max_device_k = chunk / 2;

__device__ bool before(float sa, long long ia, float sb, long long ib) {
    const bool a_nan = isnan(sa), b_nan = isnan(sb);
    if (a_nan != b_nan) return b_nan;
    if (!a_nan && sa != sb) return sa > sb;
    return ia < ib;
}

/// Block (x: chunk, y: row): sorts the chunk's pairs best first and writes the first k.
/// in_ids null: the pair's index is its position in the row.
__global__ void best_of_chunk(const float* in_scores, const long long* in_ids, std::size_t n, std::size_t k,
                              float* out_scores, long long* out_ids) {
    __shared__ float s[chunk];
    __shared__ long long id[chunk];
    const std::size_t row = blockIdx.y, base = std::size_t(blockIdx.x) * chunk;
    const float* row_scores = in_scores + row * n;
    for (unsigned i = threadIdx.x; i < chunk; i += threads) {
        const std::size_t j = base + i;
        const bool valid = j < n;
        s[i] = valid ? row_scores[j] : -INFINITY;
        id[i] = valid ? (in_ids ? in_ids[row * n + j] : (long long)j) : LLONG_MAX;
    }
    __syncthreads();
    for (unsigned size = 2; size <= chunk; size <<= 1) {
        for (unsigned stride = size >> 1; stride > 0; stride >>= 1) {
            for (unsigned t = threadIdx.x; t < chunk / 2; t += threads) {
                const unsigned a = 2 * t - (t & (stride - 1)), b = a + stride;
                const bool descending = (a & size) == 0;
                const bool swap = descending ? before(s[b], id[b], s[a], id[a]) : before(s[a], id[a], s[b], id[b]);
                if (swap) {
                    const float ts = s[a]; s[a] = s[b]; s[b] = ts;
                    const long long ti = id[a]; id[a] = id[b]; id[b] = ti;
                }
            }
            __syncthreads();
        }
    }
    const std::size_t out = (row * gridDim.x + blockIdx.x) * k;
    for (unsigned i = threadIdx.x; i < k; i += threads) {
        out_scores[out + i] = s[i];
        out_ids[out + i] = id[i];
    }
}

}  // namespace

/// k beyond the device's selection: on the host (latefold::TopK).
void select_on_host(const float* scores, std::size_t rows, std::size_t n, std::size_t k, float* scores_out,
                    std::int64_t* ids_out, int device) {
    std::vector<float> host(n), best_s(k);
    std::vector<std::int64_t> best_i(k);
    TopK top(k);
    for (std::size_t r = 0; r < rows; ++r) {
        copy_to_host(host.data(), scores + r * n, n * sizeof(float), device);
        top.reset(k);
        for (std::size_t j = 0; j < n; ++j) top.push({host[j], std::int64_t(j)});
        const std::vector<ScoredId> sorted = top.sorted();
        for (std::size_t i = 0; i < k; ++i) best_s[i] = sorted[i].score, best_i[i] = sorted[i].id;
        copy_to_device(scores_out + r * k, best_s.data(), k * sizeof(float), device);
        copy_to_device(ids_out + r * k, best_i.data(), k * sizeof(std::int64_t), device);
    }
}

void select_topk(const float* scores, std::size_t rows, std::size_t n, std::size_t k, float* scores_out,
                 std::int64_t* ids_out, int device) {
    if (k > max_device_k) return select_on_host(scores, rows, n, k, scores_out, ids_out, device);
    const DeviceScope scope(device);
    const float* in_s = scores;
    const long long* in_i = nullptr;
    Buffer round_s[2], round_i[2];
    int which = 0;
    for (std::size_t left = n;;) {
        const std::size_t chunks = (left + chunk - 1) / chunk;
        for (std::size_t r0 = 0; r0 < rows; r0 += 65535) {  // grid.y limit
            const std::size_t r = std::min<std::size_t>(rows - r0, 65535);
            float* out_s;
            long long* out_i;
            if (chunks == 1) {
                out_s = scores_out + r0 * k;
                out_i = reinterpret_cast<long long*>(ids_out) + r0 * k;
            } else {
                if (r0 == 0) {
                    round_s[which] = Buffer(rows * chunks * k * sizeof(float), device);
                    round_i[which] = Buffer(rows * chunks * k * sizeof(long long), device);
                }
                out_s = static_cast<float*>(round_s[which].data()) + r0 * chunks * k;
                out_i = static_cast<long long*>(round_i[which].data()) + r0 * chunks * k;
            }
            best_of_chunk<<<dim3(unsigned(chunks), unsigned(r)), threads>>>(
                in_s + r0 * left, in_i ? in_i + r0 * left : nullptr, left, k, out_s, out_i);
            check(cudaGetLastError(), "top-k selection");
        }
        if (chunks == 1) break;
        in_s = static_cast<const float*>(round_s[which].data());
        in_i = static_cast<const long long*>(round_i[which].data());
        left = chunks * k;
        which ^= 1;  // the next round writes over the pairs of the round before this one
    }
    finish("top-k selection");
}

}  // namespace cuda
}  // namespace latefold
