#include "latefold/fault.h"

#include <new>

namespace latefold {
namespace detail {

std::atomic<std::size_t> faults_countdown{0};

void fault_tick() {
    std::size_t left = faults_countdown.load();
    while (left != 0 && !faults_countdown.compare_exchange_weak(left, left - 1)) {
    }
    if (left == 1) throw std::bad_alloc();
}

}  // namespace detail

void fail_after(std::size_t n) noexcept { detail::faults_countdown.store(n); }

}  // namespace latefold
