// Per-ISA entry for the pointwise (regression) losses: turns a coalesced
// PointwiseArgs into a driver mode and runs the matching instantiation.
#include "losses/regression.h"

#include "simd/kernel_table.h"
#include "simd/pointwise_driver.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {
namespace {

template <class Loss>
constexpr bool valid_mode(int m) {
  const int value = m & (kValueNone | kValueSum);
  const int grad = m & (kGrad | kGradArray);
  if (value == (kValueNone | kValueSum) || grad == kGradArray) return false;
  if (value == 0 && grad == 0) return false;
  if (Loss::kInputs == 1) return grad == 0 && (m & kWeighted) == 0;  // sums and probes only
  return true;
}

// Maps the runtime mode to its instantiation (modes are < 32).
template <class Loss, class T, int M = 0>
double run_mode(int mode, const Operands& op, int64_t numel, const Params<T>& p) {
  if constexpr (M < 32) {
    if constexpr (valid_mode<Loss>(M)) {
      if (mode == M) return run<Loss, M, T>(op, numel, p);
    }
    return run_mode<Loss, T, M + 1>(mode, op, numel, p);
  } else {
    return 0.0;  // unreachable: the caller only builds valid modes
  }
}

template <class T>
double pointwise(Pointwise loss, const PointwiseArgs& a) {
  Operands op;
  op.ndim = a.ndim;
  int64_t numel = 1;
  for (int d = 0; d < a.ndim; ++d) {
    op.shape[d] = a.shape[d];
    numel *= a.shape[d];
  }
  const StridedArray* arrays[kSlots] = {&a.input, &a.target,   &a.weight,
                                        &a.grad_output, &a.loss_out, &a.grad_out};
  for (int s = 0; s < kSlots; ++s) {
    op.data[s] = static_cast<char*>(arrays[s]->data);
    for (int d = 0; d < kMaxDims; ++d) op.strides[s][d] = arrays[s]->strides[d];
  }
  int mode = 0;
  if (a.want_value) mode |= a.loss_out.data != nullptr ? kValueNone : kValueSum;
  if (a.want_grad) mode |= kGrad | (a.grad_output.data != nullptr ? kGradArray : 0);
  if (a.weight.data != nullptr) mode |= kWeighted;
  const Params<T> p{static_cast<T>(a.param), static_cast<T>(a.grad_scale)};
  switch (loss) {
    case Pointwise::L1: return run_mode<L1, T>(mode, op, numel, p);
    case Pointwise::Mse: return run_mode<Mse, T>(mode, op, numel, p);
    case Pointwise::SmoothL1:
      // beta == 0 is exactly L1, forward and backward (as torch dispatches
      // it). Tested in T: a beta that rounds to 0 in float32 (1e-50) would
      // otherwise give 0/0 gradients at d == 0.
      if (p.param == T(0)) return run_mode<L1, T>(mode, op, numel, p);
      return run_mode<SmoothL1, T>(mode, op, numel, p);
    case Pointwise::Huber: return run_mode<Huber, T>(mode, op, numel, p);
    case Pointwise::Sum: return run_mode<Identity, T>(mode, op, numel, p);
  }
  return 0.0;
}

}  // namespace

double pointwise_f32(Pointwise loss, const PointwiseArgs& a) { return pointwise<float>(loss, a); }
double pointwise_f64(Pointwise loss, const PointwiseArgs& a) { return pointwise<double>(loss, a); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
