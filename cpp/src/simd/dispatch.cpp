// Run-time choice of the instruction-set level, the thread setting, layout
// normalisation and the public C++ entry points.
#include <omp.h>

#include <atomic>
#include <cstring>
#include <string>

#include "fastloss/fastloss.h"
#include "simd/kernel_table.h"

namespace fastloss {
namespace {

constexpr int64_t kMinParallel = 1 << 15;  // elements; below this a call stays on one thread

struct Level {
  const detail::KernelTable* table;
  bool (*supported)();
};

bool always() { return true; }
#if FASTLOSS_X86_LEVELS
// __builtin_cpu_supports also checks that the OS saves the wider registers.
bool has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
bool has_avx512() {
  __builtin_cpu_init();
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

// Lowest first.
const Level kLevels[] = {
    {&baseline::kKernels, always},
#if FASTLOSS_X86_LEVELS
    {&avx2::kKernels, has_avx2},
    {&avx512::kKernels, has_avx512},
#endif
};
constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);

const detail::KernelTable* best_table() {
  const detail::KernelTable* best = kLevels[0].table;
  for (const Level& level : kLevels)
    if (level.supported()) best = level.table;
  return best;
}

std::atomic<const detail::KernelTable*> g_table{best_table()};
std::atomic<int> g_threads{omp_get_num_procs() > 0 ? omp_get_num_procs() : 1};

}  // namespace

namespace detail {
int threads_for(int64_t numel) {
  return numel < kMinParallel ? 1 : g_threads.load(std::memory_order_relaxed);
}
}  // namespace detail

void set_num_threads(int n) { g_threads.store(n < 1 ? 1 : n); }
int get_num_threads() { return g_threads.load(); }

const char* current_isa() { return g_table.load()->name; }

const char* available_isas() {
  static const std::string names = [] {
    std::string s;
    for (const Level& level : kLevels) {
      if (!level.supported()) continue;
      if (!s.empty()) s += ",";
      s += level.table->name;
    }
    return s;
  }();
  return names.c_str();
}

bool select_isa(const char* name) {
  for (const Level& level : kLevels) {
    if (std::strcmp(level.table->name, name) == 0 && level.supported()) {
      g_table.store(level.table);
      return true;
    }
  }
  return false;
}

void coalesce(PointwiseArgs& a) {
  StridedArray* arrays[] = {&a.input, &a.target, &a.weight, &a.grad_output, &a.loss_out, &a.grad_out};
  // Drop size-1 dimensions (their strides never matter); keep size-0 ones.
  int nd = 0;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] == 1) continue;
    a.shape[nd] = a.shape[d];
    for (StridedArray* arr : arrays) arr->strides[nd] = arr->strides[d];
    ++nd;
  }
  // Merge d into d-1 when every present operand steps over both as one run.
  int out = 0;
  for (int d = 0; d < nd; ++d) {
    bool merge = out > 0;
    for (StridedArray* arr : arrays) {
      if (merge && arr->data != nullptr &&
          arr->strides[out - 1] != arr->strides[d] * a.shape[d])
        merge = false;
    }
    if (merge) {
      a.shape[out - 1] *= a.shape[d];
      for (StridedArray* arr : arrays) arr->strides[out - 1] = arr->strides[d];
    } else {
      a.shape[out] = a.shape[d];
      for (StridedArray* arr : arrays) arr->strides[out] = arr->strides[d];
      ++out;
    }
  }
  if (out == 0) {  // a scalar
    a.shape[0] = 1;
    for (StridedArray* arr : arrays) arr->strides[0] = 0;
    out = 1;
  }
  for (int d = out; d < kMaxDims; ++d) {
    a.shape[d] = 0;
    for (StridedArray* arr : arrays) arr->strides[d] = 0;
  }
  a.ndim = out;
}

double pointwise(Pointwise loss, DType dtype, const PointwiseArgs& args) {
  PointwiseArgs a = args;
  coalesce(a);
  return g_table.load()->pointwise[static_cast<int>(dtype)](loss, a);
}

}  // namespace fastloss
