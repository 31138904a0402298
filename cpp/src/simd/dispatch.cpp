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
  const detail::KernelTable& (*table)();
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
    {&baseline::kernels, always},
#if FASTLOSS_X86_LEVELS
    {&avx2::kernels, has_avx2},
    {&avx512::kernels, has_avx512},
#endif
};
constexpr int kNumLevels = sizeof(kLevels) / sizeof(kLevels[0]);

const detail::KernelTable* best_table() {
  const detail::KernelTable* best = &kLevels[0].table();
  for (const Level& level : kLevels)
    if (level.supported()) best = &level.table();
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
      s += level.table().name;
    }
    return s;
  }();
  return names.c_str();
}

bool select_isa(const char* name) {
  for (const Level& level : kLevels) {
    if (std::strcmp(level.table().name, name) == 0 && level.supported()) {
      g_table.store(&level.table());
      return true;
    }
  }
  return false;
}

namespace {

[[noreturn]] void invalid(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string("fastloss::") + function + ": " + what);
}

void check_shape(const char* function, int ndim, const int64_t* shape) {
  if (ndim < 0 || ndim > kMaxDims)
    invalid(function, "ndim: " + std::to_string(ndim) + " is outside [0, " + std::to_string(kMaxDims) + "]");
  int64_t numel = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0)
      invalid(function, "shape[" + std::to_string(d) + "]: negative (" + std::to_string(shape[d]) + ")");
    if (__builtin_mul_overflow(numel, shape[d], &numel)) invalid(function, "shape: the element count overflows int64");
  }
}

int64_t numel_of(int ndim, const int64_t* shape) {
  int64_t numel = 1;
  for (int d = 0; d < ndim; ++d) numel *= shape[d];
  return numel;
}

// Options the kernels cannot take (those the Python layer also refuses,
// checked here for C++ callers).
void check_options(Loss loss, const double* o) {
  const char* f = "elementwise";
  switch (loss) {
    case Loss::SmoothL1:
      if (!(o[0] >= 0)) invalid(f, "options[0]: smooth_l1_loss's beta must be >= 0");
      break;
    // delta == 0 is accepted: a positive delta can round to 0 in float32, and
    // the loss is then 0 with a 0 gradient, as torch computes it.
    case Loss::Huber:
      if (!(o[0] >= 0)) invalid(f, "options[0]: huber_loss's delta must be >= 0");
      break;
    default:
      break;
  }
}

void check(Loss loss, DType dtype, const ElementwiseCall& c) {
  const char* f = "elementwise";
  if (static_cast<unsigned>(loss) >= static_cast<unsigned>(kNumLosses))
    invalid(f, "loss: unknown value " + std::to_string(static_cast<int>(loss)));
  if (dtype != DType::Float32 && dtype != DType::Float64)
    invalid(f, "dtype: unknown value " + std::to_string(static_cast<int>(dtype)));
  check_shape(f, c.ndim, c.shape);
  const LossInfo& info = loss_info(loss);
  if (!c.want_value && !(c.want_grad && info.grads > 0))
    invalid(f, "nothing to compute (want_value is false and the loss has no gradient to want)");
  for (int k = info.inputs; k < kMaxInputs; ++k)
    if (c.inputs[k].data != nullptr) invalid(f, "inputs[" + std::to_string(k) + "]: " + info.name + " reads only " + std::to_string(info.inputs));
  for (int k = info.grads; k < kMaxGrads; ++k)
    if (c.grads[k].data != nullptr) invalid(f, "grads[" + std::to_string(k) + "]: " + info.name + " has " + std::to_string(info.grads) + " gradients");
  check_options(loss, c.options);
  if (numel_of(c.ndim, c.shape) == 0) return;  // nothing is read or written: absent pointers are fine
  for (int k = 0; k < info.inputs; ++k)
    if (c.inputs[k].data == nullptr) invalid(f, "inputs[" + std::to_string(k) + "].data: null (" + info.name + " reads " + std::to_string(info.inputs) + " arrays)");
  if (c.want_grad && info.grads > 0) {
    bool any = false;
    for (int k = 0; k < info.grads; ++k) any = any || c.grads[k].data != nullptr;
    if (!any) invalid(f, "grads: want_grad but no gradient array is present");
  }
}

