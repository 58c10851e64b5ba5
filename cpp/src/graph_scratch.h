// Private to the graph's files: the per-thread buffers of searches and construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "latefold/graph.h"

namespace latefold {

// Per-thread buffers, reused across calls (no allocation in the hot loops once warm).
struct GraphIndex::Scratch {
    std::vector<std::uint32_t> visited;  // visited[slot] == epoch: seen in this traversal
    std::uint32_t epoch = 0;
    std::vector<Candidate> candidates;   // ef > 512: min-heap (closest on top)
    std::vector<Candidate> results;      // the allowed nodes kept (ef > 512: a max-heap, farthest on top)
    std::vector<Candidate> pool;         // the sorted frontier (traversals with ef <= 512)
    std::vector<std::uint8_t> flags;     // pool[i]: expanded, eligible
    std::vector<std::uint32_t> batch;    // slots to score
    std::vector<std::uint32_t> hop;      // ACORN: allowed nodes two hops away
    std::vector<float> products;         // their inner products
    std::vector<float> query;            // a stored row as float32
    std::vector<std::uint64_t> allowed;  // the filter's bitset
    std::vector<float> row;              // prune: a candidate's row as float32
    std::vector<float> lut;              // the query's ADC tables (with a quantizer)

    void begin(std::size_t slots) {
        if (visited.size() < slots) visited.assign(slots, 0), epoch = 0;
        if (++epoch == 0) std::fill(visited.begin(), visited.end(), 0), epoch = 1;
    }
    bool visit(std::uint32_t slot) {  // true the first time
        if (visited[slot] == epoch) return false;
        visited[slot] = epoch;
        return true;
    }
};

inline GraphIndex::Scratch& thread_scratch() {
    thread_local GraphIndex::Scratch scratch;
    return scratch;
}

}  // namespace latefold
