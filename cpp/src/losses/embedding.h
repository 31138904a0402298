// Feature-axis losses and distances (torch 2.13's formulas): pairwise_distance,
// cosine_distance, cosine_embedding_loss, triplet_margin_loss and the
// cosine-distance triplet of triplet_margin_with_distance_loss.
//
// Their rows are the last axis of two or three operands (RowwiseCall::inputs,
// the cube (rows, features, 1)), with per-row scalars (a ±1 target, the
// row's grad_output). The class-axis driver (simd/rowwise_driver.h) walks one
// row operand, so these losses have their own small row loop here:
//
//   blocks   rows are cut into blocks of a fixed number of rows (a function
//            of the feature count only); threads take whole blocks
//            (detail::parallel_for); a block adds its rows' losses in row
//            order into four double accumulators (row k into k mod 4), and
//            the blocks are added in block order: bitwise identical results
//            for any thread count.
//   rows     a row's sums over its features are taken in T in 16 fixed
//            slots (position i into slot i mod 16), segment by segment
//            (kSegment features), each segment's slots added in double, the
//            16 slots then added as a fixed pairwise tree: the same order on
//            every ISA level (plain loops the compiler vectorises across
//            slots; no FMA contraction, -ffp-contract=off).
//   strides  rows may have any row stride (0: a broadcast operand); a row
//            whose feature axis is not contiguous is copied into a scratch
//            row first (and its gradient copied back).
//
// A row's scalars (norms, distances, the loss) are formed in T as torch forms
// them from its reductions; gradients are written in T.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "fastloss/fastloss.h"
#include "simd/kernel_table.h"
#include "simd/parallel.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp
}

namespace FASTLOSS_ISA_NS {
namespace embedding {

constexpr int kSlots = 16;
constexpr int64_t kSegment = 1024;  // features summed in T before their slots go to double
constexpr int64_t kBlockElements = 16384;
constexpr int64_t kMaxBlockRows = 1024;
constexpr int64_t kRoundBlocks = 1024;

inline int64_t block_rows(int64_t features) {
  const int64_t f = features > 1 ? features : 1;
  const int64_t rows = kBlockElements / f;
  return rows < 1 ? 1 : (rows > kMaxBlockRows ? kMaxBlockRows : rows);
}

// Branch-free (both comparisons always evaluated), so the loops vectorise
// under -ftrapping-math.
inline float abs_of(float x) { return __builtin_fabsf(x); }
inline double abs_of(double x) { return __builtin_fabs(x); }
template <class T>
inline T sign_of(T x) {  // torch's sgn: 0 for 0 and NaN
  return static_cast<T>(static_cast<int>(x > T(0)) - static_cast<int>(x < T(0)));
}
inline float sqrt_of(float x) { return __builtin_sqrtf(x); }
inline double sqrt_of(double x) { return __builtin_sqrt(x); }
inline float pow_of(float x, float y) { return __builtin_powf(x, y); }
inline double pow_of(double x, double y) { return __builtin_pow(x, y); }

// K sums over positions [0, n): f(i, terms) writes position i's K terms.
template <int K, class T, class F>
inline void row_sums(int64_t n, F&& f, double* out) {
  double total[K][kSlots];
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < kSlots; ++j) total[k][j] = 0;
  for (int64_t s0 = 0; s0 < n; s0 += kSegment) {
    const int64_t end = s0 + kSegment < n ? s0 + kSegment : n;
    T acc[K][kSlots];
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < kSlots; ++j) acc[k][j] = T(0);
    int64_t i = s0;
    for (; i + kSlots <= end; i += kSlots) {
      for (int j = 0; j < kSlots; ++j) {
        T t[K];
        f(i + j, t);
        for (int k = 0; k < K; ++k) acc[k][j] += t[k];
      }
    }
    for (int j = 0; i < end; ++i, ++j) {
      T t[K];
      f(i, t);
      for (int k = 0; k < K; ++k) acc[k][j] += t[k];
    }
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < kSlots; ++j) total[k][j] += static_cast<double>(acc[k][j]);
  }
  for (int k = 0; k < K; ++k) {
    for (int width = kSlots / 2; width > 0; width /= 2)
      for (int j = 0; j < width; ++j) total[k][j] += total[k][j + width];
    out[k] = total[k][0];
  }
}

