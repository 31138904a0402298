// Elementary functions for the losses: exp, log, log1p, expm1, sigmoid,
// softplus, log_sigmoid, written once for a vector V (VecF, VecD) and its
// scalar element type (the tails), so every lane of every ISA level and the
// scalar tail compute the same operations in the same order.
//
// Design (why it looks like this):
// - Branch-free: every lane takes the same path; special inputs (NaN, +-inf,
//   +-0, negatives for log) are fixed with select() at the end.
// - float32 functions compute in float64 with shorter polynomials (relative
//   error < 2^-32 before the one rounding to float32), so they are correctly
//   rounded except within 2^-8 ulp of a tie: max error 0.51 ulp, denormal
//   results included (that last rounding is the only one).
// - float64 functions use Cody-Waite reductions with compensation terms and
//   the s = f / (2 + f) form of log (as fdlibm's e_log.c), no FMA: the build
//   has -ffp-contract=off and no explicit fma, so results are bitwise
//   identical on baseline (SSE2), avx2 and avx512 and in the scalar tail.
// - Polynomial coefficients: mpmath.chebyfit (near-minimax), degree chosen for
//   the precision (the comment at each table says the fitted function,
//   interval and error).
// - No SIMD constant lives at namespace scope (it would be initialised with
//   this ISA's instructions on a CPU that may not have them).
//
// Every name lives in fastloss::FASTLOSS_ISA_NS, like vec.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

