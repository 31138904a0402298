// Margin losses on +-1 targets: soft margin, hinge embedding, margin ranking
// (torch 2.13's formulas; torch's conventions at the kinks: the hinge's and
// the ranking's gradient flows where the clamped term is exactly 0).
#pragma once

#include "losses/probabilistic.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

// soft_margin_loss(x, t): softplus(-t x), d/dx = -t sigmoid(-t x). torch
// computes log1p(exp(-t x)), which overflows to inf (gradient NaN) for
// -t x > 88.7 in float32 (pytorch #77529); this form is finite everywhere and
// equal to torch's where torch's is finite.
struct SoftMargin : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P&, V& value, V* grad) {
    const V t = in[1];
    const V z = (-in[0]) * t;
    V sp{}, sg{};
    loss_logistic<kValue, kGrad ? 1 : 0>(z, sp, sg);  // one exp for both
    if constexpr (kValue) value = sp;
    if constexpr (kGrad) grad[0] = -t * sg;
  }
};

// hinge_embedding_loss(x, t): (t != 1 ? max(margin - x, 0) : 0) + (t != -1 ? x : 0)
// (any other target gets both terms, as torch); d/dx = (t != 1 ? -[margin - x >= 0] : 0)
// + (t != -1 ? 1 : 0).
struct HingeEmbedding : Elementwise {
  static constexpr int kInputs = 2, kGrads = 1;
  template <class T>
  struct Params {
    T margin;
    explicit Params(const double* o) : margin(static_cast<T>(o[0])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V x = in[0], t = in[1];
    const V zero = splat<V>(0), one = splat<V>(1);
    const V hinge = splat<V>(p.margin) - x;
    if constexpr (kValue)
      value = select(t != one, clamp_min(hinge, zero), zero) + select(t != -one, x, zero);
    if constexpr (kGrad)
      grad[0] = select(t != one, select(hinge >= zero, -one, zero), zero) + select(t != -one, one, zero);
  }
};

// margin_ranking_loss(x1, x2, t): max(-t (x1 - x2) + margin, 0);
// d/dx1 = [z >= 0] (-t), d/dx2 = -d/dx1 (signed zeros as torch's).
struct MarginRanking : Elementwise {
  static constexpr int kInputs = 3, kGrads = 2;  // grads: input1, input2
  template <class T>
  struct Params {
    T margin;
    explicit Params(const double* o) : margin(static_cast<T>(o[0])) {}
  };
  template <bool kValue, bool kGrad, class V, class P>
  static void eval(const V* in, const P& p, V& value, V* grad) {
    const V t = in[2];
    const V zero = splat<V>(0);
    const V z = -t * (in[0] - in[1]) + splat<V>(p.margin);
    if constexpr (kValue) value = clamp_min(z, zero);
    if constexpr (kGrad) {
      grad[0] = select(z >= zero, splat<V>(1), zero) * (-t);
      grad[1] = -grad[0];
    }
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
