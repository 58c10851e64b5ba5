// Fewer token vectors for the same set: document token pooling at indexing time and query token
// merging at search time. Both are optional approximations of MaxSim, off by default.
#pragma once

#include <cstddef>

namespace latefold {

/// Hierarchical token pooling (Clavie et al., "Reducing the Footprint of Multi-Vector Retrieval
/// with Minimal Performance Impact via Token Pooling", 2024): agglomerative clustering of a
/// document's n tokens until `target` clusters remain, each pair merged being the two clusters
/// whose means have the largest cosine similarity (ties: the lowest indices); each cluster is
/// replaced by the mean of its tokens. Writes target x dim floats, clusters in the order of
/// their first token; 1 <= target <= n. Deterministic; O(n^2 dim + n^2) time, O(n^2) memory.
void pool_tokens(const float* rows, std::size_t n, std::size_t dim, std::size_t target, float* out);

/// Query ball carving (MUVERA, Dhulipala et al. 2024): tokens in order, each joining the first
/// ball whose first token has inner product >= tau with it, else starting a ball; a ball is
/// replaced by the sum of its tokens (so that sum over its tokens of max_x <q, x> is approximated
/// by max_x <sum q, x>). Writes the balls (at most n rows) and returns their number.
std::size_t carve_query(const float* rows, std::size_t n, std::size_t dim, float tau, float* out);

}  // namespace latefold
