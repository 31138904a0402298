// The CTC loss of one sample (the sequence family), compiled per
// instruction-set level: the log-space forward (alpha) and backward (beta)
// recursions over the extended target l' = (blank, l1, blank, ..., lS, blank),
// vectorised over its L = 2S + 1 positions, accumulated in float64 for every
// dtype.
//
// Why float64: alpha and beta grow like t log C (about -35000 at T = 5000,
// C = 1000); float32 keeps ~0.004 absolute there, and the gradient
// exp(alpha + beta + nll - log_probs) inherits that error as a relative one.
// Each step's increment is small (in [0, log 3]): for float32 inputs it is
// computed in float32 lanes (see log_sum_exp3_pair), for float64 in float64.
//
// One step of the forward recursion, for every position s at once:
//   alpha_t(s) = e_t(s) + lse(alpha_{t-1}(s), alpha_{t-1}(s-1), alpha_{t-1}(s-2) + skip(s))
// with e_t(s) = log_probs[t, l'(s)] and skip(s) = 0 where s may be reached
// from s - 2 (a label that differs from the one before it), else -inf. A row
// keeps 2 cells of -inf before position 0 and -inf after L - 1, so the loads
// of s - 1, s - 2 (s + 1, s + 2 for beta) need no bounds tests and whole
// vectors run past L (to a multiple of 8) with no scalar tail: the cells past
// L read -inf and never feed back into positions below L.
//
// Gradient (torch's LossCTC.cpp formula): with beta including e_t(s) as alpha
// does, gamma_t(c) = sum_{s: l'(s) = c} exp(alpha_t(s) + beta_t(s) + nll - e_t(s)).
// beta runs backward in time over two rows; each time step's gamma terms
// are added per distinct class of the target in position order, and the
// gradient row is written at once: exp(log_probs) - gamma (torch) or -gamma
// (exact) for the target's classes, exp(log_probs) (torch: NaN where
// log_probs is -inf, as torch's formula gives) or -0 for every other class.
// No T x C x S temporary: alpha is stored (T x L per thread), beta is not.
#include <cmath>
#include <cstdint>
#include <limits>

#include "losses/ctc_sample.h"
#include "simd/kernel_table.h"
#include "simd/math.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// e^d for d <= 0, exactly 0 below kCut: no result or intermediate falls into
// the subnormal range, where x86 takes a microcode assist of ~100 cycles per
// instruction (flush-to-zero would change the caller's floating-point
// state). -inf terms are common (skip masks, unreachable positions).
template <int kCut, class D>
inline D exp_nonpositive(D d) {
  const D lo = splat<D>(static_cast<double>(kCut));
  const auto tiny = d < lo;
  return select(tiny, splat<D>(0), exp(select(tiny, lo, d)));
}

// log(e^a + e^b + e^c) as m + log1p(e^(mid - m) + e^(lo - m)), m the largest:
// two exps and a log1p, exact for -inf terms; all three -inf give -inf (NaN
// if any is NaN: a + b + c). Terms below e^-40 of the largest are dropped:
// 1 + 4e-18 is 1 in float64, so the sum cannot see them, and log1p of a
// tiny argument would square it into the subnormal range (a slow assist).
template <class D>
inline D log_sum_exp3(D a, D b, D c) {
  const D hi = select(a > b, a, b), lo = select(a > b, b, a);
  const D m = select(hi > c, hi, c), mid = select(hi > c, c, hi);
  const D r = m + log1p(exp_nonpositive<-40>(mid - m) + exp_nonpositive<-40>(lo - m));
  return select(m == splat<D>(kNegInf), a + b + c, r);
}

// log_sum_exp3 for two vectors of positions at once. float32 inputs (kF32):
// the increments log1p(e^(mid - m) + e^(lo - m)) in float32 lanes (math.h's
// exp and log1p, <= 1 ulp: ~6e-8 absolute per step, about sqrt(T) x that
// after T steps, 4e-6 at T = 5000, below float32's own resolution of the
// gradient), added to the float64 m: the accumulated alpha and beta stay
// float64, so their size (t log C) costs no accuracy. Terms below e^-25 of the
// largest are dropped (invisible in float32, and log1p would cube them into
// the subnormal range). float64 inputs: everything in float64.
typedef float VecHalfF __attribute__((vector_size(kVectorBytes / 2)));

