// The process's one thread pool. Kernels split work into tasks and call
// parallel_for; the calling thread works too. Calls from several threads
// (libuv workers running async ops) take turns; a call made from inside a
// task runs inline, so kernels may nest without deadlock or oversubscription.
#pragma once

#include <cstdint>
#include <functional>

namespace te {

// Threads a kernel may plan for (worker ids are 0..n-1).
int pool_threads();
// Replaces the pool (waits for running work). n >= 1.
void set_pool_threads(int n);

// Runs fn(task, worker) for every task in [0, tasks) on at most max_workers
// threads. Tasks are handed out dynamically; a kernel must make its result
// independent of which worker ran which task (deterministic output).
void parallel_for(int64_t tasks, int max_workers, const std::function<void(int64_t task, int worker)>& fn);

inline void parallel_for(int64_t tasks, const std::function<void(int64_t task, int worker)>& fn) {
  parallel_for(tasks, pool_threads(), fn);
}

}  // namespace te
