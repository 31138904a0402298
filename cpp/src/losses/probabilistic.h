// Likelihood losses: binary cross entropy (on probabilities and on logits),
// Poisson and Gaussian negative log likelihood, KL divergence. Formulas and
// their order of operations follow torch 2.13 (ATen's kernels and
// torch/nn/functional.py); the transcendentals are ours (simd/math.h's loss_*
// variants: float32 within 1-2 ulp), so float32 results agree with torch's to a few ulp.
#pragma once

#include "losses/regression.h"
#include "simd/math.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

// max(v, lo) that keeps NaN (v < lo is false for NaN), as torch's clamp_min.
template <class V>
inline V clamp_min(V v, V lo) {
  return select(v < lo, lo, v);
}

// binary_cross_entropy(x, t): (t - 1) max(log1p(-x), -100) - t max(log x, -100);
// d/dx = (x - t) / max((1 - x) x, eps), eps = float(1e-12) (ATen's EPSILON).
// Checks: 0 <= x <= 1 (bit 0) and 0 <= t <= 1 (bit 1); NaN fails both, as torch.
struct BinaryCrossEntropy : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1, kChecks = 2;
  template <class V>
  static void check(const V* in, V* bad) {
    const V zero = splat<V>(0), one = splat<V>(1);
    bad[0] = select(in[0] >= zero && in[0] <= one, bad[0], one);
    bad[1] = select(in[1] >= zero && in[1] <= one, bad[1], one);
  }
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    const V x = in[0], t = in[1];
    const V one = splat<V>(1);
    if constexpr (kValue) {
      const V floor = splat<V>(-100);
      // x outside [0, 1] (or NaN) fails the check: its value is never used.
      value = (t - one) * clamp_min(loss_log1p<true>(-x), floor) - t * clamp_min(loss_log<true>(x), floor);
    }
    if constexpr (kGrad) {
      using T = typename ElemOf<V>::type;
      const V eps = splat<V>(static_cast<T>(1e-12f));
      grad[0] = (x - t) / clamp_min((one - x) * x, eps);
    }
  }
};

// binary_cross_entropy_with_logits(x, t, pos_weight p):
//   (1 - t) x - l log_sigmoid(x),  l = (p - 1) t + 1 (l = 1 without p);
//   d/dx = (p t + 1 - t) sigmoid(x) - p t  (sigmoid(x) - t without p).
// log_sigmoid(x) = -softplus(-x): finite for every x.
struct BinaryCrossEntropyWithLogits : Elementwise {
  static constexpr int kInputs = 3, kGrads = 1;
  template <class T>
  struct Params {
    bool pos_weight;
    explicit Params(const double* options) : pos_weight(options[0] != 0) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V x = in[0], t = in[1], pw = in[2];
    const V one = splat<V>(1);
    // softplus(-x) and sigmoid(x) = sigmoid(-(-x)) from one exp.
    V neg_log_sigmoid{}, s{};
    loss_logistic<kValue, kGrad ? -1 : 0>(-x, neg_log_sigmoid, s);
    if constexpr (kValue) {
      if (p.pos_weight)
        value = (one - t) * x + ((pw - one) * t + one) * neg_log_sigmoid;
      else
        value = (one - t) * x + neg_log_sigmoid;
    }
    if constexpr (kGrad) {
      if (p.pos_weight) {
        const V pt = pw * t;
        grad[0] = (pt + one - t) * s - pt;
      } else {
        grad[0] = s - t;
      }
    }
  }
};

// poisson_nll_loss(x, t): log_input: exp(x) - t x, d/dx = exp(x) - t;
// else x - t log(x + eps), d/dx = 1 - t / (x + eps). full adds Stirling's
// t log t - t + 0.5 log(2 pi t) where t > 1 (no gradient).
struct PoissonNll : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    bool log_input, full;
    T eps;
    explicit Params(const double* o) : log_input(o[0] != 0), full(o[1] != 0), eps(static_cast<T>(o[2])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    using T = typename ElemOf<V>::type;
    const V x = in[0], t = in[1];
    if (p.log_input) {
      const V e = loss_exp(x);
      if constexpr (kValue) value = e - t * x;
      if constexpr (kGrad) grad[0] = e - t;
    } else {
      const V xe = x + splat<V>(p.eps);
      if constexpr (kValue) value = x - t * loss_log(xe);
      if constexpr (kGrad) grad[0] = splat<V>(1) - t / xe;
    }
    if constexpr (kValue) {
      if (p.full) {
        const V stirling =
            t * loss_log(t) - t + splat<V>(0.5) * loss_log(splat<V>(static_cast<T>(6.283185307179586)) * t);
        value = value + select(t <= splat<V>(1), splat<V>(0), stirling);
      }
    }
  }
};

// gaussian_nll_loss(x, t, var): v = max(var, eps) (the clamp passes the
// gradient through, as torch's no-grad clamp does);
//   0.5 (log v + (x - t)^2 / v) [+ 0.5 log(2 pi) with full];
//   d/dx = (0.5 / v)(2 (x - t)),  d/dvar = 0.5 / v - 0.5 ((x - t)^2 / v) / v.
struct GaussianNll : Elementwise {
  static constexpr int kInputs = 3, kGrads = 2;  // grads: input, var
  template <class T>
  struct Params {
    bool full;
    T eps;
    explicit Params(const double* o) : full(o[0] != 0), eps(static_cast<T>(o[1])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    using T = typename ElemOf<V>::type;
    const V d = in[0] - in[1];
    const V v = clamp_min(in[2], splat<V>(p.eps));
    const V half = splat<V>(0.5);
    const V d2 = d * d;
    if constexpr (kValue) {
      value = half * (loss_log(v) + d2 / v);
      if (p.full) value = value + splat<V>(static_cast<T>(0.9189385332046727));
    }
    if constexpr (kGrad) {
      grad[0] = (half / v) * (splat<V>(2) * d);
      grad[1] = half / v - half * ((d2 / v) / v);
    }
  }
};

// kl_div(x, t) pointwise: log_target: exp(t) (t - x), d/dx = -exp(t);
// else xlogy(t, t) - t x (0 where t == 0), d/dx = -t.
struct KlDiv : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    bool log_target;
    explicit Params(const double* o) : log_target(o[0] != 0) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V x = in[0], t = in[1];
    const V zero = splat<V>(0);
    if (p.log_target) {
      const V e = loss_exp(t);
      if constexpr (kValue) value = e * (t - x);
      if constexpr (kGrad) grad[0] = -e;
    } else {
      if constexpr (kValue) value = select(t == zero, zero, t * loss_log(t)) - t * x;
      if constexpr (kGrad) grad[0] = -t;
    }
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
