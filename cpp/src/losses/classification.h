// Class-axis losses (torch 2.13's formulas): cross entropy, NLL, multilabel
// soft margin, multi margin, multilabel margin. Each is the math of one row
// for the row-wise driver (simd/rowwise_driver.h says what a row is and what
// the driver does around it: targets, ignore_index, weights, scales, sums).
//
// A row's sums over the classes are taken in T in fixed slots (slot_sums),
// segment by segment (kClassBlock classes), each segment's sum added in
// double; the row's loss is then formed in double. Gradients are written in T.
#pragma once

#include <type_traits>

#include "simd/math.h"
#include "simd/rowwise_driver.h"
#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

using rowwise::kClassBlock;
using rowwise::LaneScalars;
using rowwise::row_max;
using rowwise::RowError;
using rowwise::RowScalars;
using rowwise::RowView;
using rowwise::slot_sums;

template <class V>
constexpr int lanes_of() {
  return static_cast<int>(sizeof(V) / sizeof(typename ElemOf<V>::type));
}

// f(i, tag) over [0, n): vectors of T (tag a V) at i, then the scalar tail (tag a T).
template <class T, class F>
inline void for_each_lane(int64_t n, F&& f) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  int64_t i = 0;
  for (; i + L <= n; i += L) f(i, V{});
  for (; i < n; ++i) f(i, T{});
}

struct RowLossBase {
  static constexpr bool kIgnoreIndex = false;
  static constexpr bool kWeightTotal = false;
  static constexpr bool kAnyStride = false;
  static constexpr bool kSpatial = false;
  static constexpr bool kRuns = false;
  template <bool kValue, bool kGrad, class V, class T, class P>
  static void spatial(const RowView<T>&, const P&, const LaneScalars<T>&, double*) {}
  template <bool kValue, bool kGrad, class T>
  static void run_rows(const rowwise::RunView<T>&, const int64_t*, const double*, const double*, const uint8_t*,
                       double*) {}
};