// K maxima of |terms| (NaN wins, as torch's amax): exact, so any order.
template <int K, class T, class F>
inline void row_maxima(int64_t n, F&& f, T* out) {
  for (int k = 0; k < K; ++k) out[k] = T(0);
  for (int64_t i = 0; i < n; ++i) {
    T t[K];
    f(i, t);
    for (int k = 0; k < K; ++k) {
      const T a = abs_of(t[k]);
      out[k] = (a > out[k] || a != a) ? a : out[k];
    }
  }
}

// ---- the p-norm distance of torch's pairwise_distance: ||x1 - x2 + eps||_p,
// and norm_backward's gradient of it, case by case as torch (p = 1, 2, inf,
// p < 1, 1 < p < 2, p > 2).
enum class PKind { One, Two, Inf, Below1, Below2, Above2 };

inline PKind kind_of(double p) {
  if (p == 1.0) return PKind::One;
  if (p == 2.0) return PKind::Two;
  if (p == __builtin_inf()) return PKind::Inf;
  if (p < 1.0) return PKind::Below1;
  if (p < 2.0) return PKind::Below2;
  return PKind::Above2;
}

template <PKind kKind, class T>
struct PNorm {
  T p, eps;
  double pd;
  // The summed term of a difference d.
  T term(T d) const {
    if constexpr (kKind == PKind::One) return abs_of(d);
    else if constexpr (kKind == PKind::Two) return d * d;
    else return pow_of(abs_of(d), p);
  }
  // The norm from the summed terms (Inf: the maximum itself).
  T finish(double s) const {
    if constexpr (kKind == PKind::One || kKind == PKind::Inf) return static_cast<T>(s);
    else if constexpr (kKind == PKind::Two) return static_cast<T>(__builtin_sqrt(s));
    else return static_cast<T>(__builtin_pow(s, 1.0 / pd));
  }
  // Per row: what the gradient of each element needs besides d.
  struct Row {
    T dist, scale;  // scale: the row factor of norm_backward (Inf: 1 / count)
  };
  Row row(T dist) const {
    Row r{dist, T(0)};
    if constexpr (kKind == PKind::Two) r.scale = dist == T(0) ? T(0) : T(1) / dist;
    else if constexpr (kKind == PKind::Below1) r.scale = pow_of(dist, T(1) - p);
    else if constexpr (kKind == PKind::Below2 || kKind == PKind::Above2)
      r.scale = dist == T(0) ? T(0) : T(1) / pow_of(dist, p - T(1));
    return r;
  }
  // d dist / d d at one element.
  T weight(T d, const Row& r) const {
    if constexpr (kKind == PKind::One) return sign_of(d);
    else if constexpr (kKind == PKind::Two) return d * r.scale;
    else if constexpr (kKind == PKind::Inf) {
      const T a = abs_of(d);
      return (a == r.dist || a != a) ? sign_of(d) * r.scale : T(0);
    } else if constexpr (kKind == PKind::Below1) {
      return d == T(0) ? T(0) : sign_of(d) * pow_of(abs_of(d), p - T(1)) * r.scale;
    } else if constexpr (kKind == PKind::Below2) {
      return sign_of(d) * pow_of(abs_of(d), p - T(1)) * r.scale;
    } else {
      return d * pow_of(abs_of(d), p - T(2)) * r.scale;
    }
  }
};

