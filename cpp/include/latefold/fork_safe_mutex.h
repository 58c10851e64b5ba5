// A shared mutex (calls that read an object share it, calls that change it own it) that stays
// usable in a process forked while other threads held it.
//
// fork() copies only the thread that calls it: a lock that other threads held at that moment is
// never released in the child, and waiting for it would hang. So the mutex counts what threads
// do with it, and the child's first lock looks at what the parent's threads were doing:
//   - nothing, or reading (searches, saves): the object is whole; the child takes a fresh lock;
//   - changing it (add, delete, compact): the object may be half changed; every lock in the
//     child throws ForkedWhileChanged instead.
// Threads of the parent that merely waited for the lock count as readers (they changed nothing).
// The owner of an object forked while changing must not free what it holds either (a block the
// parent's thread had just freed may not yet be replaced by its successor): it asks
// forked_while_changing() when it is destroyed and abandons its memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <stdexcept>

namespace latefold {

struct ForkedWhileChanged : std::runtime_error {
    ForkedWhileChanged()
        : std::runtime_error("this object was being changed by another thread when the process forked: in the "
                             "child it may be half changed and cannot be used (fork while no call changes it)") {}
};

class ForkSafeSharedMutex {
public:
    ForkSafeSharedMutex() noexcept;
    ForkSafeSharedMutex(const ForkSafeSharedMutex&) = delete;
    ForkSafeSharedMutex& operator=(const ForkSafeSharedMutex&) = delete;

    void lock();
    void unlock() noexcept;
    void lock_shared();
    void unlock_shared() noexcept;

    /// Whether this process was forked while a thread of the parent changed the object.
    bool forked_while_changing() noexcept;

private:
    /// In a process forked since the last lock: replaces the lock the parent's threads held.
    void adopt_after_fork();

    std::shared_mutex mutex_;
    std::atomic<std::size_t> users_{0};     // threads between the start of a lock and its unlock
    std::atomic<bool> changing_{false};      // an exclusive holder returned from lock()
    std::atomic<std::uint64_t> generation_;  // the process (forks so far) that last adopted it
    bool broken_ = false;                    // forked while changing: set once, in the child
};

}  // namespace latefold
