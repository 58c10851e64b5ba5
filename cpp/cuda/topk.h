// Top-k selection over rows of device scores (internal to cpp/cuda).
#pragma once

#include <cstddef>
#include <cstdint>

namespace latefold {
namespace cuda {

/// For each of `rows` rows of `n` scores (device, row-major): the k best, higher score first,
/// ties to the lower index (as latefold::TopK), written to scores_out / ids_out (device,
/// rows x k). 1 <= k <= n. Up to k = 1,024 on the device; beyond, the scores are copied to the
/// host and selected there.
void select_topk(const float* scores, std::size_t rows, std::size_t n, std::size_t k, float* scores_out,
                 std::int64_t* ids_out, int device);

}  // namespace cuda
}  // namespace latefold