// Distances of `count` (1..3) pairs (u_k - v_k + eps) of one row.
template <PKind kKind, class T, int kCount>
inline void pnorm_distances(const PNorm<kKind, T>& pn, const T* const* u, const T* const* v, int64_t n, T* dist) {
  const T eps = pn.eps;
  if constexpr (kKind == PKind::Inf) {
    row_maxima<kCount, T>(n, [&](int64_t i, T* t) {
      for (int k = 0; k < kCount; ++k) t[k] = u[k][i] - v[k][i] + eps;
    }, dist);
  } else {
    double s[kCount];
    row_sums<kCount, T>(n, [&](int64_t i, T* t) {
      for (int k = 0; k < kCount; ++k) t[k] = pn.term(u[k][i] - v[k][i] + eps);
    }, s);
    for (int k = 0; k < kCount; ++k) dist[k] = pn.finish(s[k]);
  }
}

// p = inf: how many elements of u - v + eps are at the maximum (or NaN).
template <class T>
inline T inf_count(const T* u, const T* v, T eps, T dist, int64_t n) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    const T a = abs_of(u[i] - v[i] + eps);
    count += (a == dist || a != a) ? 1 : 0;
  }
  return static_cast<T>(count);
}

// ---- cosine similarity as torch's cosine_similarity (eps 1e-8: each norm
// clamped at eps; the clamp is invisible to autograd) and as
// cosine_embedding_loss's (eps 1e-12 added to each squared norm).
template <class T>
struct CosineRow {
  T cos;
  T a, b;  // d cos / d u = a * v - b * u   (and d cos / d v = a * u - c * v)
  T c;
};

template <class T>
inline CosineRow<T> cosine_similarity(double dot, double uu, double vv) {
  const T eps = T(1e-8);
  const T nu = sqrt_of(static_cast<T>(uu)), nv = sqrt_of(static_cast<T>(vv));
  const T nuc = nu > eps ? nu : eps, nvc = nv > eps ? nv : eps;  // a NaN norm stays NaN (clamp_min)
  const T nu_c = nu != nu ? nu : nuc, nv_c = nv != nv ? nv : nvc;
  CosineRow<T> r;
  r.cos = static_cast<T>(dot) / (nu_c * nv_c);
  r.a = T(1) / (nu_c * nv_c);
  r.b = nu == T(0) ? T(0) : r.cos / (nu_c * nu);
  r.c = nv == T(0) ? T(0) : r.cos / (nv_c * nv);
  return r;
}

template <class T>
inline CosineRow<T> cosine_embedding_similarity(double dot, double uu, double vv) {
  const T eps = static_cast<T>(1e-12);
  const T mu = static_cast<T>(uu) + eps, mv = static_cast<T>(vv) + eps;
  const T denom = sqrt_of(mu * mv);
  CosineRow<T> r;
  r.cos = static_cast<T>(dot) / denom;
  r.a = T(1) / denom;
  r.b = r.cos / mu;
  r.c = r.cos / mv;
  return r;
}

// ---- the driver

template <class T>
struct Rows {
  const T* x[kMaxRowInputs];  // contiguous rows
  T* g[kMaxRowInputs];        // contiguous gradient rows (null: not wanted)
  int64_t n;                  // features
  T target;                   // the row's target (cosine_embedding_loss)
  T scale;                    // d result / d row loss (grad_output, 1/rows for mean)
};

struct BlockResult {
  double loss;
};

template <class T, class Loss>
struct Runner {
  const RowwiseCall* call;
  const Loss* loss;
  int inputs;
  bool value, grad;
  double grad_scale;
  int64_t rows, rows_per_block, first;
  BlockResult* results;

  static void blocks(void* context, int64_t begin, int64_t end) {
    const Runner& self = *static_cast<const Runner*>(context);
    if (self.value && self.grad) self.template run<true, true>(begin, end);
    else if (self.grad) self.template run<false, true>(begin, end);
    else self.template run<true, false>(begin, end);
  }