// cross_entropy(x, y): with lp = log_softmax(x), M = max x, S = sum exp(x - M),
//   class index y, weight w, label smoothing e over C classes:
//     l = (1 - e) (-w_y lp_y) + (e / C) sum_c w_c (-lp_c)
//       = (1 - e) (-w_y lp_y) + (e / C) (W log S - sum_c w_c (x_c - M)),  W = sum_c w_c
//     dl/dx_c = (w_y (1 - e) + (e / C) W) p_c - w_y (1 - e) [c = y] - (e / C) w_c
//   probabilities t (t' = (1 - e) t + e / C):
//     l = sum_c w_c t'_c (log S - (x_c - M)),  dl/dx_c = (sum_k w_k t'_k) p_c - w_c t'_c
// p_c = exp(x_c - M) / S. The gradient pass reuses exp(x_c - M), stored into
// the gradient row by the sum pass (the row is still in cache). The gradient
// may alias the input (linear_cross_entropy turns a chunk of logits into its
// gradient in place): every input element is read before its gradient
// element is written (x_y is read before the sum pass); the one exception
// is the soft-capped lanes path (K-dimensional rows), which reads x again.
//
// Two options beyond torch (Liger-Kernel's / cut-cross-entropy's), both off
// by default, when the code below is torch's unchanged:
//   softcap s > 0: every x_c above is replaced by x'_c = s tanh(x_c / s)
//     (the row path writes x' once: into the gradient row when there is one,
//     in place, its slope into the scratch row; else into the scratch row;
//     the spatial path recomputes both), and the gradient is multiplied by
//     dx'/dx = 1 - tanh^2;
//   z_loss z != 0: adds w_y z lse^2 to an index row's loss (z lse^2 to a
//     probability row's), lse = M + log S the capped row's logsumexp, and
//     w_y 2 z lse p_c (2 z lse p_c) to its gradient: one more term of a.
// These are the options a fused linear + cross entropy forwards to this row.
struct CrossEntropy : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::IndexOrFloat;
  static constexpr bool kIgnoreIndex = true;
  static constexpr bool kWeightTotal = true;
  static constexpr bool kSpatial = true;
  template <class T>
  struct Params {
    double smoothing;  // e
    T keep;            // 1 - e, in T (the probability targets' t')
    T spread;          // e / C, in T
    double z;          // z_loss
    bool capped;       // softcap > 0
    T cap;             // s
    double poly = 0;   // Poly1CrossEntropy's epsilon (class indices, row path)
    Params(const double* o, int64_t classes) : Params(o[1], o[2], o[3], classes) {}
    Params(double e, double z_loss, double softcap, int64_t classes)
        : smoothing(e),
          keep(static_cast<T>(1.0 - e)),
          spread(static_cast<T>(classes > 0 ? e / static_cast<double>(classes) : 0.0)),
          z(z_loss),
          capped(softcap > 0),
          cap(static_cast<T>(softcap > 0 ? softcap : 1.0)) {}
  };

  // s tanh(x / s).
  template <class W_, class P>
  static W_ capped(W_ x, const P& p) {
    return splat<W_>(p.cap) * tanh(x / splat<W_>(p.cap));
  }
  // dx'/dx = 1 - tanh(x / s)^2 = 4 e / (1 + e)^2, e = exp(-2 |x / s|): no
  // cancellation where tanh rounds near 1 (1 - t^2 from t would lose every
  // digit in float32 beyond |x / s| ~ 4); 0 for infinite x, NaN kept.
  template <class W_, class P>
  static W_ cap_slope(W_ x, const P& p) {
    const W_ e = exp(splat<W_>(-2) * abs(x / splat<W_>(p.cap)));
    const W_ d = splat<W_>(1) + e;
    return splat<W_>(4) * e / (d * d);
  }

  // The row's loss from its sums (both paths).
  //   xy: x_y - M; logS; U = sum w_c (x_c - M); W = sum w_c; Q, R: the
  //   probability targets' sum w t' and sum w t' (x - M).
  static double index_value(double xy, double logS, double wy, double e, int64_t C, double U, double W) {
    const double lp = xy - logS;
    const double nll = -(wy * lp);  // -0.0 for lp = 0, as torch
    if (e == 0) return nll;
    return (1 - e) * nll + (e / static_cast<double>(C)) * (W * logS - U);
  }

  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P& p, const RowScalars& rs, RowError*) {
    const int64_t C = v.classes;
    const T* x = v.x;
    if (p.capped) {
      // x' once, read by the sums and the value. With a gradient it goes into
      // the gradient row (element i read, then written: safe when the
      // gradient aliases the input) and the chain factor, from x itself, into
      // the scratch row; without one, x' goes into the scratch row.
      T* xc = kGrad ? v.g : v.scratch;
      for_each_lane<T>(C, [&](int64_t i, auto tag) {
        using W_ = decltype(tag);
        const W_ xi = load<W_>(v.x + i);
        if constexpr (kGrad) store(v.scratch + i, cap_slope(xi, p));
        store(xc + i, capped(xi, p));
      });
      x = xc;
    }
    const T M = row_max(x, C);
    const bool probs = v.t != nullptr, smooth = p.smoothing != 0, weighted = v.w != nullptr;
    const T xy = probs ? T(0) : x[rs.y];  // before the sum pass may overwrite it (in place)
    double S = 0, U = 0, W = weighted ? 0 : static_cast<double>(C), Q = 0, R = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kClassBlock) {
      const int64_t n = C - c0 < kClassBlock ? C - c0 : kClassBlock;
      const T* xb = x + c0;
      T* gb = kGrad ? v.g + c0 : nullptr;
      const T* wb = weighted ? v.w + c0 : nullptr;
      auto exp_at = [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const W_ d = load<W_>(xb + i) - (W_)splat<W_>(M);
        const W_ e = loss_exp(d);
        if constexpr (kGrad) store(gb + i, e);
        out[0] = e;
        return d;
      };
      if (probs) {
        const T* tb = v.t + c0;
        double s[3];
        slot_sums<3, T>(n, [&](int64_t i, auto* out) {
          using W_ = std::remove_pointer_t<decltype(out)>;
          const W_ d = exp_at(i, out);
          W_ wt = load<W_>(tb + i) * splat<W_>(p.keep) + splat<W_>(p.spread);
          if (weighted) wt = wt * load<W_>(wb + i);
          out[1] = wt;
          out[2] = wt * d;
        }, s);
        S += s[0];
        Q += s[1];
        R += s[2];
      } else if (smooth && weighted) {
        double s[3];
        slot_sums<3, T>(n, [&](int64_t i, auto* out) {
          using W_ = std::remove_pointer_t<decltype(out)>;
          const W_ d = exp_at(i, out);
          const W_ w = load<W_>(wb + i);
          out[1] = w * d;
          out[2] = w;
        }, s);
        S += s[0];
        U += s[1];
        W += s[2];
      } else if (smooth) {
        double s[2];
        slot_sums<2, T>(n, [&](int64_t i, auto* out) { out[1] = exp_at(i, out); }, s);
        S += s[0];
        U += s[1];
      } else {
        double s[1];
        slot_sums<1, T>(n, [&](int64_t i, auto* out) { exp_at(i, out); }, s);
        S += s[0];
      }
    }
    const double logS = log(S);
    const double lse = static_cast<double>(M) + logS;
    double value = 0;
    if constexpr (kValue) {
      if (probs)
        value = Q * logS - R;
      else
        value = index_value(static_cast<double>(xy) - static_cast<double>(M), logS, rs.wy, p.smoothing, C, U, W);
      if (p.z != 0) value += (probs ? 1.0 : rs.wy) * (p.z * (lse * lse));
    }
    // Poly-1 (index targets): + eps w_y (1 - p_t), p_t = (1 - e) p_y + e / C.
    double poly_grad = 0;  // eps w_y (1 - e) p_y: d(poly)/dx_c = poly_grad (p_c - [c = y])
    if (p.poly != 0 && !probs) {
      const double e = p.smoothing;
      const double py = exp(static_cast<double>(xy) - static_cast<double>(M) - logS);
      if constexpr (kValue) value += p.poly * rs.wy * (1 - ((1 - e) * py + e / static_cast<double>(C)));
      poly_grad = p.poly * rs.wy * (1 - e) * py;
    }
    if constexpr (kGrad) {
      T* g = v.g;
      const T* w = v.w;
      const double zterm = p.z != 0 ? 2 * p.z * lse : 0.0;  // d(z lse^2)/d lse
      if (probs) {
        const T a = static_cast<T>(rs.scale * (Q + zterm) / S);
        const T sc = static_cast<T>(rs.scale);
        const T* t = v.t;
        for_each_lane<T>(C, [&](int64_t i, auto tag) {
          using W_ = decltype(tag);
          W_ wt = load<W_>(t + i) * splat<W_>(p.keep) + splat<W_>(p.spread);
          if (weighted) wt = wt * load<W_>(w + i);
          store(g + i, splat<W_>(a) * load<W_>(g + i) - splat<W_>(sc) * wt);
        });
      } else {
        const double e = p.smoothing;
        const double keep = rs.wy * (1 - e);
        const double spread = e / static_cast<double>(C);
        const T a = static_cast<T>(rs.scale * (keep + spread * W + rs.wy * zterm + poly_grad) / S);
        const T b = static_cast<T>(rs.scale * (keep + poly_grad));
        if (smooth) {
          const T d = static_cast<T>(rs.scale * spread);
          for_each_lane<T>(C, [&](int64_t i, auto tag) {
            using W_ = decltype(tag);
            const W_ wc = weighted ? load<W_>(w + i) : splat<W_>(1);
            store(g + i, splat<W_>(a) * load<W_>(g + i) - splat<W_>(d) * wc);
          });
        } else {
          for_each_lane<T>(C, [&](int64_t i, auto tag) {
            using W_ = decltype(tag);
            store(g + i, splat<W_>(a) * load<W_>(g + i));
          });
        }
        g[rs.y] = g[rs.y] - b;
      }
      if (p.capped)
        for_each_lane<T>(C, [&](int64_t i, auto tag) {
          using W_ = decltype(tag);
          store(g + i, load<W_>(g + i) * load<W_>(v.scratch + i));
        });
    }
    return value;
  }

  // Lanes = adjacent rows; loops over the classes at stride xc.
  template <bool kValue, bool kGrad, class V, class T, class P>
  static void spatial(const RowView<T>& v, const P& p, const LaneScalars<T>& ls, double* values) {
    constexpr int L = lanes_of<V>();
    const int64_t C = v.classes;
    const bool probs = v.t != nullptr, smooth = p.smoothing != 0, weighted = v.w != nullptr;
    auto xin = [&](int64_t c) {
      const V xv = load<V>(v.x + c * v.xc);
      return p.capped ? capped(xv, p) : xv;
    };
    V M = splat<V>(T(-__builtin_huge_val()));
    for (int64_t c = 0; c < C; ++c) {
      const V xv = xin(c);
      M = select(xv > M, xv, M);
    }
    T xy[L] = {};  // x_y of each lane, before the exp pass may overwrite it (in place)
    if (!probs)
      for (int l = 0; l < L; ++l) xy[l] = v.x[ls.y[l] * v.xc + l];
    V S = splat<V>(T(0)), U = S, Q = S, R = S;
    double W = weighted ? 0 : static_cast<double>(C);
    for (int64_t c = 0; c < C; ++c) {
      const V d = xin(c) - M;
      const V e = loss_exp(d);
      if constexpr (kGrad) store(v.g + c * v.gc, e);
      S += e;
      const T w = weighted ? v.w[c] : T(1);
      if (probs) {
        const V wt = (load<V>(v.t + c * v.tc) * splat<V>(p.keep) + splat<V>(p.spread)) * splat<V>(w);
        Q += wt;
        R += wt * d;
      } else if (smooth) {
        U += splat<V>(w) * d;
        if (weighted) W += static_cast<double>(w);
      }
    }
    const V logSv = log(S);
    T m[L], s[L], lsum[L], u[L], q[L], rr[L];
    store(m, M);
    store(s, S);
    store(lsum, logSv);
    store(u, U);
    store(q, Q);
    store(rr, R);
    if constexpr (kValue) {
      for (int l = 0; l < L; ++l) {
        const double logS = static_cast<double>(lsum[l]);
        if (probs) {
          values[l] = static_cast<double>(q[l]) * logS - static_cast<double>(rr[l]);
        } else {
          T xyl = xy[l];
          if (p.capped) xyl = capped(xyl, p);
          values[l] = index_value(static_cast<double>(xyl) - static_cast<double>(m[l]), logS, ls.wy[l], p.smoothing,
                                  C, static_cast<double>(u[l]), W);
        }
        if (p.z != 0) {
          const double lse = static_cast<double>(m[l]) + logS;
          values[l] += (probs ? 1.0 : ls.wy[l]) * (p.z * (lse * lse));
        }
      }
    }
    if constexpr (kGrad) {
      T a[L] = {}, d[L] = {}, b[L] = {}, sc[L] = {};
      const double spread = p.smoothing / static_cast<double>(C);
      for (int l = 0; l < L; ++l) {
        const double scale = ls.scale[l];
        const double zterm =
            p.z != 0 ? 2 * p.z * (static_cast<double>(m[l]) + static_cast<double>(lsum[l])) : 0.0;
        sc[l] = static_cast<T>(scale);
        if (probs) {
          a[l] = static_cast<T>(scale * (static_cast<double>(q[l]) + zterm) / static_cast<double>(s[l]));
        } else {
          const double keep = ls.wy[l] * (1 - p.smoothing);
          a[l] = static_cast<T>(scale * (keep + spread * W + ls.wy[l] * zterm) / static_cast<double>(s[l]));
          d[l] = static_cast<T>(scale * spread);
          b[l] = static_cast<T>(scale * keep);
        }
      }
      const V av = load<V>(a), scv = load<V>(sc);
      const V dv = probs ? av : load<V>(d);
      for (int64_t c = 0; c < C; ++c) {
        T* gp = v.g + c * v.gc;
        const T w = weighted ? v.w[c] : T(1);
        if (probs) {
          const V wt = (load<V>(v.t + c * v.tc) * splat<V>(p.keep) + splat<V>(p.spread)) * splat<V>(w);
          store(gp, av * load<V>(gp) - scv * wt);
        } else if (smooth) {
          store(gp, av * load<V>(gp) - dv * splat<V>(w));
        } else {
          store(gp, av * load<V>(gp));
        }
      }
      if (!probs)
        for (int l = 0; l < L; ++l) {
          T* gy = v.g + ls.y[l] * v.gc + l;
          *gy = *gy - b[l];
        }
      // Reads x again: with softcap this lanes path must not write its
      // gradient over its input (linear_cross_entropy gives it its own buffer).
      if (p.capped)
        for (int64_t c = 0; c < C; ++c) {
          T* gp = v.g + c * v.gc;
          store(gp, load<V>(gp) * cap_slope(load<V>(v.x + c * v.xc), p));
        }
    }
  }

};