namespace math_detail {

typedef uint64_t VecU64 __attribute__((vector_size(kVectorBytes)));

// Bit views of a double vector / scalar (unsigned: shifts are logical and
// overflow wraps).
inline VecU64 to_bits(VecD x) { return reinterpret_cast<VecU64>(x); }
inline VecD from_bits(VecU64 u) { return reinterpret_cast<VecD>(u); }
inline uint64_t to_bits(double x) {
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline double from_bits(uint64_t u) {
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <class D>
struct BitsOf {
  using type = VecU64;
};
template <>
struct BitsOf<double> {
  using type = uint64_t;
};
template <class D>
inline typename BitsOf<D>::type usplat(uint64_t u) {
  return typename BitsOf<D>::type{} + u;
}

// Horner evaluation of c[0] x^(N-1) + ... + c[N-1] (highest degree first, as
// mpmath.chebyfit prints them). Unrolled by the compiler.
template <class D, int N>
inline D horner(D x, const double (&c)[N]) {
  D r = splat<D>(c[0]);
  for (int i = 1; i < N; ++i) r = r * x + splat<D>(c[i]);
  return r;
}

constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: x + kShifter rounds x to an integer

// 2^n from t = n + kShifter (n an integer in [-1022, 1023]): t's low mantissa
// bits hold n in two's complement; shifting them into the exponent field and
// adding the bias builds the power exactly.
template <class D>
inline D pow2_shifted(D t) {
  return from_bits((to_bits(t) << 52) + usplat<D>(uint64_t{1023} << 52));
}

// Clamps x to [lo, hi]; NaN passes through. Written as (a > b ? a : b) and
// (a < b ? a : b) with the bound first, which is exactly maxpd/minpd.
template <class D>
inline D clamp(D x, double lo, double hi) {
  x = select(splat<D>(lo) > x, splat<D>(lo), x);
  return select(splat<D>(hi) < x, splat<D>(hi), x);
}

// Cody-Waite split of ln 2: kLn2Hi has 32 significant bits, so n * kLn2Hi is
// exact for |n| < 2^21 and x - n * kLn2Hi is exact near x = n ln 2.
constexpr double kLn2Hi = 0.6931471803691238;       // 0x3fe62e42fee00000
constexpr double kLn2Lo = 1.9082149292705877e-10;   // ln 2 - kLn2Hi
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

// e^r - 1 - r = r^2 P(r) on |r| <= 0.3466 (ln 2 / 2 plus rounding slack).
// kFull: degree 10, |P error| < 1.4e-18; else degree 5, < 1.4e-9 (2^-32.5
// relative to e^r).
template <bool kFull, class D>
inline D expm1_poly_rest(D r) {
  if constexpr (kFull) {
    static constexpr double c[] = {2.0914685161418067e-09, 2.5105214474751413e-08, 2.7557273647451087e-07,
                                   2.7557255406285044e-06, 2.480158732554432e-05,  0.00019841269874815834,
                                   0.001388888888888375,   0.008333333333326136,   0.04166666666666667,
                                   0.1666666666666667,     0.5};
    return r * r * horner(r, c);
  } else {
    static constexpr double c[] = {0.00019890988455544567, 0.0013933647862928863, 0.008333310927615311,
                                   0.041666464944505696,   0.16666666681621095,   0.5000000013463886};
    return r * r * horner(r, c);
  }
}

// exp(x) in float64. kFull: float64 accuracy over the whole range (results
// down to the smallest denormal: 2^n is applied in two exact steps so the
// only rounding into the denormal range is the last multiply). Otherwise:
// relative error < 2^-32 for x in [-150, 100], clamped outside (enough for
// every float32 result: overflow and underflow happen when rounding to float).
template <bool kFull, class D>
inline D exp_core(D x) {
  const D xc = kFull ? clamp(x, -750.0, 710.0) : clamp(x, -150.0, 100.0);
  const D t = xc * splat<D>(kLog2e) + splat<D>(kShifter);
  const D n = t - splat<D>(kShifter);  // round(x / ln 2)
  const D hi = xc - n * splat<D>(kLn2Hi);  // exact
  const D lo = n * splat<D>(kLn2Lo);
  const D r = hi - lo;
  if constexpr (kFull) {
    const D c = (hi - r) - lo;  // what r lost: e^(r + c) ~ e^r + c (1 + r)
    // 1 + r as an exact sum h + l (Fast2Sum, |r| < 1): the one large rounding
    // left is the final add.
    const D h = splat<D>(1) + r;
    const D l = r - (h - splat<D>(1));
    const D y = h + (l + (expm1_poly_rest<true>(r) + (c + c * r)));
    // n in [-1083, 1024]: 2^n as two factors in range.
    const D t1 = n * splat<D>(0.5) + splat<D>(kShifter);
    const D n2 = n - (t1 - splat<D>(kShifter));
    return y * pow2_shifted(t1) * pow2_shifted(n2 + splat<D>(kShifter));
  } else {
    return (splat<D>(1) + (r + expm1_poly_rest<false>(r))) * pow2_shifted(t);
  }
}

// expm1(x) in float64: e^x - 1 = 2^n (e^r - 1) + (2^n - 1), computed as
// (p + (1 - 2^-n)) 2^n with p = e^r - 1, so n = 0 keeps p's relative accuracy
// for tiny x and the one rounding is in that sum. kFull: float64 accuracy;
// otherwise < 2^-32 relative (float32 results).
template <bool kFull, class D>
inline D expm1_core(D x) {
  // expm1 is -1 in float64 below -38 (float32 below -18) and overflows above 709.8 (88.8).
  const D xc = kFull ? clamp(x, -40.0, 710.0) : clamp(x, -30.0, 100.0);
  const D t = xc * splat<D>(kLog2e) + splat<D>(kShifter);
  const D n = t - splat<D>(kShifter);  // round(x / ln 2)
  const D hi = xc - n * splat<D>(kLn2Hi);
  const D lo = n * splat<D>(kLn2Lo);
  const D r = hi - lo;
  D result;
  if constexpr (kFull) {
    const D c = (hi - r) - lo;
    // e^(r+c) - 1 ~ p + c (1 + r): the c e^r term matters once scaled by 2^n.
    const D p = r + (expm1_poly_rest<true>(r) + c * (splat<D>(1) + r));
    // 2^-n only matters for n <= 60 (else 1 - 2^-n rounds to 1); 2^n is
    // applied as 2^(n-1) * 2 so n = 1024 (x near 709.8) does not overflow early.
    const D neg = select(splat<D>(60) < n, splat<D>(-60), -n);
    const D shifter = splat<D>(kShifter);
    result = (p + (splat<D>(1) - pow2_shifted(neg + shifter))) * pow2_shifted(t - splat<D>(1)) * splat<D>(2);
  } else {
    const D p = r + expm1_poly_rest<false>(r);
    result = (p + (splat<D>(1) - pow2_shifted(splat<D>(kShifter) - n))) * pow2_shifted(t);
  }
  return select(x == splat<D>(0), x, result);  // keeps -0
}

// log(x) in float64 as fdlibm's e_log.c: x = 2^k m with m in [sqrt(1/2),
// sqrt(2)), f = m - 1, s = f / (2 + f), log(1 + f) = f - s (f - R(s^2)) with
// R(z) = 2 atanh(s) / s - 2. `corr` is added to f's low-order part (log1p's
// rounding correction, 0 for log). kSubnormal: scale denormal inputs first.
// kFull: < 1 ulp float64; otherwise < 2^-35 relative (float32 results).
// Special values: NaN -> NaN, x < 0 -> NaN, +-0 -> -inf, +inf -> +inf.
template <bool kFull, bool kSubnormal, class D>
inline D log_core(D x, D corr) {
  using U = typename BitsOf<D>::type;
  D xs = x;
  D kadj = splat<D>(0);
  if constexpr (kSubnormal) {
    const auto tiny = x < splat<D>(2.2250738585072014e-308);  // DBL_MIN
    xs = select(tiny, x * splat<D>(18014398509481984.0), x);  // 2^54
    kadj = select(tiny, splat<D>(-54), kadj);
  }
  // ix = bits(xs) - bits(sqrt(1/2)) = (k << 52) + (bits(m) - bits(sqrt(1/2))); the
  // offset 1024 << 52 keeps it non-negative so the logical shift gives k + 1024.
  const U sqrt_half = usplat<D>(0x3fe6a09e667f3bcdULL);
  const U ix = to_bits(xs) - sqrt_half + usplat<D>(uint64_t{1024} << 52);
  // k + 1024 (< 2^12) to double via the 2^52 exponent trick.
  const D k = from_bits((ix >> 52) | usplat<D>(0x4330000000000000ULL)) - splat<D>(4503599627371520.0) + kadj;
  const D m = from_bits((ix & usplat<D>(0x000fffffffffffffULL)) + sqrt_half);
  const D f = m - splat<D>(1);  // exact
  const D s = f / (splat<D>(2) + f);
  const D z = s * s;
  const D hfsq = splat<D>(0.5) * f * f;
  D result;
  if constexpr (kFull) {
    // R(z) / z on z in [0, 0.02945] (|s| <= 0.1716), degree 6, error < 3.2e-16.
    static constexpr double c[] = {0.1461703754879165, 0.1533167403016786, 0.18182890556695602, 0.2222221111514416,
                                   0.2857142862609589, 0.3999999999989924, 0.666666666666667};
    const D R = z * horner(z, c);
    result = k * splat<D>(kLn2Hi) - ((hfsq - (s * (hfsq + R) + (k * splat<D>(kLn2Lo) + corr))) - f);
  } else {
    // Same, degree 3, error < 1.2e-9 (relative to log(1+f): 2^-35.8).
    static constexpr double c[] = {0.2333096405177204, 0.2855080255327671, 0.4000012200081688, 0.6666666655430018};
    const D R = z * horner(z, c);
    result = k * splat<D>(kLn2) + ((f - (hfsq - s * (hfsq + R))) + corr);
  }
  const D inf = splat<D>(__builtin_inf());
  result = select(x < inf, result, x);  // +inf, NaN
  result = select(x == splat<D>(0), -inf, result);
  return select(x < splat<D>(0), splat<D>(__builtin_nan("")), result);
}

// log1p(x) = log(u) + c / u with u = 1 + x rounded and c = (1 + x) - u exactly
// (Fast2Sum: the larger of 1 and |x| first). kUnit: the caller knows x is in
// [0, 1] (softplus), so no special values and one Fast2Sum order. float32
// (not kFull): c only matters when u ~ 1 (|x| < 2^-29; otherwise 1 + x is exact
// in float64), so c / u is c.
template <bool kFull, bool kUnit, class D>
inline D log1p_core(D x) {
  const D one = splat<D>(1);
  const D u = one + x;
  D c = x - (u - one);
  if constexpr (kFull && !kUnit) c = select(x >= one, one - (u - x), c);
  if constexpr (kFull) c = c / u;
  const D result = log_core<kFull, false>(u, c);  // u is never denormal
  if constexpr (kUnit) return result;
  return select(x == splat<D>(0), x, result);  // keeps -0
}

// softplus(x) = max(x, 0) + log1p(e) and sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e)
// with e = exp(-|x|) in (0, 1]: no overflow for any x, one exp for both.
template <bool kFull, bool kSoftplus, bool kSigmoid, class D>
inline void softplus_sigmoid_core(D x, D& softplus, D& sigmoid) {
  const D zero = splat<D>(0);
  const D e = exp_core<kFull>(-abs(x));
  if constexpr (kSoftplus) softplus = select(x > zero, x, zero) + log1p_core<kFull, true>(e);
  if constexpr (kSigmoid) {
    const D one = splat<D>(1);
    const D h = one + e;
    const D q = select(x >= zero, one, e) / h;
    if constexpr (kFull) {
      // 1 + e = h + l exactly (Fast2Sum); q (1 - l / h) removes h's rounding
      // (up to 1 ulp of the result). l / h <= 2^-53, so 1 / h ~ 1.457 - h / 2
      // (7% on [1, 2]) is plenty.
      const D l = e - (h - one);
      sigmoid = q - q * (l * (splat<D>(1.457) - splat<D>(0.5) * h));
    } else {
      sigmoid = q;
    }
  }
}

// float32 lanes [0, L/2) and [L/2, L) of one VecF, as float64, back to float32.
inline VecF narrow(VecD lo, VecD hi) {
#if defined(__AVX512F__)
  const __m256 a = _mm512_cvtpd_ps(lo), b = _mm512_cvtpd_ps(hi);
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(a)), _mm256_castps_pd(b), 1));
#elif defined(__AVX__)
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm256_cvtpd_ps(lo)), _mm256_cvtpd_ps(hi), 1);
#else
  return _mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi));