  template <bool kValue, bool kGrad>
  void run(int64_t begin, int64_t end) const {
    const RowwiseCall& c = *call;
    const int64_t n = c.classes;
    bool gather = false;
    for (int k = 0; k < inputs; ++k)
      gather = gather || (c.inputs[k].strides[1] != 1 || (kGrad && c.grads[k].strides[1] != 1));
    gather = gather && n > 1;
    T* scratch = nullptr;
    if (gather) scratch = static_cast<T*>(std::malloc(static_cast<size_t>(2 * kMaxRowInputs * n) * sizeof(T)));
    for (int64_t b = begin; b < end; ++b) {
      const int64_t r0 = (first + b) * rows_per_block;
      const int64_t r1 = r0 + rows_per_block < rows ? r0 + rows_per_block : rows;
      double acc[4] = {0, 0, 0, 0};
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t on = r / c.inner, os = r % c.inner;
        Rows<T> rw;
        rw.n = n;
        for (int k = 0; k < kMaxRowInputs; ++k) {
          rw.x[k] = nullptr;
          rw.g[k] = nullptr;
        }
        T* gout[kMaxRowInputs] = {nullptr, nullptr, nullptr};
        for (int k = 0; k < inputs; ++k) {
          const RowArray& a = c.inputs[k];
          const T* src = static_cast<const T*>(a.data) + on * a.strides[0] + os * a.strides[2];
          if (gather) {
            T* row = scratch + k * n;
            for (int64_t i = 0; i < n; ++i) row[i] = src[i * a.strides[1]];
            rw.x[k] = row;
          } else {
            rw.x[k] = src;
          }
          if constexpr (kGrad) {
            const RowArray& ga = c.grads[k];
            gout[k] = static_cast<T*>(ga.data) + on * ga.strides[0] + os * ga.strides[2];
            rw.g[k] = gather ? scratch + (kMaxRowInputs + k) * n : gout[k];
          }
        }
        rw.target = c.target.data != nullptr
                        ? *(static_cast<const T*>(c.target.data) + on * c.target.strides[0] + os * c.target.strides[2])
                        : T(0);
        if constexpr (kGrad) {
          double g = grad_scale;
          if (c.grad_output.data != nullptr)
            g *= static_cast<double>(*(static_cast<const T*>(c.grad_output.data) + on * c.grad_output.strides[0] +
                                       os * c.grad_output.strides[2]));
          rw.scale = static_cast<T>(g);
        } else {
          rw.scale = T(0);
        }
        const T l = loss->template row<kValue, kGrad>(rw);
        if constexpr (kGrad) {
          if (gather)
            for (int k = 0; k < inputs; ++k)
              for (int64_t i = 0; i < n; ++i) gout[k][i * c.grads[k].strides[1]] = rw.g[k][i];
        }
        if constexpr (kValue) {
          if (c.loss_out.data != nullptr)
            *(static_cast<T*>(c.loss_out.data) + on * c.loss_out.strides[0] + os * c.loss_out.strides[2]) = l;
          else
            acc[(r - r0) & 3] += static_cast<double>(l);
        }
      }
      results[b].loss = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    std::free(scratch);
  }
};

// Runs `loss` (row<kValue, kGrad>(Rows) -> the row's loss) over every row.
template <class T, class Loss>
RowTotals drive(const RowwiseCall& c, const Loss& loss, int inputs) {
  RowTotals totals;
  const int64_t rows = c.outer * c.inner;
  totals.denominator = static_cast<double>(rows);
  if (rows == 0) return totals;
  Runner<T, Loss> run;
  run.call = &c;
  run.loss = &loss;
  run.inputs = inputs;
  run.value = c.want_value;
  run.grad = c.want_grad;
  // IEEE division for the mean (rows > 0 here).
  run.grad_scale = c.reduction == Reduction::Mean ? c.grad_scale / static_cast<double>(rows) : c.grad_scale;
  run.rows = rows;
  run.rows_per_block = block_rows(c.classes);
  const int64_t nblocks = (rows + run.rows_per_block - 1) / run.rows_per_block;
  const int threads = nblocks > 1 ? detail::threads_for(rows * (c.classes > 1 ? c.classes : 1) * inputs) : 1;
  BlockResult results[kRoundBlocks];
  run.results = results;
  double total = 0;
  for (int64_t first = 0; first < nblocks; first += kRoundBlocks) {
    const int64_t count = nblocks - first < kRoundBlocks ? nblocks - first : kRoundBlocks;
    run.first = first;
    if (threads > 1 && count > 1)
      detail::parallel_for(count, threads, 1, &Runner<T, Loss>::blocks, &run);
    else
      Runner<T, Loss>::blocks(&run, 0, count);
    for (int64_t k = 0; k < count; ++k) total += results[k].loss;
  }
  totals.loss = total;
  return totals;
}