// The StridedArrays of a call, in a fixed order.
constexpr int kCallArrays = kMaxInputs + 3 + kMaxGrads;
void arrays_of(ElementwiseCall& c, StridedArray** out) {
  int n = 0;
  for (StridedArray& a : c.inputs) out[n++] = &a;
  out[n++] = &c.weight;
  out[n++] = &c.grad_output;
  out[n++] = &c.loss_out;
  for (StridedArray& a : c.grads) out[n++] = &a;
}

// Drops size-1 dimensions and merges adjacent dimensions that every present
// array steps over as one run.
void coalesce_arrays(int& ndim, int64_t* shape, StridedArray** arrays, int count) {
  int nd = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    shape[nd] = shape[d];
    for (int k = 0; k < count; ++k) arrays[k]->strides[nd] = arrays[k]->strides[d];
    ++nd;
  }
  int out = 0;
  for (int d = 0; d < nd; ++d) {
    bool merge = out > 0;
    for (int k = 0; k < count && merge; ++k) {
      int64_t run;  // an overflowing product is no run (and no undefined behaviour)
      if (arrays[k]->data != nullptr && (__builtin_mul_overflow(arrays[k]->strides[d], shape[d], &run) ||
                                         arrays[k]->strides[out - 1] != run))
        merge = false;
    }
    if (merge) {
      shape[out - 1] *= shape[d];
      for (int k = 0; k < count; ++k) arrays[k]->strides[out - 1] = arrays[k]->strides[d];
    } else {
      shape[out] = shape[d];
      for (int k = 0; k < count; ++k) arrays[k]->strides[out] = arrays[k]->strides[d];
      ++out;
    }
  }
  if (out == 0) {  // a scalar
    shape[0] = 1;
    for (int k = 0; k < count; ++k) arrays[k]->strides[0] = 0;
    out = 1;
  }
  for (int d = out; d < kMaxDims; ++d) {
    shape[d] = 0;
    for (int k = 0; k < count; ++k) arrays[k]->strides[d] = 0;
  }
  ndim = out;
}

// The Pointwise ids of the first entry point, as losses.h ids.
Loss loss_of(Pointwise p) {
  switch (p) {
    case Pointwise::L1: return Loss::L1;
    case Pointwise::Mse: return Loss::Mse;
    case Pointwise::SmoothL1: return Loss::SmoothL1;
    case Pointwise::Huber: return Loss::Huber;
    case Pointwise::Sum: return Loss::Sum;
  }
  return static_cast<Loss>(-1);
}

}  // namespace

void coalesce(ElementwiseCall& c) {
  check_shape("coalesce", c.ndim, c.shape);
  StridedArray* arrays[kCallArrays];
  arrays_of(c, arrays);
  coalesce_arrays(c.ndim, c.shape, arrays, kCallArrays);
}

void coalesce(PointwiseArgs& a) {
  check_shape("coalesce", a.ndim, a.shape);
  StridedArray* arrays[] = {&a.input, &a.target, &a.weight, &a.grad_output, &a.loss_out, &a.grad_out};
  coalesce_arrays(a.ndim, a.shape, arrays, 6);
}

Totals elementwise(Loss loss, DType dtype, const ElementwiseCall& call) {
  check(loss, dtype, call);
  ElementwiseCall c = call;
  coalesce(c);
  return g_table.load()->elementwise[static_cast<int>(loss)][static_cast<int>(dtype)](c);
}