template <bool kF32>
inline void log_sum_exp3_pair(const VecD (&a)[2], const VecD (&b)[2], const VecD (&c)[2], VecD (&r)[2]) {
  if constexpr (!kF32) {
    for (int k = 0; k < 2; ++k) r[k] = log_sum_exp3(a[k], b[k], c[k]);
  } else {
    constexpr int kW = kLanes<double>;
    VecD m[2];
    float x1[2 * kW], x2[2 * kW];
    for (int k = 0; k < 2; ++k) {
      const VecD hi = select(a[k] > b[k], a[k], b[k]), lo = select(a[k] > b[k], b[k], a[k]);
      m[k] = select(hi > c[k], hi, c[k]);
      const VecD mid = select(hi > c[k], c[k], hi);
      store(x1 + k * kW, __builtin_convertvector(mid - m[k], VecHalfF));
      store(x2 + k * kW, __builtin_convertvector(lo - m[k], VecHalfF));
    }
    const VecF l = log1p(exp_nonpositive<-25>(load<VecF>(x1)) + exp_nonpositive<-25>(load<VecF>(x2)));
    for (int k = 0; k < 2; ++k)
      r[k] = select(m[k] == splat<VecD>(kNegInf), a[k] + b[k] + c[k], m[k] + widen(l, k));
  }
}

template <class T>
inline double at(const T* p, int64_t i) {
  return static_cast<double>(p[i]);
}