// poly1_cross_entropy(x, y) (Leng et al. 2022; optax's poly_loss_cross_entropy
// with one-hot labels): cross_entropy's row plus eps w_y (1 - p_t), p_t =
// (1 - e) p_y + e / C the smoothed label's probability; d/dx_c adds
// eps w_y (1 - e) p_y (p_c - [c = y]). Class indices only; options
// ignore_index, label_smoothing, epsilon. Strided rows go through the gather path.
struct Poly1CrossEntropy : CrossEntropy {
  static constexpr RowTarget kTarget = RowTarget::Index;
  static constexpr bool kSpatial = false;
  template <class T>
  struct Params : CrossEntropy::Params<T> {
    Params(const double* o, int64_t classes) : CrossEntropy::Params<T>(o[1], 0.0, 0.0, classes) {
      this->poly = o[2];
    }
  };
};

// softmax_focal_loss(x, y) (Lin et al. 2017 over a softmax; Keras'
// CategoricalFocalCrossentropy with one-hot labels, unclipped): with
// lp = log_softmax(x)_y, p = e^lp,
//   l = -w_y (1 - p)^gamma lp
//   dl/dx_c = K (p_c - [c = y]),  K = w_y (1 - p)^gamma (1 - gamma p lp / (1 - p))
// (lp / (1 - p) -> -1 as p -> 1). w_y is the class weight times alpha (the
// Python layer folds alpha in and supplies 'mean''s denominator). 1 - p is
// -expm1(lp): no cancellation for confident rows. Options: ignore_index, gamma.
struct SoftmaxFocal : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::Index;
  static constexpr bool kIgnoreIndex = true;
  static constexpr bool kWeightTotal = true;
  template <class T>
  struct Params {
    double gamma;
    Params(const double* o, int64_t) : gamma(o[1]) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P& p, const RowScalars& rs, RowError*) {
    const int64_t C = v.classes;
    const T* x = v.x;
    const T M = row_max(x, C);
    double S = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kClassBlock) {
      const int64_t n = C - c0 < kClassBlock ? C - c0 : kClassBlock;
      const T* xb = x + c0;
      T* gb = kGrad ? v.g + c0 : nullptr;
      double s[1];
      slot_sums<1, T>(n, [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const W_ e = loss_exp(load<W_>(xb + i) - splat<W_>(M));
        if constexpr (kGrad) store(gb + i, e);
        out[0] = e;
      }, s);
      S += s[0];
    }
    const double logS = log(S);
    const double lp = static_cast<double>(x[rs.y]) - static_cast<double>(M) - logS;
    const double q = -expm1(lp);  // 1 - p
    const double pw = __builtin_pow(q, p.gamma);
    double value = 0;
    if constexpr (kValue) value = -(rs.wy * pw * lp);
    if constexpr (kGrad) {
      const double py = exp(lp);
      const double ratio = q > 0 ? lp / q : -1.0;
      const double focus = py > 0 ? p.gamma * py * ratio : 0.0;  // p lp -> 0 as p -> 0 (x_y = -inf)
      const double K = rs.wy * pw * (1 - focus);
      const T a = static_cast<T>(rs.scale * K / S);
      T* g = v.g;
      for_each_lane<T>(C, [&](int64_t i, auto tag) {
        using W_ = decltype(tag);
        store(g + i, splat<W_>(a) * load<W_>(g + i));
      });
      g[rs.y] = g[rs.y] - static_cast<T>(rs.scale * K);
    }
    return value;
  }
};

