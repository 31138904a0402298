// Regression losses of (input x, target y), d = x - y. Formulas and the order
// of operations follow ATen's CPU kernels so float32 values match torch's.
//
// Each functor's eval computes, for V a vector or a scalar, the loss value
// (kValue) and/or d loss / d x (kGrad) from the same lines; the element-wise
// driver (simd/elementwise_driver.h) applies weight, grad_output and the
// reduction. Options arrive in the call's element type (Params<T>), so a
// branch on an option sees the value the arithmetic uses.
#pragma once

#include "simd/math.h"
#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

// What most functors share: no options, no checks, no redirect.
struct Elementwise {
  static constexpr int kChecks = 0;
  static constexpr bool kWeightTotal = false;
  static constexpr bool kRedirect = false;
  template <class T>
  struct Params {
    explicit Params(const double* /*options*/) {}
  };
  template <class V>
  static void check(const V* /*in*/, V* /*bad*/) {}
};

// The identity on x: sums (weight totals) and the bandwidth probes.
struct Sum : Elementwise {
  static constexpr int kInputs = 1, kGrads = 0;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* /*grad*/) {
    if constexpr (kValue) value = in[0];
  }
};

// |d|; gradient sign(d) with sign(0) = sign(NaN) = 0 (torch's abs backward).
// Weighted 'mean' divides by sum(weight) (torch 2.13): the weight total.
struct L1 : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  static constexpr bool kWeightTotal = true;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    const V d = in[0] - in[1];
    if constexpr (kValue) value = abs(d);
    if constexpr (kGrad) grad[0] = sign(d);
  }
};

// d^2; gradient 2 d. Weighted 'mean' divides by sum(weight).
struct Mse : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  static constexpr bool kWeightTotal = true;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    const V d = in[0] - in[1];
    if constexpr (kValue) value = d * d;
    if constexpr (kGrad) grad[0] = d * splat<V>(2);
  }
};

// |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta  (beta > 0; beta == 0 in the
// element type is L1, forward and backward, as torch dispatches it).
struct SmoothL1 : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  static constexpr bool kRedirect = true;
  using Redirect = L1;
  template <class T>
  struct Params {
    T beta;
    explicit Params(const double* options) : beta(static_cast<T>(options[0])) {}
    bool redirect() const { return beta == T(0); }
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V beta = splat<V>(p.beta);
    const V d = in[0] - in[1];
    if constexpr (kValue) {
      const V z = abs(d);
      const V half = splat<V>(0.5);
      value = select(z < beta, half * z * z / beta, z - half * beta);
    }
    if constexpr (kGrad) {
      grad[0] = select(d < -beta, splat<V>(-1), select(d > beta, splat<V>(1), d / beta));
    }
  }
};

// |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta)  (delta >= 0).
struct Huber : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    T delta;
    explicit Params(const double* options) : delta(static_cast<T>(options[0])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V delta = splat<V>(p.delta);
    const V d = in[0] - in[1];
    if constexpr (kValue) {
      const V z = abs(d);
      const V half = splat<V>(0.5);
      value = select(z < delta, half * z * z, delta * (z - half * delta));
    }
    if constexpr (kGrad) grad[0] = select(d < -delta, -delta, select(d > delta, delta, d));
  }
};

// ---- beyond torch.nn (issue 14): the same element-wise layer, other oracles.