// ---- the losses: row<kValue, kGrad>(Rows) -> the row's loss in T.

// pairwise_distance(x1, x2) = ||x1 - x2 + eps||_p.
template <PKind kKind, class T>
struct PairwiseRow {
  PNorm<kKind, T> pn;
  static PairwiseRow make(const PNorm<kKind, T>& pn, const double*) { return PairwiseRow{pn}; }
  template <bool kValue, bool kGrad>
  T row(const Rows<T>& r) const {
    T dist;
    pnorm_distances<kKind, T, 1>(pn, &r.x[0], &r.x[1], r.n, &dist);
    if constexpr (kGrad) {
      const PNorm<kKind, T> pn = this->pn;  // a local: the loop's stores cannot change it
      auto pr = pn.row(dist);
      if constexpr (kKind == PKind::Inf) pr.scale = T(1) / inf_count(r.x[0], r.x[1], pn.eps, dist, r.n);
      const T s = r.scale;
      // (restrict: the gradient rows never overlap the inputs; without it
      // the loop's alias checks exceed GCC's limit and it stays scalar)
      const T* __restrict u = r.x[0];
      const T* __restrict v = r.x[1];
      T* __restrict gu = r.g[0];
      T* __restrict gv = r.g[1];
      for (int64_t i = 0; i < r.n; ++i) {
        const T w = s * pn.weight(u[i] - v[i] + pn.eps, pr);
        gu[i] = w;
        gv[i] = -w;
      }
    }
    return dist;
  }
};

// cosine_distance(x1, x2) = 1 - cosine_similarity(x1, x2).
template <class T>
struct CosineDistanceRow {
  template <bool kValue, bool kGrad>
  T row(const Rows<T>& r) const {
    const T* u = r.x[0];
    const T* v = r.x[1];
    double s[3];
    row_sums<3, T>(r.n, [&](int64_t i, T* t) {
      t[0] = u[i] * v[i];
      t[1] = u[i] * u[i];
      t[2] = v[i] * v[i];
    }, s);
    const CosineRow<T> cr = cosine_similarity<T>(s[0], s[1], s[2]);
    if constexpr (kGrad) {
      const T g = -r.scale;
      const T a = g * cr.a, b = g * cr.b, c = g * cr.c;
      const T* __restrict ur = u;
      const T* __restrict vr = v;
      T* __restrict gu = r.g[0];
      T* __restrict gv = r.g[1];
      for (int64_t i = 0; i < r.n; ++i) {
        gu[i] = a * vr[i] - b * ur[i];
        gv[i] = a * ur[i] - c * vr[i];
      }
    }
    return T(1) - cr.cos;
  }
};