// dice_loss(x, t) over one sample's features (a row; Keras' Dice with the
// sums over every axis but the batch): I = sum x t, P = sum x, Q = sum t,
//   l = 1 - (2 I + smooth) / (P + Q + smooth + eps),  D = P + Q + smooth + eps
//   dl/dx_c = (2 I + smooth) / D^2 - 2 t_c / D.
// Options: smooth, eps.
struct Dice : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::Float;
  template <class T>
  struct Params {
    double smooth, eps;
    Params(const double* o, int64_t) : smooth(o[0]), eps(o[1]) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P& p, const RowScalars& rs, RowError*) {
    const int64_t C = v.classes;
    double I = 0, Ps = 0, Qs = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kClassBlock) {
      const int64_t n = C - c0 < kClassBlock ? C - c0 : kClassBlock;
      const T *xb = v.x + c0, *tb = v.t + c0;
      double s[3];
      slot_sums<3, T>(n, [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const W_ x = load<W_>(xb + i), t = load<W_>(tb + i);
        out[0] = x * t;
        out[1] = x;
        out[2] = t;
      }, s);
      I += s[0];
      Ps += s[1];
      Qs += s[2];
    }
    const double num = 2 * I + p.smooth, D = Ps + Qs + p.smooth + p.eps;
    if constexpr (kGrad) {
      const T a = static_cast<T>(rs.scale * num / (D * D));
      const T b = static_cast<T>(rs.scale * 2 / D);
      for_each_lane<T>(C, [&](int64_t i, auto tag) {
        using W_ = decltype(tag);
        store(v.g + i, splat<W_>(a) - splat<W_>(b) * load<W_>(v.t + i));
      });
    }
    return 1 - num / D;
  }
};

