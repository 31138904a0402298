// Regression losses of (input x, target y), d = x - y. Formulas and the order
// of operations follow ATen's CPU kernels so float32 values match torch's.
//
// Each functor's eval computes, for V a vector or a scalar, the loss value
// (kValue) and/or d loss / d x (kGrad) from the same lines.
#pragma once

#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

// |d|; gradient sign(d) with sign(0) = sign(NaN) = 0 (torch's abs backward).
struct L1 {
  static constexpr int kInputs = 2;
  template <bool kValue, bool kGrad, class V>
  static void eval(V x, V y, V /*param*/, V& value, V& grad) {
    const V d = x - y;
    if constexpr (kValue) value = abs(d);
    if constexpr (kGrad) grad = sign(d);
  }
};

// d^2; gradient 2 d.
struct Mse {
  static constexpr int kInputs = 2;
  template <bool kValue, bool kGrad, class V>
  static void eval(V x, V y, V /*param*/, V& value, V& grad) {
    const V d = x - y;
    if constexpr (kValue) value = d * d;
    if constexpr (kGrad) grad = d * splat<V>(2);
  }
};

// |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta  (beta > 0; beta == 0 is L1).
struct SmoothL1 {
  static constexpr int kInputs = 2;
  template <bool kValue, bool kGrad, class V>
  static void eval(V x, V y, V beta, V& value, V& grad) {
    const V d = x - y;
    if constexpr (kValue) {
      const V z = abs(d);
      const V half = splat<V>(0.5);
      value = select(z < beta, half * z * z / beta, z - half * beta);
    }
    if constexpr (kGrad) {
      grad = select(d < -beta, splat<V>(-1), select(d > beta, splat<V>(1), d / beta));
    }
  }
};

// |d| < delta ? 0.5 d^2 : delta (|d| - 0.5 delta)  (delta > 0).
struct Huber {
  static constexpr int kInputs = 2;
  template <bool kValue, bool kGrad, class V>
  static void eval(V x, V y, V delta, V& value, V& grad) {
    const V d = x - y;
    if constexpr (kValue) {
      const V z = abs(d);
      const V half = splat<V>(0.5);
      value = select(z < delta, half * z * z, delta * (z - half * delta));
    }
    if constexpr (kGrad) grad = select(d < -delta, -delta, select(d > delta, delta, d));
  }
};

// The identity on x: sums (weight totals) and the bandwidth probes.
struct Identity {
  static constexpr int kInputs = 1;
  template <bool kValue, bool kGrad, class V>
  static void eval(V x, V /*y*/, V /*param*/, V& value, V& grad) {
    if constexpr (kValue) value = x;
    if constexpr (kGrad) grad = splat<V>(1);
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
