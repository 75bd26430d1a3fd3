#include "threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "error.h"
#include "tinyemo.h"

namespace te {

namespace {

thread_local bool tl_inside_task = false;

int usable_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

int default_threads() {
  if (const char* env = std::getenv("TINYEMO_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  return usable_cores();
}

class Pool {
 public:
  explicit Pool(int threads) : size_(threads), offered_(static_cast<size_t>(threads)) {
    for (int id = 1; id < size_; ++id) workers_.emplace_back([this, id] { loop(id); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return size_; }

  void run(int64_t tasks, int max_workers, const std::function<void(int64_t, int)>& fn) {
    const int64_t want = std::min<int64_t>({static_cast<int64_t>(max_workers), size_, tasks});
    if (want <= 1 || tl_inside_task) {
      run_inline(tasks, fn);
      return;
    }
    std::lock_guard<std::mutex> turn(run_mu_);
    fn_ = &fn;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    finished_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    for (int64_t id = 1; id < want; ++id) offered_[id].store(true, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lk(mu_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    // A worker still asleep when the tasks ran out is not waited for: its offer is taken back (on a VM a halted
    // vCPU took ~0.3 ms to wake, ten times a one-row product's whole time). Only those that took theirs are awaited.
    int joined = 0;
    for (int64_t id = 1; id < want; ++id) joined += !offered_[id].exchange(false, std::memory_order_acq_rel);
    const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
    while (finished_.load(std::memory_order_acquire) != joined) {
      if (std::chrono::steady_clock::now() < spin_until) {
        spin_pause();
      } else {
        std::unique_lock<std::mutex> lk(mu_);
        done_.wait(lk, [&] { return finished_.load(std::memory_order_acquire) == joined; });
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  static void run_inline(int64_t tasks, const std::function<void(int64_t, int)>& fn) {
    const bool was = tl_inside_task;
    tl_inside_task = true;
    try {
      for (int64_t t = 0; t < tasks; ++t) fn(t, 0);
    } catch (...) {
      tl_inside_task = was;
      throw;
    }
    tl_inside_task = was;
  }

  void work(int id) {
    tl_inside_task = true;
    for (;;) {
      const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= tasks_) break;
      try {
        (*fn_)(t, id);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mu_);
        if (!error_) error_ = std::current_exception();
        next_.store(tasks_, std::memory_order_relaxed);  // stop handing out tasks
      }
    }
    tl_inside_task = false;
  }

  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      // Spin briefly before sleeping: back-to-back kernel calls (a forward
      // pass) then cost no futex wake-up.
      uint64_t gen = generation_.load(std::memory_order_acquire);
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      while (gen == seen && std::chrono::steady_clock::now() < spin_until) {
        for (int i = 0; i < 16 && gen == seen; ++i) {
          spin_pause();
          gen = generation_.load(std::memory_order_acquire);
        }
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lk(mu_);
        wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      if (stop_) return;
      // The offer is taken by this worker or by the caller, never both: one that lost it reads nothing of the job.
      if (!offered_[id].exchange(false, std::memory_order_acq_rel)) continue;
      work(id);
      finished_.fetch_add(1, std::memory_order_acq_rel);
      std::lock_guard<std::mutex> lk(mu_);
      done_.notify_all();
    }
  }

  const int size_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one job at a time
  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  // The current job.
  const std::function<void(int64_t, int)>* fn_ = nullptr;
  int64_t tasks_ = 0;
  // Per worker: a share of the current job offered to it and not yet taken.
  std::vector<std::atomic<bool>> offered_;
  std::atomic<int64_t> next_{0};
  std::atomic<int> finished_{0};
  std::mutex error_mu_;
  std::exception_ptr error_;
};

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<Pool>(default_threads());
  return g_pool;
}

}  // namespace

int pool_threads() { return pool()->size(); }

void set_pool_threads(int n) {
  auto fresh = std::make_shared<Pool>(n);
  std::shared_ptr<Pool> old;
  {
    std::lock_guard<std::mutex> lk(g_pool_mu);
    old = g_pool;
    g_pool = fresh;
  }
  // The old pool is destroyed when its last running call lets go of it.
}

void parallel_for(int64_t tasks, int max_workers, const std::function<void(int64_t, int)>& fn) {
  if (tasks <= 0) return;
  std::shared_ptr<Pool> p = pool();
  p->run(tasks, max_workers < 1 ? 1 : max_workers, fn);
}

}  // namespace te