// nll_loss(x, y): l = -w_y x_y (x: log-probabilities, not renormalised);
// dl/dx_c = -w_y [c = y]. Reads one element per row, at any stride.
struct NllLoss : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::Index;
  static constexpr bool kIgnoreIndex = true;
  static constexpr bool kWeightTotal = true;
  static constexpr bool kAnyStride = true;
  static constexpr bool kRuns = true;
  template <class T>
  struct Params {
    Params(const double*, int64_t) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>&, const P&, const RowScalars&, RowError*) {
    return 0;  // (runs only)
  }
  // A run of rows: the values in one tight gather loop; the gradient zeroed
  // along its contiguous axis, then -w_y * scale at each counted row's y.
  template <bool kValue, bool kGrad, class T>
  static void run_rows(const rowwise::RunView<T>& v, const int64_t* y, const double* wy, const double* scale,
                       const uint8_t* status, double* values) {
    const int64_t n = v.count, C = v.classes;
    if constexpr (kValue)
      for (int64_t k = 0; k < n; ++k) values[k] = -(wy[k] * static_cast<double>(v.x[k * v.xr + y[k] * v.xc]));
    if constexpr (kGrad) {
      if (v.gc == 1 || v.gr != 1) {
        for (int64_t k = 0; k < n; ++k) {
          T* g = v.g + k * v.gr;
          for (int64_t c = 0; c < C; ++c) g[c * v.gc] = T(0);
        }
      } else {
        for (int64_t c = 0; c < C; ++c) {
          T* g = v.g + c * v.gc;
          for (int64_t k = 0; k < n; ++k) g[k] = T(0);
        }
      }
      for (int64_t k = 0; k < n; ++k)
        if (status[k] == rowwise::kValid) v.g[k * v.gr + y[k] * v.gc] = static_cast<T>(-(wy[k] * scale[k]));
    }
  }
};

