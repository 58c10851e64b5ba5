// Fault injection for the tests of exception safety: code that must survive running out of memory
// part-way calls fault_point() where an allocation could fail; after fail_after(n), the n-th such
// call from then on throws std::bad_alloc. Off (n = 0), a fault point is one relaxed atomic load.
#pragma once

#include <atomic>
#include <cstddef>

namespace latefold {

namespace detail {
extern std::atomic<std::size_t> faults_countdown;
void fault_tick();
}  // namespace detail

/// Arms (n > 0) or disarms (n = 0) the injector; process-wide.
void fail_after(std::size_t n) noexcept;

inline void fault_point() {
    if (detail::faults_countdown.load(std::memory_order_relaxed) != 0) detail::fault_tick();
}

}  // namespace latefold
