// The kernels' threads: a small pool of our own instead of OpenMP.
//
// Why not OpenMP: GNU libgomp is not fork-safe. After a parallel region in a
// parent process, a child forked from it (multiprocessing's default start
// method on Linux, Dask process workers, DataLoader workers) hangs forever in
// its first parallel region, because the child inherits the pool's bookkeeping
// but not its threads. Running the child single-threaded would avoid the hang
// only until someone raised the thread count there. LLVM's libomp handles fork
// but would have to be shipped inside the wheel. The work the kernels split is
// one shape only (a loop over fixed blocks whose partial results are combined
// by the caller in block order), so a pool of ~150 lines does it: it is
// rebuilt lazily in a forked child (pthread_atfork), caps its size, and needs
// no runtime library or -fopenmp from C++ embedders.
//
// Determinism does not depend on the pool: tasks write disjoint outputs and
// the callers combine them in a fixed order.
#pragma once

#include <cstdint>

namespace fastloss {
namespace detail {

// fn(context, begin, end) processes tasks [begin, end).
using TaskFn = void (*)(void* context, int64_t begin, int64_t end);

// Runs tasks [0, n) on up to `threads` threads, the calling thread included,
// handing out `grain` tasks at a time (dynamic scheduling: a descheduled
// thread does not hold the others up). Returns when every task is done. If the
// pool is busy with another caller's call (calls from several threads at once),
// this call runs on the calling thread alone: same results, no waiting.
void parallel_for(int64_t n, int threads, int64_t grain, TaskFn fn, void* context);

// CPUs this process may run on (sched_getaffinity), at least 1.
int available_cpus();

// The largest thread count the kernels use: 4 x available_cpus(). Larger
// settings are capped to it (more threads than that only add switching).
int max_threads();

}  // namespace detail
}  // namespace fastloss
