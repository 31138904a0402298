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
  return max_or_second(lo, v);
}

// binary_cross_entropy(x, t): (t - 1) max(log1p(-x), -100) - t max(log x, -100);
// d/dx = (x - t) / max((1 - x) x, eps), eps = float(1e-12) (ATen's EPSILON).
// Checks: 0 <= x <= 1 (bit 0) and 0 <= t <= 1 (bit 1); NaN fails both, as torch.
struct BinaryCrossEntropy : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1, kChecks = 2;
  template <class V>
  static void check(const V* in, V* bad) {
    const V one = splat<V>(1);
    bad[0] = select(in_unit_interval(in[0]), bad[0], one);  // shares the log's scaling of x
    bad[1] = select(in_unit_interval(in[1]), bad[1], one);
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
// log_sigmoid(x) = -softplus(-x): finite for every x. Two functors, with and
// without p, so that neither's loop tests the option per vector: the
// registered one (no p) redirects to the other when the call has a p.
template <bool kPosWeight>
struct BceWithLogits : Elementwise {
  static constexpr int kInputs = 3, kGrads = 1;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    const V x = in[0], t = in[1];
    const V one = splat<V>(1);
    // softplus(-x) and sigmoid(x) = sigmoid(-(-x)) from one exp.
    V neg_log_sigmoid{}, s{};
    loss_logistic<kValue, kGrad ? -1 : 0>(-x, neg_log_sigmoid, s);
    if constexpr (kPosWeight) {
      const V pw = in[2];
      if constexpr (kValue) value = (one - t) * x + ((pw - one) * t + one) * neg_log_sigmoid;
      if constexpr (kGrad) {
        const V pt = pw * t;
        grad[0] = (pt + one - t) * s - pt;
      }
    } else {
      if constexpr (kValue) value = (one - t) * x + neg_log_sigmoid;
      if constexpr (kGrad) grad[0] = s - t;
    }
  }
};
struct BinaryCrossEntropyWithLogitsPosWeight : BceWithLogits<true> {};
struct BinaryCrossEntropyWithLogits : BceWithLogits<false> {
  static constexpr bool kRedirect = true;
  using Redirect = BinaryCrossEntropyWithLogitsPosWeight;
  template <class T>
  struct Params {
    bool pos_weight;
    explicit Params(const double* options) : pos_weight(options[0] != 0) {}
    bool redirect() const { return pos_weight; }
  };
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
// Two divisions, not torch's three: the value's q = (x - t)^2 / v is reused,
// and 0.5 q / v is computed as q (0.5 / v) (one more rounding in that term:
// within an ulp or two of torch's, as the log's own error).
// Check: var < 0 (bit 0; NaN passes, as torch's any(var < 0)) - in the pass
// itself, instead of a separate pass over var before it.
struct GaussianNll : Elementwise {
  static constexpr int kInputs = 3, kGrads = 2, kChecks = 1;  // grads: input, var
  template <class T>
  struct Params {
    bool full;
    T eps;
    explicit Params(const double* o) : full(o[0] != 0), eps(static_cast<T>(o[1])) {}
  };
  template <class V>
  static void check(const V* in, V* bad) {
    bad[0] = select(in[2] < splat<V>(0), splat<V>(1), bad[0]);
  }
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    using T = typename ElemOf<V>::type;
    const V d = in[0] - in[1];
    const V v = clamp_min(in[2], splat<V>(p.eps));
    const V half = splat<V>(0.5);
    const V q = (d * d) / v;
    if constexpr (kValue) {
      value = half * (loss_log(v) + q);
      if (p.full) value = value + splat<V>(static_cast<T>(0.9189385332046727));
    }
    if constexpr (kGrad) {
      const V hr = half / v;
      grad[0] = hr * (splat<V>(2) * d);
      grad[1] = hr - q * hr;
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

// ---- beyond torch.nn (issue 14): the same element-wise layer, other oracles.

// sigmoid_focal_loss(x, t) (torchvision.ops.sigmoid_focal_loss): with
// p = sigmoid(x), A = p (1 - t), B = (1 - p) t, q = 1 - p_t = A + B,
//   ce = t softplus(-x) + (1 - t) softplus(x)   (binary_cross_entropy_with_logits),
//   loss = a_t ce q^gamma,  a_t = alpha t + (1 - alpha)(1 - t) (alpha >= 0) or 1 (alpha < 0);
//   d/dx = a_t q^gamma ((A - B) + gamma ce r),  r = p (1 - p)(1 - 2t) / q  (0 where q == 0)
// (A - B = p - t; gamma q^gamma r = d q^gamma / dx, |r| <= 2 for t in [0, 1]).
// Every term is a sum of non-negative parts for t in [0, 1], so the loss and
// its gradient keep their relative accuracy for any |x|: with e = exp(-|x|),
// sigmoid(-|x|) = e / (1 + e) is the smaller of p and 1 - p (the larger is
// 1 minus it, >= 1/2) and ce = softplus(-|x|) + (x > 0 ? (1 - t) x : -t x).
// torchvision's 1 - p_t rounds to 0 once p rounds to 1 (|x| > 17 in
// float32), and (1 - t) x + softplus(-x) cancels for x < 0, t = 0.
// q^gamma: repeated products for an integer gamma <= 8 (torch's pow does
// q * q for 2), else exp(gamma log q) (0 at q = 0, NaN for q < 0 as pow).
struct SigmoidFocal : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    bool weighted;  // alpha >= 0
    T alpha, one_minus_alpha, gamma;
    int power;  // gamma as an integer 0..8, else -1
    explicit Params(const double* o)
        : weighted(o[0] >= 0), alpha(static_cast<T>(o[0])), one_minus_alpha(static_cast<T>(1.0 - o[0])),
          gamma(static_cast<T>(o[1])), power(o[1] >= 0 && o[1] <= 8 && o[1] == static_cast<int>(o[1])
                                                 ? static_cast<int>(o[1]) : -1) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V x = in[0], t = in[1];
    const V zero = splat<V>(0), one = splat<V>(1);
    V soft{}, small{};
    loss_logistic<true, 1>(-abs(x), soft, small);  // softplus(-|x|), sigmoid(-|x|) <= 1/2 (one exp)
    const V large = one - small;
    const auto positive = x >= zero;
    const V s = select(positive, large, small), s_neg = select(positive, small, large);  // p, 1 - p
    const V a = s * (one - t), b = s_neg * t;
    const V q = a + b;
    const V ce = soft + select(x > zero, (one - t) * x, -(t * x));
    V qg = one;
    if (p.power > 0) {
      qg = q;
      for (int k = 1; k < p.power; ++k) qg = qg * q;
    } else if (p.power < 0) {
      qg = select(q == zero, zero, loss_exp(splat<V>(p.gamma) * loss_log(q)));
    }
    const V at = p.weighted ? splat<V>(p.alpha) * t + splat<V>(p.one_minus_alpha) * (one - t) : one;
    if constexpr (kValue) value = at * (ce * qg);
    if constexpr (kGrad) {
      V inner = a - b;
      if (p.power != 0) {
        const V r = select(q == zero, zero, s * s_neg * (one - t - t) / q);
        // gamma (ce r), not (gamma ce) r: ce near FLT_MAX (|x| > 1.7e38)
        // times gamma would overflow to inf and meet r = 0 (NaN).
        inner = inner + splat<V>(p.gamma) * (ce * r);
      }
      grad[0] = at * (qg * inner);
    }
  }
};

// jensen_shannon_divergence(x, t) (Liger-Kernel's generalized JSD, per
// element): x = log Q (the prediction), target log P (log_target) or P;
//   M = beta P + (1 - beta) Q,
//   beta P (log P - log M) + (1 - beta) Q (x - log M),  d/dx = (1 - beta) Q (x - log M);
// as Liger, beta = 0 is KL(P || Q): P (log P - x), d/dx = -P, and beta = 1 is
// KL(Q || P): Q (x - log P), d/dx = Q (x - log P) + Q (both decided on the
// option as given, not as rounded to the element type). A term whose
// probability is 0 is 0 (xlogy's convention), also for a log-probability of
// -inf, where Liger's kernel gives NaN.
struct JensenShannon : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    bool log_target;
    int kind;  // 0: general, 1: beta == 0 (KL(P || Q)), 2: beta == 1 (KL(Q || P))
    T beta, one_minus_beta;
    explicit Params(const double* o)
        : log_target(o[1] != 0), kind(o[0] == 0 ? 1 : o[0] == 1 ? 2 : 0), beta(static_cast<T>(o[0])),
          one_minus_beta(static_cast<T>(1.0 - o[0])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V x = in[0];
    const V zero = splat<V>(0);
    const V prob = p.log_target ? loss_exp(in[1]) : in[1];
    const V log_prob = p.log_target ? in[1] : loss_log(in[1]);
    if (p.kind == 1) {
      if constexpr (kValue) value = select(prob == zero, zero, prob * (log_prob - x));
      if constexpr (kGrad) grad[0] = -prob;
      return;
    }
    const V q = loss_exp(x);
    if (p.kind == 2) {
      const V term = select(q == zero, zero, q * (x - log_prob));
      if constexpr (kValue) value = term;
      if constexpr (kGrad) grad[0] = select(q == zero, zero, term + q);
      return;
    }
    const V beta_p = splat<V>(p.beta) * prob;
    const V rest_q = splat<V>(p.one_minus_beta) * q;
    const V log_m = loss_log(beta_p + rest_q);
    const V term_q = select(q == zero, zero, rest_q * (x - log_m));
    if constexpr (kValue) value = select(prob == zero, zero, beta_p * (log_prob - log_m)) + term_q;
    if constexpr (kGrad) grad[0] = term_q;
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