#endif
}

// The float64 cores as types, so one `apply` runs any of them on V.
struct ExpOp {
  template <bool kFull, class D>
  static D run(D x) { return exp_core<kFull>(x); }
};
struct Expm1Op {
  template <bool kFull, class D>
  static D run(D x) { return expm1_core<kFull>(x); }
};
struct LogOp {
  template <bool kFull, class D>
  static D run(D x) { return log_core<kFull, kFull>(x, D{}); }  // float32 denormals are normal doubles
};
struct Log1pOp {
  template <bool kFull, class D>
  static D run(D x) { return log1p_core<kFull, false>(x); }
};
struct SoftplusOp {
  template <bool kFull, class D>
  static D run(D x) {
    D softplus{}, unused{};
    softplus_sigmoid_core<kFull, true, false>(x, softplus, unused);
    return softplus;
  }
};
struct SigmoidOp {
  template <bool kFull, class D>
  static D run(D x) {
    D unused{}, sigmoid{};
    softplus_sigmoid_core<kFull, false, true>(x, unused, sigmoid);
    return sigmoid;
  }
};

// Op on V: float64 lanes directly at full precision; float32 lanes widened to
// float64 (two halves per vector), computed at float32 precision, rounded once.
template <class Op, class V>
inline V apply(V x) {
  if constexpr (sizeof(typename ElemOf<V>::type) == sizeof(double)) {
    return Op::template run<true>(x);
  } else if constexpr (sizeof(V) == sizeof(float)) {
    return static_cast<float>(Op::template run<false>(static_cast<double>(x)));
  } else {
    return narrow(Op::template run<false>(widen(x, 0)), Op::template run<false>(widen(x, 1)));
  }
}

}  // namespace math_detail