// cosine_embedding_loss: 1 - cos (target 1), max(cos - margin, 0) (target -1).
template <class T>
struct CosineEmbeddingRow {
  T margin;
  template <bool kValue, bool kGrad>
  T row(const Rows<T>& r) const {
    const T* u = r.x[0];
    const T* v = r.x[1];
    double s[3];
    row_sums<3, T>(r.n, [&](int64_t i, T* t) {
      t[0] = u[i] * v[i];
      t[1] = u[i] * u[i];
      t[2] = v[i] * v[i];
    }, s);
    const CosineRow<T> cr = cosine_embedding_similarity<T>(s[0], s[1], s[2]);
    const bool positive = r.target == T(1);
    const T z = cr.cos - margin;
    // clamp_min's gradient passes at z == 0 (torch: self >= min).
    const T value = positive ? T(1) - cr.cos : (z > T(0) ? z : (z == z ? T(0) : z));
    if constexpr (kGrad) {
      const T g = positive ? -r.scale : (z >= T(0) ? r.scale : T(0));
      const T a = g * cr.a, b = g * cr.b, c = g * cr.c;
      const T* __restrict ur = u;
      const T* __restrict vr = v;
      T* __restrict gu = r.g[0];
      T* __restrict gv = r.g[1];
      for (int64_t i = 0; i < r.n; ++i) {
        gu[i] = a * vr[i] - b * ur[i];
        gv[i] = a * ur[i] - c * vr[i];
      }
    }
    return value;
  }
};

// The triplet: l = max(margin + d(a, p) - dn, 0), dn = d(a, n), or with swap
// min(d(a, n), d(p, n)) (torch.minimum's gradient: half to each on a tie).
template <class T>
struct TripletParts {
  T dap, dan, dpn;
  T value;
  T cap, can, cpn;  // d l / d distance, times the row's scale
};

template <class T>
inline TripletParts<T> triplet_parts(T margin, bool swap, T dap, T dan, T dpn, T scale) {
  TripletParts<T> t{dap, dan, dpn, T(0), T(0), T(0), T(0)};
  T dn = dan;
  T san = T(1), spn = T(0);
  if (swap) {
    // torch.minimum: NaN wins; ties split the gradient.
    dn = (dan != dan || dpn != dpn) ? (dan != dan ? dan : dpn) : (dpn < dan ? dpn : dan);
    san = dan == dpn ? T(0.5) : (dan > dpn ? T(0) : T(1));
    spn = dan == dpn ? T(0.5) : (dan < dpn ? T(0) : T(1));
  }
  const T z = margin + dap - dn;
  t.value = z > T(0) ? z : (z == z ? T(0) : z);
  const T active = z >= T(0) ? scale : T(0);
  t.cap = active;
  t.can = -active * san;
  t.cpn = -active * spn;
  return t;
}

// The triplet's gradient rows from the three distances' d l / d distance
// (plain restrict pointers and by-value scalars: the loop vectorises).
template <PKind kKind, class T, bool kSwap>
inline void triplet_grads(int64_t count, const T* __restrict a, const T* __restrict p, const T* __restrict n,
                          T* __restrict ga, T* __restrict gp, T* __restrict gn, const PNorm<kKind, T> pn,
                          const typename PNorm<kKind, T>::Row rap, const typename PNorm<kKind, T>::Row ran,
                          const typename PNorm<kKind, T>::Row rpn, const T cap, const T can, const T cpn) {
  const T eps = pn.eps;
  for (int64_t i = 0; i < count; ++i) {
    const T wap = cap * pn.weight(a[i] - p[i] + eps, rap);
    const T wan = can * pn.weight(a[i] - n[i] + eps, ran);
    if constexpr (kSwap) {
      const T wpn = cpn * pn.weight(p[i] - n[i] + eps, rpn);
      ga[i] = wap + wan;
      gp[i] = wpn - wap;
      gn[i] = -wan - wpn;
    } else {
      ga[i] = wap + wan;
      gp[i] = -wap;
      gn[i] = -wan;
    }
  }
}

