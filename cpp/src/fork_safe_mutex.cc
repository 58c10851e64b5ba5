#include "latefold/fork_safe_mutex.h"

#include <mutex>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace latefold {
namespace {

// Forks so far in this process's line: a child starts with one more than its parent had.
std::atomic<std::uint64_t> forks{0};

// Serialises adoptions in a child (a thread of the parent may have held it: the child remakes it).
std::mutex& adoption_mutex() {
    static std::mutex* m = new std::mutex();  // never destroyed: threads may adopt at exit
    return *m;
}

#if defined(__unix__) || defined(__APPLE__)
// Registered when the library loads, so that every fork after finds it.
const int registered = [] {
    adoption_mutex();
    return pthread_atfork(nullptr, nullptr, [] {
        forks.fetch_add(1, std::memory_order_relaxed);
        new (&adoption_mutex()) std::mutex();  // the child has one thread: nothing holds it
    });
}();
#endif

}  // namespace

ForkSafeSharedMutex::ForkSafeSharedMutex() noexcept : generation_(forks.load(std::memory_order_relaxed)) {}

void ForkSafeSharedMutex::adopt_after_fork() {
    const std::uint64_t now = forks.load(std::memory_order_relaxed);
    if (generation_.load(std::memory_order_acquire) == now) return;
    // Every thread of the child passes here before it touches the lock, and waits while one
    // adopts: the counts below are then those the parent's threads left.
    std::lock_guard<std::mutex> guard(adoption_mutex());
    if (generation_.load(std::memory_order_relaxed) == now) return;
    if (users_.load() != 0) {
        broken_ = broken_ || changing_.load();
        // Their holders do not exist here. Constructed over, not destroyed: destroying a held
        // lock is undefined, and a pthread lock owns nothing beyond its bytes.
        new (&mutex_) std::shared_mutex();
        users_.store(0);
        changing_.store(false);
    }
    generation_.store(now, std::memory_order_release);
}

void ForkSafeSharedMutex::lock() {
    adopt_after_fork();
    if (broken_) throw ForkedWhileChanged();
    users_.fetch_add(1);
    try {
        mutex_.lock();
    } catch (...) {
        users_.fetch_sub(1);
        throw;
    }
    changing_.store(true);  // sequentially consistent: before any change the holder makes
}

void ForkSafeSharedMutex::unlock() noexcept {
    changing_.store(false);  // after every change the holder made
    mutex_.unlock();
    users_.fetch_sub(1);
}

void ForkSafeSharedMutex::lock_shared() {
    adopt_after_fork();
    if (broken_) throw ForkedWhileChanged();
    users_.fetch_add(1);
    try {
        mutex_.lock_shared();
    } catch (...) {
        users_.fetch_sub(1);
        throw;
    }
}

void ForkSafeSharedMutex::unlock_shared() noexcept {
    mutex_.unlock_shared();
    users_.fetch_sub(1);
}

bool ForkSafeSharedMutex::forked_while_changing() noexcept {
    try {
        adopt_after_fork();
    } catch (...) {  // the adoption lock failed: assume the worst
        return true;
    }
    return broken_;
}

}  // namespace latefold
