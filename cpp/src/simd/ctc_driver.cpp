// The CTC driver (fastloss/ctc.h): checks a call, splits its samples over
// threads, reduces the per-sample losses.
//
// Threads: the workspace holds one slot per thread (losses/ctc_sample.h's
// layout). The pool runs one task per slot; each task takes samples from a
// shared counter (longest first, so a long sample does not start last) until
// none is left, and computes each alone in its slot. A sample's loss and
// gradient depend only on its own data, and the reduction adds the samples'
// losses in sample order afterwards, so results are bitwise identical for
// any thread count.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "fastloss/ctc.h"
#include "simd/kernel_table.h"
#include "simd/parallel.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp
}

namespace {

constexpr size_t kAlign = 64;

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument("fastloss::ctc_loss: " + what); }

std::string str(int64_t v) { return std::to_string(v); }

// Bytes of the call-wide part (per sample: loss, gradient scale, order, label
// offset) and of
// one thread's slot.
// The workspace's size in double arithmetic (an upper bound of the layout's
// exact size): sizes whose bytes do not fit well inside size_t are refused
// rather than wrapped.
void check_workspace_fits(int64_t max_time, int64_t batch, int64_t max_target_length, int64_t threads) {
  const double S = static_cast<double>(max_target_length), T = static_cast<double>(max_time);
  const double doubles = ((T > 2 ? T : 2) + 6) * (2 * S + 17) + 2 * S + 16;
  const double bytes = 8 * doubles * static_cast<double>(threads) + 32 * static_cast<double>(batch) + 1024;
  if (!(bytes < 4.0e18))
    invalid("max_time/batch/max_target_length: the workspace would need about " + str(static_cast<int64_t>(
        bytes < 9.0e18 ? bytes : 9.0e18)) + " bytes or more, beyond what can be addressed");
}

size_t header_bytes(int64_t batch) { return (static_cast<size_t>(batch) * 32 + kAlign - 1) / kAlign * kAlign; }
size_t slot_bytes(int64_t max_time, int64_t max_target_length, bool want_grad) {
  return static_cast<size_t>(detail::ctc_layout(max_time, max_target_length, want_grad).total) * sizeof(double);
}

struct Context {
  const CtcCall* call;
  detail::CtcSampleFn kernel;
  int elem;  // bytes per element of the dtype
  const int64_t* offsets;
  const int64_t* order;
  double* nll;
  const double* scales;
  char* slots;
  size_t slot_size;
  std::atomic<int64_t> next{0};
};

void run_slot(void* ctx_, int64_t begin, int64_t end) {
  Context& ctx = *static_cast<Context*>(ctx_);
  const CtcCall& c = *ctx.call;
  for (int64_t k = begin; k < end; ++k) {
    double* work = reinterpret_cast<double*>(ctx.slots + static_cast<size_t>(k) * ctx.slot_size);
    for (int64_t i; (i = ctx.next.fetch_add(1, std::memory_order_relaxed)) < c.batch;) {
      const int64_t n = ctx.order[i];
      detail::CtcSample s;
      s.log_probs = static_cast<const char*>(c.log_probs) + n * c.log_probs_strides[1] * ctx.elem;
      s.time_stride = c.log_probs_strides[0];
      s.class_stride = c.log_probs_strides[2];
      s.length = c.input_lengths[n];
      s.max_time = c.max_time;
      s.classes = c.classes;
      s.blank = c.blank;
      s.labels = c.targets + ctx.offsets[n];
      s.target_length = c.target_lengths[n];
      s.grad = c.grad != nullptr ? static_cast<char*>(c.grad) + n * c.grad_strides[1] * ctx.elem : nullptr;
      s.grad_time_stride = c.grad_strides[0];
      s.grad_class_stride = c.grad_strides[2];
      s.grad_scale = ctx.scales[n];
      s.exact = c.exact;
      s.zero_infinity = c.zero_infinity;
      ctx.nll[n] = ctx.kernel(s, work);
    }
  }
}

}  // namespace

