// The internal thread pool: a queue of jobs, each a range of tasks taken one at a time.
//
// The caller of parallel_for always works on its own job, so a job completes even when no
// helper is free (or, after fork(), when the child has no helpers at all).
#include "latefold/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "latefold/interrupt.h"

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace latefold {
namespace {

// How long a thread polls before it sleeps: for a helper, for the next job (a loop of short
// calls, such as a search per batch of queries, then finds its helpers awake instead of paying
// a wake-up per call, which on small inputs is most of the call); for the caller, for its
// helpers to finish. OpenMP runtimes poll the same way, for much longer by default.
constexpr std::chrono::microseconds poll_time{200};

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Polls `ready` for up to poll_time; true when it became true.
template <class Ready>
bool poll(Ready ready) {
    const auto until = std::chrono::steady_clock::now() + poll_time;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (ready()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() > until) return false;
    }
}

struct Job {
    const std::function<void(std::size_t, std::size_t)>* fn = nullptr;
    std::size_t tasks = 0;
    std::size_t helper_slots = 0;  // helpers that may still join (guarded by the pool's mutex)
    std::size_t next_worker = 1;   // worker index of the next helper (pool's mutex)
    std::atomic<std::size_t> next_task{0};
    std::atomic<bool> failed{false};
    StopFlag stop{&failed, nullptr};  // `outer`: the flag of the call this one runs inside
    std::exception_ptr error;      // first exception (guarded by `mutex`)
    std::atomic<std::size_t> active_helpers{0};  // helpers working now (changed under `mutex`)
    std::mutex mutex;
    std::condition_variable helpers_done;

    void work(std::size_t worker) {
        // Tasks that check between chunks stop once this call or one around it is stopping.
        const StopScope scope(&stop);
        while (!failed.load(std::memory_order_relaxed)) {
            const std::size_t task = next_task.fetch_add(1, std::memory_order_relaxed);
            if (task >= tasks) break;
            try {
                check_interrupt();
                (*fn)(task, worker);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex);
                if (!error) error = std::current_exception();
                failed.store(true, std::memory_order_relaxed);
            }
        }
    }
};

class Pool {
public:
    void run(std::size_t tasks, std::size_t threads,
             const std::function<void(std::size_t, std::size_t)>& fn) {
        auto job = std::make_shared<Job>();
        job->fn = &fn;
        job->tasks = tasks;
        job->helper_slots = threads - 1;
        job->stop.outer = current_stop_flag();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            while (workers_.size() < threads - 1) workers_.emplace_back([this] { serve(); });
            queue_.push_back(job);
            queued_.store(queue_.size(), std::memory_order_release);
        }
        wake_.notify_all();
        job->work(0);
        {
            // No helper may join once the job has left the queue.
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = std::find(queue_.begin(), queue_.end(), job);
            if (it != queue_.end()) queue_.erase(it);
            queued_.store(queue_.size(), std::memory_order_release);
        }
        poll([&] { return job->active_helpers.load(std::memory_order_acquire) == 0; });
        std::unique_lock<std::mutex> lock(job->mutex);
        job->helpers_done.wait(lock, [&] { return job->active_helpers == 0; });
        if (job->error) std::rethrow_exception(job->error);
    }

private:
    void serve() {
        for (;;) {
            std::shared_ptr<Job> job;
            std::size_t worker;
            poll([&] { return queued_.load(std::memory_order_acquire) != 0; });
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return !queue_.empty(); });
                job = queue_.front();
                worker = job->next_worker++;
                if (--job->helper_slots == 0) queue_.pop_front();
                queued_.store(queue_.size(), std::memory_order_release);
                std::lock_guard<std::mutex> job_lock(job->mutex);
                ++job->active_helpers;
            }
            job->work(worker);
            std::lock_guard<std::mutex> job_lock(job->mutex);
            if (--job->active_helpers == 0) job->helpers_done.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::shared_ptr<Job>> queue_;
    std::atomic<std::size_t> queued_{0};  // queue_.size(), readable without the mutex
    std::vector<std::thread> workers_;
};

// The pool lives for the whole process: its threads sleep when idle and end with the process.
// A forked child gets a fresh pool (the parent's threads do not exist there).
Pool*& pool_slot() {
    static Pool* pool = [] {
#if defined(__unix__) || defined(__APPLE__)
        pthread_atfork(nullptr, nullptr, [] { pool_slot() = new Pool(); });
#endif
        return new Pool();
    }();
    return pool;
}

}  // namespace

std::size_t hardware_threads() noexcept {
    // Asked once: the library reads the processor count from the system on every call (a file
    // read per search with threads=1 once the cap below asked for it: graph+PQ searches, which
    // build each query's tables through the pool, ran 24 % slower).
    static const std::size_t n = [] {
        const unsigned count = std::thread::hardware_concurrency();
        return count ? std::size_t(count) : std::size_t(1);
    }();
    return n;
}

std::size_t max_threads() noexcept { return 4 * hardware_threads(); }

std::size_t resolve_threads(std::size_t requested, std::size_t tasks) noexcept {
    const std::size_t wanted = requested ? std::min(requested, max_threads()) : hardware_threads();
    return std::max<std::size_t>(1, std::min(wanted, tasks));
}

void parallel_for(std::size_t tasks, std::size_t threads,
                  const std::function<void(std::size_t, std::size_t)>& fn) {
    if (tasks == 0) return;
    threads = resolve_threads(threads, tasks);
    if (threads == 1) {
        for (std::size_t task = 0; task < tasks; ++task) {
            check_interrupt();
            fn(task, 0);
        }
        return;
    }
    pool_slot()->run(tasks, threads, fn);
}

}  // namespace latefold