// Public functions, for V in {VecF, VecD, float, double}. The error bounds are
// what tests/test_vector_math.py measures (dense grids and special values
// against correctly rounded references) on every ISA level; results are
// bitwise identical across levels and between vector lanes and scalar tails.

// exp(x). Lanes: f32, f64. Max error: f32 0.51 ulp, f64 1 ulp. Range: all x
// (+inf above 88.72 / 709.78; denormals, then 0, below -87.3 / -708.4).
template <class V>
inline V exp(V x) {
  return math_detail::apply<math_detail::ExpOp>(x);
}

// expm1(x) = e^x - 1. Lanes: f32, f64. Max error: f32 0.51 ulp, f64 2 ulp.
// Range: all x (tiny and denormal x exact, -0 kept, -1 below -17.4 / -37.5,
// +inf above 88.72 / 709.78).
template <class V>
inline V expm1(V x) {
  return math_detail::apply<math_detail::Expm1Op>(x);
}

// log(x). Lanes: f32, f64. Max error: f32 0.51 ulp, f64 1 ulp. Range: x > 0
// including denormals; log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf.
template <class V>
inline V log(V x) {
  return math_detail::apply<math_detail::LogOp>(x);
}

// log1p(x) = log(1 + x). Lanes: f32, f64. Max error: f32 0.51 ulp, f64 1 ulp.
// Range: x > -1 (tiny and denormal x exact, -0 kept); log1p(-1) = -inf,
// x < -1 -> NaN, +inf -> +inf.
template <class V>
inline V log1p(V x) {
  return math_detail::apply<math_detail::Log1pOp>(x);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|). Lanes: f32, f64.
