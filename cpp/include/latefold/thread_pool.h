// The one internal thread pool.
//
// parallel_for(tasks, threads, fn) runs fn(task, worker) for every task in [0, tasks) on at most
// `threads` threads (the caller is one of them), and returns when all are done. `worker` is in
// [0, threads) and unique among the threads of one call, so callers can keep per-worker scratch.
// The first exception thrown by any task is re-thrown in the caller after the others stopped
// taking new tasks. Calls may come from many threads at once; each waits only for its own tasks.
#pragma once

#include <cstddef>
#include <functional>

namespace latefold {

/// Hardware threads of this machine (at least 1).
std::size_t hardware_threads() noexcept;

/// The most threads one call uses: 4 x the hardware threads. More cannot speed up compute-bound
/// work; the slack leaves room for threads that wait on page faults of memory-mapped files.
/// It also bounds the pool, whose threads live as long as the process.
std::size_t max_threads() noexcept;

/// Resolves a user's thread count: 0 means all hardware threads; never more than `tasks` or
/// max_threads().
std::size_t resolve_threads(std::size_t requested, std::size_t tasks) noexcept;

void parallel_for(std::size_t tasks, std::size_t threads,
                  const std::function<void(std::size_t task, std::size_t worker)>& fn);

}  // namespace latefold