size_t ctc_workspace_size(int64_t max_time, int64_t batch, int64_t max_target_length, bool want_grad,
                          int threads) {
  if (max_time < 0) invalid("max_time: negative (" + str(max_time) + ")");
  if (batch < 0) invalid("batch: negative (" + str(batch) + ")");
  if (max_target_length < 0) invalid("max_target_length: negative (" + str(max_target_length) + ")");
  if (threads < 1) threads = 1;
  check_workspace_fits(max_time, batch, max_target_length, threads);
  return kAlign + header_bytes(batch) + static_cast<size_t>(threads) * slot_bytes(max_time, max_target_length, want_grad);
}

double ctc_loss(DType dtype, const CtcCall& c, void* workspace, size_t workspace_bytes) {
  // ---- checks, before any array is touched beyond the lengths and labels
  if (dtype != DType::Float32 && dtype != DType::Float64) invalid("dtype: unknown value " + str(static_cast<int>(dtype)));
  if (c.max_time < 0) invalid("max_time: negative (" + str(c.max_time) + ")");
  if (c.batch < 0) invalid("batch: negative (" + str(c.batch) + ")");
  if (c.classes < 1) invalid("classes: must be >= 1 (got " + str(c.classes) + ")");
  if (c.blank < 0 || c.blank >= c.classes)
    invalid("blank: " + str(c.blank) + " is outside [0, " + str(c.classes) + ")");
  if (c.reduction != Reduction::None && c.reduction != Reduction::Mean && c.reduction != Reduction::Sum)
    invalid("reduction: unknown value " + str(static_cast<int>(c.reduction)));
  const int64_t N = c.batch, T = c.max_time;
  if (N > 0 && (c.input_lengths == nullptr || c.target_lengths == nullptr))
    invalid("input_lengths/target_lengths: null with batch " + str(N));
  if (c.target_count < 0) invalid("target_count: negative (" + str(c.target_count) + ")");
  int64_t total = 0, max_target = 0, work = 0;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t il = c.input_lengths[n], tl = c.target_lengths[n];
    if (il < 0 || il > T)
      invalid("input_lengths[" + str(n) + "]: " + str(il) + " is outside [0, max_time = " + str(T) + "]");
    if (tl < 0) invalid("target_lengths[" + str(n) + "]: negative (" + str(tl) + ")");
    if (c.padded_length >= 0 && tl > c.padded_length)
      invalid("target_lengths[" + str(n) + "]: " + str(tl) + " exceeds the padded length " + str(c.padded_length));
    if (c.padded_length < 0 && tl > c.target_count - total)
      invalid("target_lengths: add up to more than target_count = " + str(c.target_count));
    total += tl;
    max_target = std::max(max_target, tl);
    work += il * (2 * tl + 1);
  }
  if (c.padded_length >= 0) {
    if (N > 0 && c.padded_length > (std::numeric_limits<int64_t>::max)() / N)
      invalid("padded_length: N * padded_length overflows");
    if (c.target_count < N * c.padded_length)
      invalid("target_count: " + str(c.target_count) + " is less than batch * padded_length = " + str(N * c.padded_length));
  } else if (total != c.target_count) {
    invalid("target_lengths: add up to " + str(total) + ", not target_count = " + str(c.target_count));
  }
  if (total > 0 && c.targets == nullptr) invalid("targets: null");
  if (T > 0 && N > 0 && c.log_probs == nullptr) invalid("log_probs: null");  // (T * N * classes can overflow)
  const bool want_grad = c.grad != nullptr;
  // Labels: in range and not blank (torch reads out of bounds on labels >= C).
  {
    int64_t offset = 0;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t base = c.padded_length >= 0 ? n * c.padded_length : offset;
      for (int64_t j = 0; j < c.target_lengths[n]; ++j) {
        const int64_t label = c.targets[base + j];
        if (label < 0 || label >= c.classes || label == c.blank)
          throw std::out_of_range("fastloss::ctc_loss: targets: label " + str(label) + " of sample " + str(n) +
                                  (label == c.blank ? " equals blank" : " is outside [0, " + str(c.classes) + ")"));
      }
      offset += c.target_lengths[n];
    }
  }
  const size_t need = ctc_workspace_size(T, N, max_target, want_grad, 1);
  if (workspace == nullptr || workspace_bytes < need)
    invalid("workspace: " + str(static_cast<int64_t>(workspace_bytes)) + " bytes, the call needs at least " +
            str(static_cast<int64_t>(need)) + " (ctc_workspace_size)");

  // ---- layout: per-sample nll, gradient scale, order and label offset, then the slots
  char* base = static_cast<char*>(workspace);
  base += (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
  const size_t usable = workspace_bytes - static_cast<size_t>(base - static_cast<char*>(workspace));
  double* nll = reinterpret_cast<double*>(base);
  double* scales = nll + N;
  int64_t* order = reinterpret_cast<int64_t*>(scales + N);
  int64_t* offsets = order + N;
  const size_t slot = slot_bytes(T, max_target, want_grad);
  char* slots = base + header_bytes(N);
  const int64_t fit = static_cast<int64_t>((usable - header_bytes(N)) / slot);
  const int64_t threads = std::max<int64_t>(
      1, std::min<int64_t>({fit, N, detail::threads_for(want_grad ? 3 * work : work)}));

  // Longest first (input length x positions), index order among equals.
  for (int64_t n = 0; n < N; ++n) order[n] = n;
  std::sort(order, order + N, [&](int64_t a, int64_t b) {
    const int64_t wa = c.input_lengths[a] * (2 * c.target_lengths[a] + 1);
    const int64_t wb = c.input_lengths[b] * (2 * c.target_lengths[b] + 1);
    return wa != wb ? wa > wb : a < b;
  });
  int64_t offset = 0;
  for (int64_t n = 0; n < N; ++n) {
    offsets[n] = c.padded_length >= 0 ? n * c.padded_length : offset;
    offset += c.target_lengths[n];
    // d reduced loss / d loss_n, times grad_output (Mean: torch's loss_n /
    // max(target length, 1), then the mean over the batch).
    double go = 1.0;
    if (c.grad_output != nullptr) go = c.grad_output[c.reduction == Reduction::None ? n * c.grad_output_stride : 0];
    if (c.reduction == Reduction::Mean)
      go = go / static_cast<double>(std::max<int64_t>(c.target_lengths[n], 1)) / static_cast<double>(N);
    scales[n] = go;
  }

  Context ctx;
  ctx.call = &c;
  ctx.kernel = detail::current_table().ctc[static_cast<int>(dtype)];
  ctx.elem = dtype == DType::Float32 ? 4 : 8;
  ctx.offsets = offsets;
  ctx.order = order;
  ctx.nll = nll;
  ctx.scales = scales;
  ctx.slots = slots;
  ctx.slot_size = slot;
  if (N > 0) detail::parallel_for(threads, static_cast<int>(threads), 1, run_slot, &ctx);

  // ---- per-sample losses, then the reduction in sample order
  double sum = 0;
  for (int64_t n = 0; n < N; ++n) {
    double l = nll[n];
    if (c.zero_infinity && l == std::numeric_limits<double>::infinity()) l = 0;
    if (c.losses != nullptr) {
      char* p = static_cast<char*>(c.losses) + n * c.losses_stride * ctx.elem;
      if (dtype == DType::Float32)
        *reinterpret_cast<float*>(p) = static_cast<float>(l);
      else
        *reinterpret_cast<double*>(p) = l;
    }
    sum += c.reduction == Reduction::Mean ? l / static_cast<double>(std::max<int64_t>(c.target_lengths[n], 1)) : l;
  }
  if (c.reduction == Reduction::Mean) return sum / static_cast<double>(N);  // N = 0: NaN, as torch's mean of nothing
  return sum;
}

}  // namespace fastloss
