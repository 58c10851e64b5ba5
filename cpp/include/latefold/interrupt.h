// Stopping long calls on request (Ctrl-C). A host installs a check (the Python module: is a
// KeyboardInterrupt pending?) and marks the threads that called into the core while it runs;
// parallel_for asks the check between tasks on a marked thread, at most every 50 ms, and stops
// the call by throwing Interrupted (the host's own error already says why). Calls that change an
// object undo what they did, as for any exception.
//
// The pool's helper threads are not marked: they stop through the call they work for. Each
// parallel_for has a StopFlag, set once one of its tasks failed (the caller's being interrupted
// included), and check_interrupt() on a thread working for it throws once it or the flag of any
// call around it (nested parallel_for) is set. Long tasks call check_interrupt() between chunks
// of bounded work, so that a stop takes effect within a chunk, not a whole task.
#pragma once

#include <atomic>
#include <exception>

namespace latefold {

using InterruptCheck = bool (*)();

/// Installs the host's check (nullptr: none). Process-wide; set once at start-up.
void set_interrupt_check(InterruptCheck check) noexcept;

struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

/// Marks the current thread as one the check applies to, for the scope's lifetime; with
/// `interruptible` false, unmarks it instead: work that must finish once begun (a clean-up after
/// a change that has already succeeded).
class InterruptibleScope {
public:
    explicit InterruptibleScope(bool interruptible = true) noexcept;
    ~InterruptibleScope();
    InterruptibleScope(const InterruptibleScope&) = delete;
    InterruptibleScope& operator=(const InterruptibleScope&) = delete;

private:
    bool was_marked_;
};

/// The stop flag of one parallel_for (thread_pool.cc) and of the call it runs inside, if any.
struct StopFlag {
    const std::atomic<bool>* stopping = nullptr;
    const StopFlag* outer = nullptr;
};

/// The flag of the parallel_for the current thread works for (nullptr: none).
const StopFlag* current_stop_flag() noexcept;

/// Makes `flag` the current thread's for the scope's lifetime.
class StopScope {
public:
    explicit StopScope(const StopFlag* flag) noexcept;
    ~StopScope();
    StopScope(const StopScope&) = delete;
    StopScope& operator=(const StopScope&) = delete;

private:
    const StopFlag* previous_;
};

/// Throws Interrupted when a call the current thread works for is stopping, or when the thread
/// is marked and the check says stop.
void check_interrupt();

}  // namespace latefold