// Max error: f32 0.51 ulp, f64 2 ulp. Range: all x, no overflow (x itself
// for large x, e^x down to denormals and 0 for very negative x).
template <class V>
inline V softplus(V x) {
  return math_detail::apply<math_detail::SoftplusOp>(x);
}

// log_sigmoid(x) = log(1 / (1 + e^-x)) = -softplus(-x). Lanes: f32, f64.
// Max error: f32 0.51 ulp, f64 2 ulp. Range: all x, no overflow.
template <class V>
inline V log_sigmoid(V x) {
  return -softplus(-x);
}

// sigmoid(x) = 1 / (1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e), e = e^-|x|.
// Lanes: f32, f64. Max error: f32 0.51 ulp, f64 2 ulp. Range: all x, no
// overflow (1 above 16.6 / 36.7; denormals, then 0, below -87.3 / -708.4).
template <class V>
inline V sigmoid(V x) {
  return math_detail::apply<math_detail::SigmoidOp>(x);
}

// softplus(x) and sigmoid(x) from one exp (a logits loss's value and
// gradient): the same bits as calling both.
template <class V>
inline void softplus_and_sigmoid(V x, V& softplus_out, V& sigmoid_out) {
  using math_detail::softplus_sigmoid_core;
  if constexpr (sizeof(typename ElemOf<V>::type) == sizeof(double)) {
    softplus_sigmoid_core<true, true, true>(x, softplus_out, sigmoid_out);
  } else if constexpr (sizeof(V) == sizeof(float)) {
    double sp = 0, sg = 0;
    softplus_sigmoid_core<false, true, true>(static_cast<double>(x), sp, sg);
    softplus_out = static_cast<float>(sp);
    sigmoid_out = static_cast<float>(sg);
  } else {
    VecD sp0{}, sg0{}, sp1{}, sg1{};
    softplus_sigmoid_core<false, true, true>(widen(x, 0), sp0, sg0);
    softplus_sigmoid_core<false, true, true>(widen(x, 1), sp1, sg1);
    softplus_out = math_detail::narrow(sp0, sp1);
    sigmoid_out = math_detail::narrow(sg0, sg1);
  }
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