namespace detail {

// rowwise()'s checks (also row_loss()'s first step); false when the call has
// no rows, so nothing is read.
bool check_rowwise(RowLoss loss, DType dtype, const RowwiseCall& c) {
  const char* f = "rowwise";
  if (static_cast<unsigned>(loss) >= static_cast<unsigned>(kNumRowLosses))
    invalid(f, "loss: unknown value " + std::to_string(static_cast<int>(loss)));
  if (dtype != DType::Float32 && dtype != DType::Float64)
    invalid(f, "dtype: unknown value " + std::to_string(static_cast<int>(dtype)));
  const RowLossInfo& info = row_loss_info(loss);
  if (c.outer < 0 || c.classes < 0 || c.inner < 0) invalid(f, "outer, classes, inner: negative");
  int64_t rows = 0, numel = 0;
  if (__builtin_mul_overflow(c.outer, c.inner, &rows) || __builtin_mul_overflow(rows, c.classes, &numel))
    invalid(f, "outer * classes * inner overflows int64");
  if (static_cast<unsigned>(c.reduction) > 2u) invalid(f, "reduction: unknown value");
  if (static_cast<unsigned>(c.target_type) > static_cast<unsigned>(ElementType::UInt64))
    invalid(f, "target_type: unknown value");
  if (!c.want_value && !c.want_grad) invalid(f, "nothing to compute (want_value and want_grad are false)");
  for (int k = info.inputs; k < kMaxRowInputs; ++k)
    if (c.inputs[k].data != nullptr || c.grads[k].data != nullptr)
      invalid(f, "inputs/grads[" + std::to_string(k) + "]: " + info.name + " reads only " + std::to_string(info.inputs));
  const bool float_target = c.target_type == ElementType::Float;
  switch (info.target) {
    case RowTarget::Index:
    case RowTarget::IndexRows:
      if (float_target) invalid(f, std::string("target_type: ") + info.name + " takes integer class indices");
      break;
    case RowTarget::Float:
      if (!float_target) invalid(f, std::string("target_type: ") + info.name + " takes a float target");
      break;
    default:
      break;
  }
  if (rows == 0) return false;
  for (int k = 0; k < info.inputs; ++k) {
    if (c.inputs[k].data == nullptr && c.classes > 0) invalid(f, "inputs[" + std::to_string(k) + "].data: null");
    if (c.want_grad && c.grads[k].data == nullptr && c.classes > 0)
      invalid(f, "grads[" + std::to_string(k) + "].data: null while want_grad");
  }
  if (info.target != RowTarget::None && c.target.data == nullptr) invalid(f, "target.data: null");
  if (c.reduction == Reduction::None && c.want_value && c.loss_out.data == nullptr)
    invalid(f, "loss_out.data: null with reduction None");
  return true;
}

}  // namespace detail

RowTotals rowwise(RowLoss loss, DType dtype, const RowwiseCall& c) {
  if (!detail::check_rowwise(loss, dtype, c)) return RowTotals{0, static_cast<double>(0), 0, 0};
  return g_table.load()->rowwise[static_cast<int>(loss)][static_cast<int>(dtype)](c);
}

double pointwise(Pointwise loss, DType dtype, const PointwiseArgs& a) {
  const char* f = "pointwise";
  const Loss id = loss_of(loss);
  if (static_cast<int>(id) < 0) invalid(f, "loss: unknown value " + std::to_string(static_cast<int>(loss)));
  check_shape(f, a.ndim, a.shape);
  const bool empty = numel_of(a.ndim, a.shape) == 0;
  if (!a.want_value && !a.want_grad) invalid(f, "want_value and want_grad are both false: nothing to compute");
  if (loss == Pointwise::Sum) {
    if (a.want_grad) invalid(f, "want_grad: the Sum kernel has no gradient");
    if (a.grad_output.data != nullptr || a.weight.data != nullptr)
      invalid(f, "weight/grad_output: the Sum kernel takes one array (target is ignored)");
  } else if (a.target.data == nullptr && !empty) {
    invalid(f, "target.data: null (the loss takes two inputs)");
  }
  if (a.want_grad && a.grad_out.data == nullptr && !empty) invalid(f, "grad_out.data: null while want_grad");
  ElementwiseCall c;
  c.ndim = a.ndim;
  for (int d = 0; d < kMaxDims; ++d) c.shape[d] = a.shape[d];
  c.inputs[0] = a.input;
  if (loss != Pointwise::Sum) c.inputs[1] = a.target;
  c.weight = a.weight;
  c.grad_output = a.grad_output;
  c.loss_out = a.loss_out;
  c.grads[0] = a.grad_out;
  c.want_value = a.want_value;
  c.want_grad = a.want_grad;
  c.grad_scale = a.grad_scale;
  c.options[0] = a.param;
  return elementwise(id, dtype, c).loss;  // 0 unless the loss was summed
}

}  // namespace fastloss