// multilabel_soft_margin_loss(x, t): l = (1/C) sum_c w_c (t_c softplus(-x_c)
// + (1 - t_c) softplus(x_c)) (torch's -(t log_sigmoid(x) + (1 - t)
// log_sigmoid(-x)), stable for any x); dl/dx_c = w_c (sigmoid(x_c) - t_c) / C.
// One pass: softplus(-|x|) and sigmoid(-|x|) from one e^-|x| (loss_logistic),
// sigmoid(x) = 1 - sigmoid(-|x|) for x >= 0.
struct MultilabelSoftMargin : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::Float;
  template <class T>
  struct Params {
    Params(const double*, int64_t) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P&, const RowScalars& rs, RowError*) {
    const int64_t C = v.classes;
    const bool weighted = v.w != nullptr;
    const T scale = static_cast<T>(rs.scale / static_cast<double>(C));
    double sum = 0;
    for (int64_t c0 = 0; c0 < C; c0 += kClassBlock) {
      const int64_t n = C - c0 < kClassBlock ? C - c0 : kClassBlock;
      const T *xb = v.x + c0, *tb = v.t + c0, *wb = weighted ? v.w + c0 : nullptr;
      T* gb = kGrad ? v.g + c0 : nullptr;
      double s[1];
      slot_sums<1, T>(n, [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const W_ x = load<W_>(xb + i), t = load<W_>(tb + i);
        const W_ zero = splat<W_>(0);
        W_ soft{}, small{};
        loss_logistic<kValue, kGrad ? 1 : 0>(-abs(x), soft, small);  // softplus(-|x|), sigmoid(-|x|)
        const W_ w = weighted ? load<W_>(wb + i) : splat<W_>(1);
        if constexpr (kGrad) {
          const W_ sig = select(x >= zero, splat<W_>(1) - small, small);  // sigmoid(x); NaN: small is NaN
          W_ g = (sig - t) * splat<W_>(scale);
          if (weighted) g = g * w;
          store(gb + i, g);
        }
        if constexpr (kValue) {
          // t softplus(-x) + (1 - t) softplus(x) = softplus(-|x|) + (x > 0 ? (1 - t) x : -t x):
          // torch's infinities (x = +inf, t = 1/2: inf; t = 1: NaN).
          const W_ linear = select(x > zero, (splat<W_>(1) - t) * x, -t * x);
          W_ l = soft + linear;
          if (weighted) l = l * w;
          out[0] = l;
        } else {
          out[0] = zero;
        }
      }, s);
      sum += s[0];
    }
    return sum / static_cast<double>(C);
  }
};