template <PKind kKind, class T>
struct TripletRow {
  PNorm<kKind, T> pn;
  T margin;
  bool swap;
  static TripletRow make(const PNorm<kKind, T>& pn, const double* o) {
    return TripletRow{pn, static_cast<T>(o[0]), o[3] != 0.0};
  }
  template <bool kValue, bool kGrad>
  T row(const Rows<T>& r) const {
    const T* a = r.x[0];
    const T* p = r.x[1];
    const T* n = r.x[2];
    T dist[3] = {T(0), T(0), T(0)};
    if (swap) {
      const T* u[3] = {a, a, p};
      const T* v[3] = {p, n, n};
      pnorm_distances<kKind, T, 3>(pn, u, v, r.n, dist);
    } else {
      const T* u[2] = {a, a};
      const T* v[2] = {p, n};
      pnorm_distances<kKind, T, 2>(pn, u, v, r.n, dist);
    }
    const TripletParts<T> tp = triplet_parts<T>(margin, swap, dist[0], dist[1], dist[2], r.scale);
    if constexpr (kGrad) {
      const PNorm<kKind, T> pn = this->pn;  // a local: the loop's stores cannot change it
      auto rap = pn.row(dist[0]), ran = pn.row(dist[1]), rpn = pn.row(dist[2]);
      const T eps = pn.eps;
      if constexpr (kKind == PKind::Inf) {
        rap.scale = T(1) / inf_count(a, p, eps, dist[0], r.n);
        ran.scale = T(1) / inf_count(a, n, eps, dist[1], r.n);
        if (swap) rpn.scale = T(1) / inf_count(p, n, eps, dist[2], r.n);
      }
      if (swap)
        triplet_grads<kKind, T, true>(r.n, a, p, n, r.g[0], r.g[1], r.g[2], pn, rap, ran, rpn, tp.cap, tp.can,
                                      tp.cpn);
      else
        triplet_grads<kKind, T, false>(r.n, a, p, n, r.g[0], r.g[1], r.g[2], pn, rap, ran, rpn, tp.cap, tp.can,
                                       tp.cpn);
    }
    return tp.value;
  }
};

// The cosine triplet's gradient rows (k: -d l / d distance of each pair).
template <class T, bool kSwap>
inline void triplet_cosine_grads(int64_t count, const T* __restrict a, const T* __restrict p, const T* __restrict n,
                                 T* __restrict ga, T* __restrict gp, T* __restrict gn, const CosineRow<T> ap,
                                 const CosineRow<T> an, const CosineRow<T> pn, const T kap, const T kan,
                                 const T kpn) {
  for (int64_t i = 0; i < count; ++i) {
    const T gap_a = kap * (ap.a * p[i] - ap.b * a[i]), gap_p = kap * (ap.a * a[i] - ap.c * p[i]);
    const T gan_a = kan * (an.a * n[i] - an.b * a[i]), gan_n = kan * (an.a * a[i] - an.c * n[i]);
    if constexpr (kSwap) {
      const T gpn_p = kpn * (pn.a * n[i] - pn.b * p[i]), gpn_n = kpn * (pn.a * p[i] - pn.c * n[i]);
      ga[i] = gap_a + gan_a;
      gp[i] = gap_p + gpn_p;
      gn[i] = gan_n + gpn_n;
    } else {
      ga[i] = gap_a + gan_a;
      gp[i] = gap_p;
      gn[i] = gan_n;
    }
  }
}