template <class T>
double ctc_sample(const detail::CtcSample& p, double* work) {
  using VD = VecD;
  constexpr int kW = kLanes<double>;
  constexpr bool kF32 = sizeof(T) == sizeof(float);
  const T* lp = static_cast<const T*>(p.log_probs);
  const int64_t S = p.target_length, L = 2 * S + 1, Tn = p.length;
  const detail::CtcLayout lay = detail::ctc_layout(p.grad != nullptr ? Tn : 2, S, p.grad != nullptr);
  const int64_t R = lay.row, Lv = R - 8;  // positions computed per row (a multiple of 8)
  const int64_t* labels = p.labels;
  auto label_of = [&](int64_t s) { return (s & 1) ? labels[s >> 1] : p.blank; };

  double nll;
  double* const e = work + lay.emission;
  double* const skip = work + lay.skip;
  auto emissions = [&](int64_t t) {
    const T* row = lp + t * p.time_stride;
    const double b = at(row, p.blank * p.class_stride);
    for (int64_t j = 0; j < S; ++j) {
      e[2 * j] = b;
      e[2 * j + 1] = at(row, labels[j] * p.class_stride);
    }
    e[2 * S] = b;
  };
  auto alpha_row = [&](int64_t t) { return work + lay.alpha + (p.grad != nullptr ? t : (t & 1)) * R + 8; };
  // Positions [lo, hi) at time t: reached from the start (s <= 2t + 1) and
  // still able to reach the end (s >= L - 2 (length - t)); whole vectors
  // [lo_v, hi_v) around them are computed, the rest of a row is -inf (alpha
  // above the band, beta below it: exactly their values) or, below the band
  // for alpha and above it for beta, never read by a position of the band,
  // and multiplied by an exact 0 (the other variable's -inf) in gamma.
  struct Band {
    int64_t lo, hi, lo_v, hi_v;
  };
  auto band = [&](int64_t t) {
    Band b;
    b.lo = L - 2 * (Tn - t) > 0 ? L - 2 * (Tn - t) : 0;
    b.hi = 2 * t + 2 < L ? 2 * t + 2 : L;
    if (b.hi < b.lo) b.hi = b.lo;
    b.lo_v = b.lo / kW * kW;
    b.hi_v = (b.hi + kW - 1) / kW * kW;
    return b;
  };

  if (Tn == 0) {
    nll = S == 0 ? -0.0 : std::numeric_limits<double>::infinity();
  } else {
    for (int64_t s = 0; s < R; ++s) {
      e[s] = kNegInf;
      skip[s] = kNegInf;
    }
    for (int64_t s = 3; s < L; s += 2)
      if (labels[s >> 1] != labels[(s >> 1) - 1]) skip[s] = 0.0;
    emissions(0);
    double* a0 = alpha_row(0);
    for (int64_t s = -8; s < Lv; ++s) a0[s] = kNegInf;
    a0[0] = e[0];
    if (L > 1) a0[1] = e[1];
    for (int64_t t = 1; t < Tn; ++t) {
      emissions(t);
      const double* prev = alpha_row(t - 1);
      double* cur = alpha_row(t);
      const Band b = band(t);
      for (int64_t s = -8; s < b.lo_v; ++s) cur[s] = kNegInf;
      for (int64_t s = b.hi_v; s < Lv; ++s) cur[s] = kNegInf;
      for (int64_t s = b.lo_v; s < b.hi_v; s += 2 * kW) {
        // Two vectors per step; past hi_v the second repeats the first (never
        // stored), so nothing outside the row's computed cells is read.
        VD a[2], b1[2], c[2], r[2];
        for (int k = 0; k < 2; ++k) {
          const int64_t q = s + k * kW < b.hi_v ? s + k * kW : s;
          a[k] = load<VD>(prev + q);
          b1[k] = load<VD>(prev + q - 1);
          c[k] = load<VD>(prev + q - 2) + load<VD>(skip + q);
        }
        log_sum_exp3_pair<kF32>(a, b1, c, r);
        store(cur + s, r[0] + load<VD>(e + s));
        if (s + kW < b.hi_v) store(cur + s + kW, r[1] + load<VD>(e + s + kW));
      }
    }
    // As torch: -(m + log(e^(l1 - m) + e^(l2 - m))), m = 0 when both are -inf (nll = inf).
    const double* last = alpha_row(Tn - 1);
    const double l1 = last[L - 1], l2 = L > 1 ? last[L - 2] : kNegInf;
    double m = l1 > l2 ? l1 : l2;
    if (m == kNegInf) m = 0;
    nll = -(m + log(exp(l1 - m) + exp(l2 - m)));
  }
  if (p.grad == nullptr) return nll;

  T* const g = static_cast<T*>(p.grad);
  const int64_t gt = p.grad_time_stride, gc = p.grad_class_stride, C = p.classes;
  auto fill_rows = [&](int64_t from, int64_t to, T value) {
    for (int64_t t = from; t < to; ++t)
      for (int64_t c = 0; c < C; ++c) g[t * gt + c * gc] = value;
  };
  const bool finite = std::isfinite(nll);
  if (!(finite || Tn == 0)) {
    // No alignment (or NaN/inf inputs): torch's formula gives NaN at every
    // t < length; zero_infinity zeroes an infinite loss's gradient.
    const bool zero = p.zero_infinity && nll == std::numeric_limits<double>::infinity();
    fill_rows(0, Tn, zero ? T(0) : std::numeric_limits<T>::quiet_NaN());
    fill_rows(Tn, p.max_time, T(0));
    return nll;
  }
  if (Tn == 0) {
    fill_rows(0, p.max_time, T(0));
    return nll;
  }

  // Distinct classes of l' (blank first) and each position's class slot.
  int64_t* const classes = reinterpret_cast<int64_t*>(work + lay.classes);
  int32_t* const slot = reinterpret_cast<int32_t*>(work + lay.slot);
  double* const gamma = work + lay.gamma;
  double* const terms = work + lay.terms;
  int64_t distinct = 1;
  classes[0] = p.blank;
  for (int64_t s = 0; s < L; ++s) {
    const int64_t c = label_of(s);
    int64_t u = 0;
    while (u < distinct && classes[u] != c) ++u;
    if (u == distinct) classes[distinct++] = c;
    slot[s] = static_cast<int32_t>(u);
  }

  const double scale = p.grad_scale;
  const T tscale = static_cast<T>(scale);
  double* next = work + lay.beta;
  double* cur = next + R;
  for (int64_t s = 0; s < R; ++s) next[s] = cur[s] = kNegInf;
  for (int64_t t = Tn - 1; t >= 0; --t) {
    emissions(t);
    const Band bt = band(t);
    if (t == Tn - 1) {
      cur[L - 1] = e[L - 1];
      if (L > 1) cur[L - 2] = e[L - 2];
    } else {
      // beta_t(s) = e_t(s) + lse(beta_{t+1}(s), beta_{t+1}(s+1), beta_{t+1}(s+2) + skip(s+2))
      for (int64_t s = bt.lo_v; s < bt.hi_v; s += 2 * kW) {
        VD a[2], b1[2], c[2], r[2];
        for (int k = 0; k < 2; ++k) {
          const int64_t q = s + k * kW < bt.hi_v ? s + k * kW : s;
          a[k] = load<VD>(next + q);
          b1[k] = load<VD>(next + q + 1);
          c[k] = load<VD>(next + q + 2) + load<VD>(skip + q + 2);
        }
        log_sum_exp3_pair<kF32>(a, b1, c, r);
        store(cur + s, r[0] + load<VD>(e + s));
        if (s + kW < bt.hi_v) store(cur + s + kW, r[1] + load<VD>(e + s + kW));
      }
      cur[L] = cur[L + 1] = kNegInf;  // the cells past L stay -inf (NaN inputs must not feed back)
    }
    const double* a = alpha_row(t);
    const VD shift = splat<VD>(nll);
    // The posterior terms: float32 lanes for float32 inputs (posteriors below
    // e^-80 dropped: under float32's smallest normal), float64 otherwise.
    for (int64_t s = bt.lo_v; s < bt.hi_v; s += 2 * kW) {
      if constexpr (kF32) {
        float x[2 * kW];
        for (int k = 0; k < 2; ++k) {
          const int64_t q = s + k * kW < bt.hi_v ? s + k * kW : s;
          const VD v = load<VD>(a + q) + load<VD>(cur + q) + shift - load<VD>(e + q);
          store(x + k * kW, __builtin_convertvector(v, VecHalfF));
        }
        const VecF g = exp_nonpositive<-80>(load<VecF>(x));
        store(terms + s, widen(g, 0));
        if (s + kW < bt.hi_v) store(terms + s + kW, widen(g, 1));
      } else {
        for (int64_t q = s; q < s + 2 * kW && q < bt.hi_v; q += kW)
          store(terms + q, exp_nonpositive<-700>(load<VD>(a + q) + load<VD>(cur + q) + shift - load<VD>(e + q)));
      }
    }
    for (int64_t u = 0; u < distinct; ++u) gamma[u] = 0;
    for (int64_t s = bt.lo; s < bt.hi; ++s) gamma[slot[s]] += terms[s];

    // The gradient row: every class, then the target's classes again.
    const T* x = lp + t * p.time_stride;
    T* out = g + t * gt;
    if (p.exact) {
      for (int64_t c = 0; c < C; ++c) out[c * gc] = static_cast<T>(-0.0 * scale);
      for (int64_t u = 0; u < distinct; ++u) out[classes[u] * gc] = static_cast<T>(-gamma[u] * scale);
    } else {
      using VT = typename VecOf<T>::type;
      constexpr int kWT = kLanes<T>;
      const VT inf_neg = splat<VT>(-std::numeric_limits<T>::infinity()), nan = splat<VT>(std::numeric_limits<T>::quiet_NaN());
      int64_t c = 0;
      if (p.class_stride == 1 && gc == 1) {
        for (; c + kWT <= C; c += kWT) {
          const VT v = load<VT>(x + c);
          store(out + c, select(v == inf_neg, nan, exp(v)) * splat<VT>(tscale));
        }
      }
      for (; c < C; ++c) {
        const T v = x[c * p.class_stride];
        out[c * gc] = (v == -std::numeric_limits<T>::infinity() ? std::numeric_limits<T>::quiet_NaN() : exp(v)) * tscale;
      }
      // exp(log_probs) * scale is already there (rounded once, as torch's
      // float32 exp): subtract gamma * scale in float64 and round again.
      for (int64_t u = 0; u < distinct; ++u) {
        T& o = out[classes[u] * gc];
        o = static_cast<T>(static_cast<double>(o) - gamma[u] * scale);
      }
    }
    double* swap = next;
    next = cur;
    cur = swap;
  }
  fill_rows(Tn, p.max_time, T(0));
  return nll;
}

}  // namespace

void fill_ctc(detail::KernelTable& table) {
  table.ctc[static_cast<int>(DType::Float32)] = &ctc_sample<float>;
  table.ctc[static_cast<int>(DType::Float64)] = &ctc_sample<double>;
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
