// The thread pool behind detail::parallel_for (see parallel.h for why it is
// ours and not OpenMP's).
//
// One call at a time owns the pool (call_). The caller publishes a Job (on its
// own stack), bumps generation_ and wakes the workers; everyone, the caller
// included, takes `grain` tasks at a time from job.next until none are left.
// The caller returns once job.done == n and no worker is still looking at the
// job (active_ == 0 after job_ is cleared; both sequentially consistent, so a
// worker that arrives late sees either the live job or none).
//
// Idle workers spin for a short while (a benchmark or training loop calls
// again within microseconds), then sleep on a condition variable.
//
// Fork: the child gets a copy of the pool's memory but none of its threads.
// A pthread_atfork child handler forgets the pool (its memory is leaked on
// purpose: its mutexes may be in any state) and the child's first parallel
// call starts a fresh one, so forked children run multi-threaded and give the
// parent's bits.
#include "simd/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>

namespace fastloss {
namespace detail {
namespace {

constexpr int kHardMaxThreads = 1024;  // whatever the CPU count claims
constexpr auto kSpinTime = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

struct Job {
  TaskFn fn;
  void* context;
  int64_t n;
  int64_t grain;
  int helpers;  // workers (besides the caller) that take part
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
};

void work(Job* job) {
  for (;;) {
    const int64_t begin = job->next.fetch_add(job->grain, std::memory_order_relaxed);
    if (begin >= job->n) return;
    const int64_t end = std::min(begin + job->grain, job->n);
    job->fn(job->context, begin, end);
    // release: this thread's outputs are visible to the caller once it sees done == n.
    job->done.fetch_add(end - begin, std::memory_order_release);
  }
}

// Waits until pred() holds: spins, then yields the CPU (a descheduled worker
// on a busy machine must not be starved by our own spinning).
template <class Pred>
void wait_until(Pred pred) {
  for (int spins = 0; !pred(); ++spins) {
    if (spins < 4096)
      cpu_relax();
    else
      std::this_thread::yield();
  }
}

class Pool {
 public:
  // Runs the job on the pool; false (nothing done) if another call owns it.
  bool try_run(Job* job) {
    std::unique_lock<std::mutex> call(call_, std::try_to_lock);
    if (!call.owns_lock()) return false;
    job->helpers = grow(job->helpers);
    job_.store(job);
    {
      std::lock_guard<std::mutex> lock(m_);
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    work(job);
    wait_until([&] { return job->done.load(std::memory_order_acquire) >= job->n; });
    job_.store(nullptr);
    wait_until([&] { return active_.load() == 0; });
    return true;
  }

 private:
  // Starts workers up to `want`; returns how many there are for this job
  // (fewer if the system refuses threads: the job still runs, on fewer).
  int grow(int want) {
    while (workers_ < want) {
      try {
        // The new worker starts from the current generation, so it takes
        // part in the job about to be published.
        std::thread(&Pool::worker, this, workers_, generation_.load()).detach();
      } catch (const std::system_error&) {
        break;
      }
      ++workers_;
    }
    return std::min(want, workers_);
  }

  void worker(int index, uint64_t seen) {
    for (;;) {
      uint64_t g = generation_.load(std::memory_order_acquire);
      if (g == seen) {
        const auto start = std::chrono::steady_clock::now();
        for (int spins = 0; (g = generation_.load(std::memory_order_acquire)) == seen; ++spins) {
          cpu_relax();
          if ((spins & 255) == 255 && std::chrono::steady_clock::now() - start > kSpinTime) {
            std::unique_lock<std::mutex> lock(m_);
            wake_.wait(lock, [&] { return generation_.load() != seen; });
          }
        }
      }
      seen = g;
      active_.fetch_add(1);
      Job* job = job_.load();
      if (job != nullptr && index < job->helpers) work(job);
      active_.fetch_sub(1);
    }
  }

  std::mutex call_;  // held by the call that owns the pool
  std::mutex m_;     // with wake_: sleeping workers
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<Job*> job_{nullptr};
  std::atomic<int> active_{0};  // workers between reading job_ and leaving it
  int workers_ = 0;             // started (under call_)
};

std::atomic<Pool*> g_pool{nullptr};

void forget_pool_in_child() { g_pool.store(nullptr); }

Pool* pool() {
  static const bool registered = (pthread_atfork(nullptr, nullptr, forget_pool_in_child), true);
  (void)registered;
  Pool* p = g_pool.load(std::memory_order_acquire);
  if (p != nullptr) return p;
  Pool* fresh = new Pool;  // never deleted: detached workers live as long as the process
  if (g_pool.compare_exchange_strong(p, fresh)) return fresh;
  delete fresh;  // another thread installed one first (no worker started yet)
  return p;
}

}  // namespace

void parallel_for(int64_t n, int threads, int64_t grain, TaskFn fn, void* context) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t useful = (n + grain - 1) / grain;
  const int team = static_cast<int>(std::min<int64_t>(threads, useful));
  if (team > 1) {
    Job job;
    job.fn = fn;
    job.context = context;
    job.n = n;
    job.grain = grain;
    job.helpers = team - 1;
    if (pool()->try_run(&job)) return;
  }
  fn(context, 0, n);
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

int max_threads() { return std::min(4 * available_cpus(), kHardMaxThreads); }

}  // namespace detail
}  // namespace fastloss