// The triplet with cosine_distance (triplet_margin_with_distance_loss).
template <class T>
struct TripletCosineRow {
  T margin;
  bool swap;
  template <bool kValue, bool kGrad>
  T row(const Rows<T>& r) const {
    const T* a = r.x[0];
    const T* p = r.x[1];
    const T* n = r.x[2];
    double s[6];
    if (swap) {
      row_sums<6, T>(r.n, [&](int64_t i, T* t) {
        t[0] = a[i] * p[i];
        t[1] = a[i] * n[i];
        t[2] = p[i] * n[i];
        t[3] = a[i] * a[i];
        t[4] = p[i] * p[i];
        t[5] = n[i] * n[i];
      }, s);
    } else {
      double q[5];
      row_sums<5, T>(r.n, [&](int64_t i, T* t) {
        t[0] = a[i] * p[i];
        t[1] = a[i] * n[i];
        t[2] = a[i] * a[i];
        t[3] = p[i] * p[i];
        t[4] = n[i] * n[i];
      }, q);
      s[0] = q[0];
      s[1] = q[1];
      s[2] = 0;
      s[3] = q[2];
      s[4] = q[3];
      s[5] = q[4];
    }
    const CosineRow<T> ap = cosine_similarity<T>(s[0], s[3], s[4]);
    const CosineRow<T> an = cosine_similarity<T>(s[1], s[3], s[5]);
    const CosineRow<T> pn = swap ? cosine_similarity<T>(s[2], s[4], s[5]) : CosineRow<T>{T(0), T(0), T(0), T(0)};
    const TripletParts<T> tp = triplet_parts<T>(margin, swap, T(1) - ap.cos, T(1) - an.cos, T(1) - pn.cos, r.scale);
    if constexpr (kGrad) {
      // d (1 - cos(u, v)) / d u = -(a v - b u); / d v = -(a u - c v).
      if (swap)
        triplet_cosine_grads<T, true>(r.n, a, p, n, r.g[0], r.g[1], r.g[2], ap, an, pn, -tp.cap, -tp.can, -tp.cpn);
      else
        triplet_cosine_grads<T, false>(r.n, a, p, n, r.g[0], r.g[1], r.g[2], ap, an, pn, -tp.cap, -tp.can,
                                       -tp.cpn);
    }
    return tp.value;
  }
};

// ---- the table's functors: run<T>(call) picks the row math from the options.

// Runs Row<kind of p, T>::make(pnorm, options) over the call.
template <class T, template <PKind, class> class Row>
RowTotals with_pnorm(const RowwiseCall& c, double p, double eps, int inputs) {
  switch (kind_of(p)) {
#define FASTLOSS_PNORM_CASE(K)                                             \
  case PKind::K: {                                                         \
    const PNorm<PKind::K, T> pn{static_cast<T>(p), static_cast<T>(eps), p}; \
    const Row<PKind::K, T> row = Row<PKind::K, T>::make(pn, c.options);    \
    return drive<T>(c, row, inputs);                                       \
  }
    FASTLOSS_PNORM_CASE(One)
    FASTLOSS_PNORM_CASE(Two)
    FASTLOSS_PNORM_CASE(Inf)
    FASTLOSS_PNORM_CASE(Below1)
    FASTLOSS_PNORM_CASE(Below2)
    FASTLOSS_PNORM_CASE(Above2)
#undef FASTLOSS_PNORM_CASE
  }
  return RowTotals{};
}

}  // namespace embedding

// losses.h's rows. Options as listed there.
struct PairwiseDistance {  // p eps
  template <class T>
  static RowTotals run(const RowwiseCall& c) {
    return embedding::with_pnorm<T, embedding::PairwiseRow>(c, c.options[0], c.options[1], 2);
  }
};

struct CosineDistance {
  template <class T>
  static RowTotals run(const RowwiseCall& c) {
    return embedding::drive<T>(c, embedding::CosineDistanceRow<T>{}, 2);
  }
};

struct CosineEmbedding {  // margin
  template <class T>
  static RowTotals run(const RowwiseCall& c) {
    return embedding::drive<T>(c, embedding::CosineEmbeddingRow<T>{static_cast<T>(c.options[0])}, 2);
  }
};

struct TripletMargin {  // margin p eps swap
  template <class T>
  static RowTotals run(const RowwiseCall& c) {
    return embedding::with_pnorm<T, embedding::TripletRow>(c, c.options[1], c.options[2], 3);
  }
};

struct TripletMarginCosine {  // margin swap
  template <class T>
  static RowTotals run(const RowwiseCall& c) {
    return embedding::drive<T>(
        c, embedding::TripletCosineRow<T>{static_cast<T>(c.options[0]), c.options[1] != 0.0}, 3);
  }
};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
