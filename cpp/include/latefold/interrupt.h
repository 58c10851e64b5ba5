// Stopping long calls on request (Ctrl-C). A host installs a check (the Python module: is a
// KeyboardInterrupt pending?) and marks the threads that called into the core while it runs;
// parallel_for asks the check between tasks on a marked thread, at most every 50 ms, and stops
// the call by throwing Interrupted (the host's own error already says why). Calls that change an
// object undo what they did, as for any exception.
#pragma once

#include <exception>

namespace latefold {

using InterruptCheck = bool (*)();

/// Installs the host's check (nullptr: none). Process-wide; set once at start-up.
void set_interrupt_check(InterruptCheck check) noexcept;

struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

/// Marks the current thread as one the check applies to, for the scope's lifetime.
class InterruptibleScope {
public:
    InterruptibleScope() noexcept;
    ~InterruptibleScope();
    InterruptibleScope(const InterruptibleScope&) = delete;
    InterruptibleScope& operator=(const InterruptibleScope&) = delete;

private:
    bool was_marked_;
};

/// Unmarks the current thread for the scope's lifetime: work that must finish once begun (a
/// clean-up after a change that has already succeeded).
class UninterruptibleScope {
public:
    UninterruptibleScope() noexcept;
    ~UninterruptibleScope();
    UninterruptibleScope(const UninterruptibleScope&) = delete;
    UninterruptibleScope& operator=(const UninterruptibleScope&) = delete;

private:
    bool was_marked_;
};

/// Throws Interrupted when the current thread is marked and the check says stop.
void check_interrupt();

}  // namespace latefold