// multi_margin_loss(x, y): l = (w_y / C) sum_{c != y} max(margin - x_y + x_c, 0)^p,
// p in {1, 2}; dl/dx_c = (w_y / C) [z_c > 0] (p = 1 ? 1 : 2 z_c) for c != y,
// dl/dx_y = -sum of those.
struct MultiMargin : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::Index;
  template <class T>
  struct Params {
    bool square;
    T margin;
    Params(const double* o, int64_t) : square(o[0] == 2), margin(static_cast<T>(o[1])) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P& p, const RowScalars& rs, RowError*) {
    using V = typename VecOf<T>::type;
    constexpr int L = kLanes<T>;
    const int64_t C = v.classes;
    const T base = p.margin - v.x[rs.y];
    T iota_[L];
    for (int l = 0; l < L; ++l) iota_[l] = static_cast<T>(l);
    const V iota = load<V>(iota_);
    const T fy = static_cast<T>(rs.y);  // exact: C < 2^24 is checked by the caller for float32
    double sum = 0, dsum = 0;
    const T coef = static_cast<T>(rs.wy * rs.scale / static_cast<double>(C));
    for (int64_t c0 = 0; c0 < C; c0 += kClassBlock) {
      const int64_t n = C - c0 < kClassBlock ? C - c0 : kClassBlock;
      double s[2];
      slot_sums<2, T>(n, [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const int64_t c = c0 + i;
        W_ index;
        if constexpr (sizeof(W_) == sizeof(T)) index = static_cast<T>(c);
        else index = iota + splat<W_>(static_cast<T>(c));
        const W_ zero = splat<W_>(0);
        const W_ z = splat<W_>(base) + load<W_>(v.x + c);
        const auto on = (z > zero) & (index != splat<W_>(fy));
        const W_ zp = select(on, z, zero);
        out[0] = p.square ? zp * zp : zp;
        const W_ dz = p.square ? splat<W_>(2) * zp : select(on, splat<W_>(1), zero);
        out[1] = dz;
        if constexpr (kGrad) store(v.g + c, dz * splat<W_>(coef));
      }, s);
      sum += s[0];
      dsum += s[1];
    }
    if constexpr (kGrad) v.g[rs.y] = static_cast<T>(-(dsum * static_cast<double>(coef)));
    return rs.wy * sum / static_cast<double>(C);
  }
};

