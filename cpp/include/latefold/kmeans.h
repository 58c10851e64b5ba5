// k-means (Lloyd's algorithm with k-means++ seeding), the codebook trainer of product
// quantization. Deterministic for a seed and independent of the thread count: random choices
// come from latefold-rng-v1 (random.h) and every sum is taken in a fixed order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace latefold {

struct KMeansOptions {
    std::size_t iterations = 25;
    std::uint64_t seed = 1;
    std::size_t threads = 0;
};

/// k-means++ seeding (Arthur & Vassilvitskii 2007): the first centre uniformly at random, each
/// next one with probability proportional to the squared distance to the nearest centre so far.
/// x: n x d row-major; writes k x d centres. Requires 1 <= k <= n.
void kmeans_plus_plus(const float* x, std::size_t n, std::size_t d, std::size_t k,
                      std::uint64_t seed, float* centroids);

/// Lloyd iterations from the given centres (k x d, updated in place); a centre that loses all
/// its points is re-seeded by splitting the largest cluster. Returns the final objective (sum of
/// squared distances to the nearest centre) and writes each point's centre to `assignment`
/// (may be null).
double kmeans_lloyd(const float* x, std::size_t n, std::size_t d, std::size_t k,
                    const KMeansOptions& options, float* centroids, std::uint32_t* assignment);

/// Nearest centre (L2) of each of n points: assignment[i], and the squared distance.
void assign_nearest(const float* x, std::size_t n, std::size_t stride, std::size_t d,
                    const float* centroids, std::size_t k, std::uint32_t* assignment,
                    float* distance, std::size_t threads);

}  // namespace latefold