// log_cosh_loss(x, t) (optax.log_cosh): d = x - t, a = |d|, m = expm1(min(a, 20)):
//   log cosh d = log1p(m (m / (2 (1 + m))))   (cosh a - 1 = m^2 / (2 (1 + m))), a <= 20;
//              = a - log 2                    (a > 20: log1p(e^-2a) < 2^-57 a);
//   d/dx = tanh d = sign(d) m (m + 2) / (m (m + 2) + 2)  (tanh 20 rounds to 1).
// One expm1 for value and gradient. optax's logaddexp(d, -d) - log 2 (and the
// |d| + softplus(-2|d|) - log 2 form) subtracts O(1) terms, which leaves
// d^2 / 2 with an absolute error of ~1 ulp of log 2: no correct digit in
// float32 below |d| ~ 3e-4. This form keeps ~4 ulp relative everywhere.
struct LogCosh : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    using T = typename ElemOf<V>::type;
    const V d = in[0] - in[1];
    const V a = abs(d);
    const V one = splat<V>(1), two = splat<V>(2);
    if constexpr (sizeof(T) == sizeof(float)) {
      eval_f32<kValue, kGrad>(d, a, value, grad);
    } else {
      const V cap = splat<V>(20);
      const V m = expm1(select(a > cap, cap, a));  // (NaN stays NaN)
      if constexpr (kValue) {
        const V near = log1p(m * (m / (two * (one + m))));
        value = select(a > cap, a - splat<V>(static_cast<T>(0.6931471805599453)), near);
      }
      if constexpr (kGrad) {
        const V num = m * (m + two);
        const V th = num / (num + two);
        grad[0] = select(d < splat<V>(0), -th, th);
      }
    }
  }

  // float32 (math.h's loss_* functions, ~4x fewer operations than expm1 and
  // log1p with their divisions): with z = a^2 and e = e^-2a (loss_exp: 0
  // beyond a = 43.7),
  //   a < 3/4:  log cosh a = z P(z),  tanh a = a Q(z)   (no cancellation for tiny a);
  //   a >= 3/4: log cosh a = (a - ln2_hi) + (log1p(e) - ln2_lo),  tanh a = (1 - e) / (1 + e)
  // (a - ln2_hi exact for a in [3/4, 2)). P, Q: mpmath.chebyfit of
  // log(cosh(sqrt z)) / z (degree 5) and tanh(sqrt z) / sqrt z (degree 6) on
  // [0, 9/16], relative errors 2^-27.6 and 2^-29.1. Both branches within
  // ~3 ulp (log1p's 2 ulp at a = 3/4), 2.1 and 1.2 ulp measured for the
  // polynomials; NaN and +-inf give NaN and (inf, +-1) as before.
  template <bool kValue, bool kGrad, class V>
  static void eval_f32(V d, V a, V& value, V* grad) {
    const V one = splat<V>(1);
    const auto near = a < splat<V>(0.75f);
    const V z = a * a;
    const V e = loss_exp(splat<V>(-2) * a);
    if constexpr (kValue) {
      static constexpr float p[] = {-0.00042877657688222826f, 0.002012798096984625f, -0.006698003504425287f,
                                    0.02221607230603695f, -0.08333303779363632f, 0.5f};
      const V small = z * math_detail::horner_fma(z, p);
      const V large = (a - splat<V>(math_detail::kLn2HiF)) + (loss_log1p(e) - splat<V>(math_detail::kLn2LoF));
      value = select(near, small, large);
    }
    if constexpr (kGrad) {
      static constexpr float q[] = {0.0017186269396916032f, -0.007624102756381035f, 0.021429011598229408f,
                                    -0.0538850836455822f, 0.1333257257938385f, -0.3333330750465393f, 1.0f};
      const V th = select(near, a * math_detail::horner_fma(z, q), (one - e) / (one + e));
      grad[0] = select(d < splat<V>(0), -th, th);
    }
  }
};

// pinball_loss(x, t, quantile q) (scikit-learn's mean_pinball_loss per
// element, y_true = t, y_pred = x): d = t - x, q d where d >= 0, (q - 1) d
// where d < 0; d/dx = -q (d > 0), 1 - q (d < 0), and 0 at d = 0 (0 lies in
// the subdifferential [-q, 1 - q]; q = 0.5 is half of l1_loss, torch's
// sign(0) = 0 included) and for NaN. Weighted 'mean' divides by sum(weight).
struct Pinball : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  static constexpr bool kWeightTotal = true;
  template <class T>
  struct Params {
    T quantile, below;  // q and q - 1 (rounded once, from the double)
    explicit Params(const double* o) : quantile(static_cast<T>(o[0])), below(static_cast<T>(o[0] - 1.0)) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V d = in[1] - in[0];
    const V zero = splat<V>(0);
    const V q = splat<V>(p.quantile), below = splat<V>(p.below);
    if constexpr (kValue) value = select(d >= zero, q * d, below * d);
    if constexpr (kGrad) grad[0] = select(d > zero, -q, select(d < zero, -below, zero));
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
