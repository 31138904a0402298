// fastloss C++ API: the CTC loss (connectionist temporal classification,
// torch.nn.functional.ctc_loss's semantics, torch 2.13), forward and
// backward, with a caller-owned workspace (as warp-ctc's
// get_workspace_size/compute_ctc_loss): an embedder asks for the size once,
// allocates it once and reuses it; a call allocates nothing.
//
//   CtcCall call;  ... fill it ...
//   std::vector<unsigned char> ws(fastloss::ctc_workspace_size(T, N, S, true, fastloss::get_num_threads()));
//   double loss = fastloss::ctc_loss(fastloss::DType::Float32, call, ws.data(), ws.size());
//
// Math (per sample n; alpha and beta accumulated in float64 whatever the
// dtype, float32 inputs computing each step's increment in float32): the extended target
// l' = (blank, l1, blank, l2, ..., lS, blank) of length 2S + 1, the log-space
// forward variables alpha_t(s) and backward variables beta_t(s) (both include
// the emission at t), nll = -log sum_s alpha_{T-1}(s) over the last two
// positions. The gradient w.r.t. log_probs[t, n, c] is torch's
//   exp(log_probs) - gamma,  gamma = sum_{s: l'(s) = c} exp(alpha + beta + nll - log_probs)
// (the true derivative only when log_probs is a log_softmax output, pytorch
// #52241), or with `exact` the true derivative -gamma; times t >=
// input_lengths[n] get 0. An impossible alignment gives nll = inf and a NaN
// gradient (as torch), or 0 and a zero gradient with zero_infinity.
//
// Results are bitwise identical for any thread count and instruction-set
// level: each sample is computed by one thread in a fixed order, and the
// reduction adds the samples in sample order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastloss/fastloss.h"

namespace fastloss {

struct CtcCall {
  int64_t max_time = 0;  // T: log_probs' first dimension
  int64_t batch = 0;     // N
  int64_t classes = 0;   // C
  // log_probs[t, n, c] at log_probs + t * strides[0] + n * strides[1] + c * strides[2]
  // (elements, any sign), of the call's dtype.
  const void* log_probs = nullptr;
  int64_t log_probs_strides[3] = {};
  // Labels: padded (padded_length = S >= 0: sample n's labels start at n * S)
  // or concatenated (padded_length < 0: sample n's labels follow sample
  // n - 1's; the lengths must add up to target_count).
  const int64_t* targets = nullptr;
  int64_t target_count = 0;  // elements readable at `targets`
  int64_t padded_length = -1;
  const int64_t* input_lengths = nullptr;   // N values in [0, T]
  const int64_t* target_lengths = nullptr;  // N values in [0, S] (padded)
  int64_t blank = 0;                        // in [0, C); no label may equal it
  Reduction reduction = Reduction::Mean;    // Mean: each loss / max(target length, 1), then the batch mean
  bool zero_infinity = false;               // inf losses (and their gradients) become 0
  // Optional: per-sample losses (after zero_infinity, before the reduction's
  // division), the call's dtype, at losses + n * losses_stride.
  void* losses = nullptr;
  int64_t losses_stride = 1;
  // The gradient of sum(grad_output * loss) w.r.t. log_probs, the call's
  // dtype, every element of the (T, N, C) array written (null: no gradient).
  void* grad = nullptr;
  int64_t grad_strides[3] = {};
  bool exact = false;  // -gamma instead of torch's exp(log_probs) - gamma
  // grad_output: null means 1; else one value (Mean/Sum) or N values at
  // grad_output + n * grad_output_stride (None).
  const double* grad_output = nullptr;
  int64_t grad_output_stride = 0;
};

// Bytes of workspace a call with these sizes needs to run on up to `threads`
// threads (max_target_length: the largest target length, or S). A larger
// workspace is fine; a smaller one that still holds one thread's share runs
// on fewer threads.
size_t ctc_workspace_size(int64_t max_time, int64_t batch, int64_t max_target_length, bool want_grad,
                          int threads);

// Runs the CTC loss: writes `losses` and `grad` when present and returns the
// reduced loss (Reduction::None: the sum of the per-sample losses). Checks
// every argument before touching memory it points to and throws
// std::invalid_argument (sizes, lengths, blank, a workspace too small) or
// std::out_of_range (a label outside [0, C) or equal to blank), naming the
// field; it cannot check buffer sizes beyond those given here.
double ctc_loss(DType dtype, const CtcCall& call, void* workspace, size_t workspace_bytes);

}  // namespace fastloss