// multilabel_margin_loss(x, y): the targets of a row are its class indices up
// to the first -1 (every index of the row must lie in [-1, C)); with J that
// set (duplicates counted as torch does),
//   l = (1/C) sum_{j in targets} sum_{i not in J} max(1 - (x_j - x_i), 0),
//   dl/dx_i += [z > 0] / C, dl/dx_j -= [z > 0] / C.
struct MultilabelMargin : RowLossBase {
  static constexpr RowTarget kTarget = RowTarget::IndexRows;
  template <class T>
  struct Params {
    Params(const double*, int64_t) {}
  };
  template <bool kValue, bool kGrad, class T, class P>
  static double row(const RowView<T>& v, const P&, const RowScalars& rs, RowError* err) {
    const int64_t C = v.classes;
    const int64_t* y = v.trow;
    for (int64_t c = 0; c < C; ++c)
      if (y[c] < -1 || y[c] >= C) {
        err->failed = true;
        err->value = y[c];
        return 0;
      }
    int64_t count = 0;
    while (count < C && y[count] >= 0) ++count;
    // "Is a target" (1) in the gradient row (or the scratch row), then
    // "is not a target" in the scratch row.
    T* g = v.g;
    T* other = v.scratch;  // C elements of the driver's scratch
    T* mask = kGrad ? g : other;
    for (int64_t c = 0; c < C; ++c) mask[c] = T(0);
    for (int64_t j = 0; j < count; ++j) mask[y[j]] = T(1);
    // Non-targets as 1, targets as 0.
    for (int64_t c = 0; c < C; ++c) other[c] = T(1) - mask[c];
    if constexpr (kGrad)
      for (int64_t c = 0; c < C; ++c) g[c] = T(0);
    const T scale = static_cast<T>(rs.scale / static_cast<double>(C));
    double sum = 0;
    for (int64_t j = 0; j < count; ++j) {
      const T base = T(1) - v.x[y[j]];
      double s[2];
      slot_sums<2, T>(C, [&](int64_t i, auto* out) {
        using W_ = std::remove_pointer_t<decltype(out)>;
        const W_ zero = splat<W_>(0);
        const W_ o = load<W_>(other + i);
        const W_ z = splat<W_>(base) + load<W_>(v.x + i);
        const auto on = (z > zero) & (o != zero);
        out[0] = select(on, z, zero);
        const W_ hit = select(on, splat<W_>(1), zero);
        out[1] = hit;
        if constexpr (kGrad) store(g + i, load<W_>(g + i) + hit * splat<W_>(scale));
      }, s);
      sum += s[0];
      if constexpr (kGrad) g[y[j]] = static_cast<T>(static_cast<double>(g[y[j]]) - s[1] * static_cast<double>(scale));
    }
    (void)rs;
    return sum / static_cast<double>(C);
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
