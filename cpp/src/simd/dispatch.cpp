// Run-time choice of the instruction-set level, the thread setting, layout
// normalisation and the public C++ entry points.
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#if FASTLOSS_X86_LEVELS
#include <cpuid.h>
#endif

#include "fastloss/fastloss.h"
#include "simd/kernel_table.h"
#include "simd/parallel.h"

namespace fastloss {
namespace {

constexpr int64_t kMinParallel = 1 << 15;  // elements; below this a call stays on one thread

struct Level {
  const detail::KernelTable* table;
  bool (*supported)();
};

bool always() { return true; }
#if FASTLOSS_X86_LEVELS
// What each level's flags let the compiler emit (CMakeLists.txt), read from
// cpuid, and whether the OS saves the registers (XCR0).
struct CpuFeatures {
  bool avx2 = false;    // AVX, AVX2, FMA, F16C, with YMM state enabled
  bool avx512 = false;  // avx2 + AVX-512 F/BW/DQ/VL, with ZMM/opmask state enabled
};

CpuFeatures read_cpu() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx) return f;
  unsigned xcr0_lo, xcr0_hi;
  __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  const bool ymm_state = (xcr0_lo & 0x6u) == 0x6u;
  const bool zmm_state = (xcr0_lo & 0xE6u) == 0xE6u;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512dq = b & (1u << 17),
             avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  f.avx2 = ymm_state && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm_state && avx512f && avx512dq && avx512bw && avx512vl;
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures f = read_cpu();
  return f;
}
bool has_avx2() { return cpu().avx2; }
bool has_avx512() { return cpu().avx512; }
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
std::atomic<int> g_threads{detail::available_cpus()};

}  // namespace

namespace detail {
const KernelTable& current_table() { return *g_table.load(); }
int threads_for(int64_t numel) {
  return numel < kMinParallel ? 1 : g_threads.load(std::memory_order_relaxed);
}
}  // namespace detail

void set_num_threads(int n) {
  const int cap = detail::max_threads();
  g_threads.store(n < 1 ? 1 : (n > cap ? cap : n));
}
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

namespace {

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("fastloss::pointwise: " + what);
}

void check_shape(const PointwiseArgs& a) {
  if (a.ndim < 0 || a.ndim > kMaxDims)
    invalid("ndim: " + std::to_string(a.ndim) + " is outside [0, " + std::to_string(kMaxDims) + "]");
  int64_t numel = 1;
  for (int d = 0; d < a.ndim; ++d) {
    if (a.shape[d] < 0) invalid("shape[" + std::to_string(d) + "]: negative (" + std::to_string(a.shape[d]) + ")");
    if (__builtin_mul_overflow(numel, a.shape[d], &numel)) invalid("shape: the element count overflows int64");
  }
}

int64_t numel_of(const PointwiseArgs& a) {
  int64_t numel = 1;
  for (int d = 0; d < a.ndim; ++d) numel *= a.shape[d];
  return numel;
}

void check(Pointwise loss, DType dtype, const PointwiseArgs& a) {
  if (static_cast<unsigned>(loss) > static_cast<unsigned>(Pointwise::Sum))
    invalid("loss: unknown value " + std::to_string(static_cast<int>(loss)));
  if (dtype != DType::Float32 && dtype != DType::Float64)
    invalid("dtype: unknown value " + std::to_string(static_cast<int>(dtype)));
  check_shape(a);
  if (!a.want_value && !a.want_grad) invalid("want_value and want_grad are both false: nothing to compute");
  if (loss == Pointwise::Sum) {
    if (a.want_grad) invalid("want_grad: the Sum kernel has no gradient");
    if (a.weight.data != nullptr || a.grad_output.data != nullptr)
      invalid("weight/grad_output: the Sum kernel takes one array");
  }
  if (loss == Pointwise::SmoothL1 && !(a.param >= 0)) invalid("param: SmoothL1's beta must be >= 0");
  // delta == 0 is accepted: a positive delta can round to 0 in float32, and
  // the loss is then 0 with a 0 gradient, as torch computes it.
  if (loss == Pointwise::Huber && !(a.param >= 0)) invalid("param: Huber's delta must be >= 0");
  if (numel_of(a) == 0) return;  // nothing is read or written: absent pointers are fine
  if (a.input.data == nullptr) invalid("input.data: null");
  if (loss != Pointwise::Sum && a.target.data == nullptr) invalid("target.data: null (the loss takes two inputs)");
  if (a.want_grad && a.grad_out.data == nullptr) invalid("grad_out.data: null while want_grad");
}

}  // namespace

void coalesce(PointwiseArgs& a) {
  check_shape(a);
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
  check(loss, dtype, args);
  PointwiseArgs a = args;
  coalesce(a);
  return g_table.load()->pointwise[static_cast<int>(dtype)](loss, a);
}

}  // namespace fastloss
