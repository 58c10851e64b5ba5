#include "latefold/interrupt.h"

#include <atomic>
#include <chrono>

namespace latefold {

namespace {

std::atomic<InterruptCheck> installed{nullptr};
thread_local bool marked = false;
thread_local std::chrono::steady_clock::time_point last_check{};
thread_local const StopFlag* stop_flag = nullptr;

}  // namespace

const StopFlag* current_stop_flag() noexcept { return stop_flag; }

StopScope::StopScope(const StopFlag* flag) noexcept : previous_(stop_flag) { stop_flag = flag; }
StopScope::~StopScope() { stop_flag = previous_; }

void set_interrupt_check(InterruptCheck check) noexcept { installed.store(check); }

InterruptibleScope::InterruptibleScope(bool interruptible) noexcept : was_marked_(marked) { marked = interruptible; }
InterruptibleScope::~InterruptibleScope() { marked = was_marked_; }

void check_interrupt() {
    for (const StopFlag* f = stop_flag; f; f = f->outer)
        if (f->stopping->load(std::memory_order_relaxed)) throw Interrupted();
    if (!marked) return;
    const InterruptCheck check = installed.load(std::memory_order_relaxed);
    if (!check) return;
    // A check takes the interpreter's lock: often enough for a prompt stop, rarely enough to cost nothing.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_check < std::chrono::milliseconds(50)) return;
    last_check = now;
    if (check()) throw Interrupted();
}

}  // namespace latefold
