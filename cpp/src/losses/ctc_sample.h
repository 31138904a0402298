// One sample of a CTC call as the driver (simd/ctc_driver.cpp) hands it to
// an instruction-set level's kernel (losses/ctc.cpp), and the workspace one
// thread needs. No ISA code here: both sides include it.
#pragma once

#include <cstdint>

namespace fastloss {
namespace detail {

struct CtcSample {
  const void* log_probs;  // this sample's [t, c] at log_probs + t * time_stride + c * class_stride
  int64_t time_stride, class_stride;
  int64_t length;    // input length (<= max_time)
  int64_t max_time;  // rows of the gradient to write
  int64_t classes, blank;
  const int64_t* labels;  // target_length labels, checked: in [0, classes), != blank
  int64_t target_length;
  void* grad;  // null: forward only
  int64_t grad_time_stride, grad_class_stride;
  double grad_scale;  // d reduced loss / d this sample's loss, times grad_output
  bool exact, zero_infinity;
};

// Returns the sample's negative log likelihood (inf: no alignment) and
// writes its gradient rows when grad is set. `work`: ctc_work_doubles(...)
// doubles, 64-byte aligned, this thread's alone.
using CtcSampleFn = double (*)(const CtcSample& sample, double* work);

// Layout of one thread's workspace, in doubles, for targets up to
// max_target_length labels: rows of the extended target (L = 2S + 1 positions)
// rounded up to 8 lanes (the widest vector) plus 8 cells of padding, so the
// vector loops never need a scalar tail.
struct CtcLayout {
  int64_t positions;  // L
  int64_t row;        // doubles per row: round_up(L, 8) + 8
  int64_t alpha_rows;
  int64_t alpha, beta, emission, skip, terms, gamma, slot, classes, total;
};

inline CtcLayout ctc_layout(int64_t max_time, int64_t max_target_length, bool want_grad) {
  CtcLayout l;
  l.positions = 2 * max_target_length + 1;
  l.row = (l.positions + 7) / 8 * 8 + 8;
  // The gradient pass reads every alpha row again (backward in time); the
  // forward alone keeps two.
  l.alpha_rows = want_grad ? (max_time > 2 ? max_time : 2) : 2;
  l.alpha = 0;
  l.beta = l.alpha + l.alpha_rows * l.row;
  l.emission = l.beta + 2 * l.row;
  l.skip = l.emission + l.row;
  l.terms = l.skip + l.row;
  l.gamma = l.terms + l.row;                  // one accumulator per distinct class: <= S + 1
  l.slot = l.gamma + (max_target_length + 8) / 8 * 8;  // int32 per position: half a row suffices
  l.classes = l.slot + l.row;                 // int64 per distinct class
  l.total = l.classes + (max_target_length + 8) / 8 * 8;
  return l;
}

}  // namespace detail
}  // namespace fastloss
