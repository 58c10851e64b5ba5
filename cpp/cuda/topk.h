// Top-k selection over rows of device scores (internal to cpp/cuda).
#pragma once

#include <cstddef>
#include <cstdint>

namespace latefold {
namespace cuda {

/// For each of `rows` rows of `n` scores (device, row-major): the k best, higher score first,
/// ties to the lower index (as latefold::TopK), written to scores_out / ids_out (device,
/// rows x k). 1 <= k <= min(n, max_select_k).
void select_topk(const float* scores, std::size_t rows, std::size_t n, std::size_t k, float* scores_out,
                 std::int64_t* ids_out, int device);

constexpr std::size_t max_select_k = 1024;

}  // namespace cuda
}  // namespace latefold
