// Elementary functions for the losses: exp, log, log1p, expm1, sigmoid,
// softplus, log_sigmoid, written once for a vector V (VecF, VecD) and its
// scalar element type (the tails), so every lane of every ISA level and the
// scalar tail compute the same operations in the same order.
//
// Design (why it looks like this):
// - Branch-free: every lane takes the same path; special inputs (NaN, +-inf,
//   +-0, negatives for log) are fixed with select() at the end.
// - float32 functions run on float32 lanes (twice the lanes of float64, no
//   conversions): Cody-Waite reductions, integer exponent arithmetic, and the
//   large terms of each result summed exactly (Fast2Sum, TwoSum, products of
//   12-bit halves) so the one rounding at the end dominates: max error < 1 ulp
//   (0.61-0.78 ulp measured), denormals included.
// - float64 functions use Cody-Waite reductions with compensation terms and
//   the s = f / (2 + f) form of log (as fdlibm's e_log.c), no FMA: the build
//   has -ffp-contract=off and no explicit fma, so results are bitwise
//   identical on baseline (SSE2), avx2 and avx512 and in the scalar tail.
// - The losses call the loss_* variants at the end of this file: float32 the
//   *_fast_f32 functions (one plain rounding per step; log and log1p from a
//   16-entry table, no division; exp without denormal results; fmadd:
//   ~3-5x fewer operations; exp < 1 ulp, log, log1p < 2 ulp, softplus
//   < 2.5 ulp, sigmoid < 2 ulp, as tests/test_vector_math.py asserts),
//   float64 the functions here. fmadd (vec.h) is one rounding on every
//   level: the FMA instructions on avx2/avx512, an exact emulation on
//   baseline (slower there), so the float32 loss_* results too are bitwise
//   identical on every level and between each level's vectors and scalar
//   tail (NaN signs aside).
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

// e^r - 1 - r = r^2 P(r) on |r| <= 0.3466 (ln 2 / 2 plus rounding slack),
// degree 10, |P error| < 1.4e-18.
template <class D>
inline D expm1_poly_rest(D r) {
  static constexpr double c[] = {2.0914685161418067e-09, 2.5105214474751413e-08, 2.7557273647451087e-07,
                                 2.7557255406285044e-06, 2.480158732554432e-05,  0.00019841269874815834,
                                 0.001388888888888375,   0.008333333333326136,   0.04166666666666667,
                                 0.1666666666666667,     0.5};
  return r * r * horner(r, c);
}

// exp(x) in float64 over the whole range (results down to the smallest
// denormal: 2^n is applied in two exact steps so the only rounding into the
// denormal range is the last multiply).
template <class D>
inline D exp_core(D x) {
  const D xc = clamp(x, -750.0, 710.0);
  const D t = xc * splat<D>(kLog2e) + splat<D>(kShifter);
  const D n = t - splat<D>(kShifter);  // round(x / ln 2)
  const D hi = xc - n * splat<D>(kLn2Hi);  // exact
  const D lo = n * splat<D>(kLn2Lo);
  const D r = hi - lo;
  const D c = (hi - r) - lo;  // what r lost: e^(r + c) ~ e^r + c (1 + r)
  // 1 + r as an exact sum h + l (Fast2Sum, |r| < 1): the one large rounding
  // left is the final add.
  const D h = splat<D>(1) + r;
  const D l = r - (h - splat<D>(1));
  const D y = h + (l + (expm1_poly_rest(r) + (c + c * r)));
  // n in [-1083, 1024]: 2^n as two factors in range.
  const D t1 = n * splat<D>(0.5) + splat<D>(kShifter);
  const D n2 = n - (t1 - splat<D>(kShifter));
  return y * pow2_shifted(t1) * pow2_shifted(n2 + splat<D>(kShifter));
}

// expm1(x) in float64: e^x - 1 = 2^n (e^r - 1) + (2^n - 1), computed as
// (p + (1 - 2^-n)) 2^n with p = e^r - 1, so n = 0 keeps p's relative accuracy
// for tiny x and the one rounding is in that sum.
template <class D>
inline D expm1_core(D x) {
  // expm1 is -1 in float64 below -38 and overflows above 709.8.
  const D xc = clamp(x, -40.0, 710.0);
  const D t = xc * splat<D>(kLog2e) + splat<D>(kShifter);
  const D n = t - splat<D>(kShifter);  // round(x / ln 2)
  const D hi = xc - n * splat<D>(kLn2Hi);
  const D lo = n * splat<D>(kLn2Lo);
  const D r = hi - lo;
  const D c = (hi - r) - lo;
  // e^(r+c) - 1 ~ p + c (1 + r): the c e^r term matters once scaled by 2^n.
  const D p = r + (expm1_poly_rest(r) + c * (splat<D>(1) + r));
  // 2^-n only matters for n <= 60 (else 1 - 2^-n rounds to 1); 2^n is
  // applied as 2^(n-1) * 2 so n = 1024 (x near 709.8) does not overflow early.
  const D neg = select(splat<D>(60) < n, splat<D>(-60), -n);
  const D shifter = splat<D>(kShifter);
  const D result = (p + (splat<D>(1) - pow2_shifted(neg + shifter))) * pow2_shifted(t - splat<D>(1)) * splat<D>(2);
  return select(x == splat<D>(0), x, result);  // keeps -0
}

// log(x) in float64 as fdlibm's e_log.c: x = 2^k m with m in [sqrt(1/2),
// sqrt(2)), f = m - 1, s = f / (2 + f), log(1 + f) = f - s (f - R(s^2)) with
// R(z) = 2 atanh(s) / s - 2. `corr` is added to f's low-order part (log1p's
// rounding correction, 0 for log). kSubnormal: scale denormal inputs first.
// < 1 ulp. Special values: NaN -> NaN, x < 0 -> NaN, +-0 -> -inf, +inf -> +inf.
template <bool kSubnormal, class D>
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
  // R(z) / z on z in [0, 0.02945] (|s| <= 0.1716), degree 6, error < 3.2e-16.
  static constexpr double c[] = {0.1461703754879165, 0.1533167403016786, 0.18182890556695602, 0.2222221111514416,
                                 0.2857142862609589, 0.3999999999989924, 0.666666666666667};
  const D R = z * horner(z, c);
  D result = k * splat<D>(kLn2Hi) - ((hfsq - (s * (hfsq + R) + (k * splat<D>(kLn2Lo) + corr))) - f);
  const D inf = splat<D>(__builtin_inf());
  result = select(x < inf, result, x);  // +inf, NaN
  result = select(x == splat<D>(0), -inf, result);
  return select(x < splat<D>(0), splat<D>(__builtin_nan("")), result);
}

// log1p(x) = log(u) + c / u with u = 1 + x rounded and c = (1 + x) - u exactly
// (Fast2Sum: the larger of 1 and |x| first). kUnit: the caller knows x is in
// [0, 1] (softplus), so no special values and one Fast2Sum order.
template <bool kUnit, class D>
inline D log1p_core(D x) {
  const D one = splat<D>(1);
  const D u = one + x;
  D c = x - (u - one);
  if constexpr (!kUnit) c = select(x >= one, one - (u - x), c);
  c = c / u;
  const D result = log_core<false>(u, c);  // u is never denormal
  if constexpr (kUnit) return result;
  return select(x == splat<D>(0), x, result);  // keeps -0
}

// softplus(x) = max(x, 0) + log1p(e) and sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e)
// with e = exp(-|x|) in (0, 1]: no overflow for any x, one exp for both.
template <bool kSoftplus, bool kSigmoid, class D>
inline void softplus_sigmoid_core(D x, D& softplus, D& sigmoid) {
  const D zero = splat<D>(0);
  const D e = exp_core(-abs(x));
  if constexpr (kSoftplus) softplus = select(x > zero, x, zero) + log1p_core<true>(e);
  if constexpr (kSigmoid) {
    const D one = splat<D>(1);
    const D h = one + e;
    const D q = select(x >= zero, one, e) / h;
    // 1 + e = h + l exactly (Fast2Sum); q (1 - l / h) removes h's rounding
    // (up to 1 ulp of the result). l / h <= 2^-53, so 1 / h ~ 1.457 - h / 2
    // (7% on [1, 2]) is plenty.
    const D l = e - (h - one);
    sigmoid = q - q * (l * (splat<D>(1.457) - splat<D>(0.5) * h));
  }
}

// ---- float32: native float32 lanes (twice the lanes of float64, no
// conversions). Without FMA a float32 result is one rounding of a value that
// is carried as an unevaluated sum (big exact part + small part); every
// step below keeps the big part exact (Sterbenz, Fast2Sum, products of
// 12-bit halves) so the error stays below 1 ulp.

typedef uint32_t VecU32 __attribute__((vector_size(kVectorBytes)));

inline VecU32 to_bits(VecF x) { return reinterpret_cast<VecU32>(x); }
inline VecF from_bits(VecU32 u) { return reinterpret_cast<VecF>(u); }
inline uint32_t to_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
inline float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <>
struct BitsOf<float> {
  using type = uint32_t;
};
template <>
struct BitsOf<VecF> {
  using type = VecU32;
};
template <class F>
inline typename BitsOf<F>::type usplat32(uint32_t u) {
  return typename BitsOf<F>::type{} + u;
}
// Arithmetic shift right of a two's complement value held unsigned.
inline VecU32 sra(VecU32 u, int s) { return reinterpret_cast<VecU32>(reinterpret_cast<VecI32>(u) >> s); }
inline uint32_t sra(uint32_t u, int s) { return static_cast<uint32_t>(static_cast<int32_t>(u) >> s); }
// Small signed integer (two's complement, held unsigned) to float, exactly.
inline VecF int_to_float(VecU32 u) { return __builtin_convertvector(reinterpret_cast<VecI32>(u), VecF); }
inline float int_to_float(uint32_t u) { return static_cast<float>(static_cast<int32_t>(u)); }

template <class F, int N>
inline F horner(F x, const float (&c)[N]) {
  F r = splat<F>(c[0]);
  for (int i = 1; i < N; ++i) r = r * x + splat<F>(c[i]);
  return r;
}

// Lanes [0, 12) of the significand kept, the rest cleared: products of two
// such halves are exact.
template <class F>
inline F high12(F x) {
  return from_bits(to_bits(x) & usplat32<F>(0xfffff000u));
}

constexpr float kShifterF = 12582912.0f;  // 1.5 * 2^23: t = x + kShifterF rounds x to an integer n
// Cody-Waite split of ln 2 (glibc's): kLn2HiF has 15 significant bits, so
// n * kLn2HiF is exact for |n| < 512.
constexpr float kLn2HiF = 0.693145751953125f;   // 0x3f317200
constexpr float kLn2LoF = 1.42860677e-06f;      // 0x35bfbe8e, ln 2 - kLn2HiF
constexpr float kLog2eF = 1.44269502f;

// n from t = n + kShifterF (|n| < 2^22), as a two's complement integer.
template <class F>
inline typename BitsOf<F>::type shifted_int(F t) {
  return to_bits(t) - usplat32<F>(0x4b400000u);
}
// 2^n for an integer n in [-126, 127] (two's complement, held unsigned).
template <class F>
inline F pow2i(typename BitsOf<F>::type n) {
  return from_bits((n + usplat32<F>(127u)) << 23);
}

// e^x = 2^n (h + l) for x in [-104, 89], n = round(x / ln 2) (t = n +
// kShifterF), h = 1 + hi rounded and l the rest: h + l = e^r to ~2^-29
// relative, |l| < 0.08 (r = x - n ln 2, |r| < 0.3466). The only large
// rounding left to the caller is that of h + l.
template <class F>
inline void exp_parts_f32(F x, F& t, F& h, F& l) {
  const F one = splat<F>(1);
  t = x * splat<F>(kLog2eF) + splat<F>(kShifterF);
  const F n = t - splat<F>(kShifterF);
  const F hi = x - n * splat<F>(kLn2HiF);  // exact (Sterbenz)
  const F lo = n * splat<F>(kLn2LoF);
  const F r = hi - lo;
  // e^r - 1 - r = r^2 P(r) on |r| <= 0.3476, degree 5, |error| < 2^-30.8.
  static constexpr float c[] = {0.00019891276315320283f, 0.0013933907030150294f, 0.00833331048488617f,
                                0.041666463017463684f, 0.1666666716337204f, 0.5f};
  const F q = r * r * horner(r, c);
  h = one + hi;
  l = (hi - (h - one)) + (q - lo);  // Fast2Sum (|hi| < 1): what h lost, plus the rest
}

// log(1 + f) - f + f^2/2 = f^3 P(f) on f in [sqrt(1/2) - 1, sqrt(2) - 1]
// (widened by 1e-3), degree 8, error < 2^-28 relative to log(1 + f).
template <class F>
inline F log1p_cubic_f32(F f) {
  static constexpr float c[] = {0.0698070228099823f, -0.11494546383619308f, 0.11689071357250214f,
                                -0.12424037605524063f, 0.14248551428318024f, -0.1666785031557083f,
                                0.20000730454921722f, -0.2499999701976776f, 0.3333333134651184f};
  return f * f * f * horner(f, c);
}

// u = 2^k m with m in [sqrt(1/2), sqrt(2)), u positive normal: k (float) and m.
template <class F>
inline void frexp_sqrt2_f32(F u, F& k, F& m) {
  using U = typename BitsOf<F>::type;
  const U sqrt_half = usplat32<F>(0x3f3504f3u);
  const U ix = to_bits(u) - sqrt_half;  // (k << 23) + (bits(m) - bits(sqrt(1/2)))
  k = int_to_float(sra(ix, 23));
  m = from_bits((ix & usplat32<F>(0x007fffffu)) + sqrt_half);
}

// z + k ln 2 + log(1 + f) + d / (1 + f) (|d| < 2^-23, |f| <= 0.415, k an
// integer, |k| < 512; z = 0 unless kAddZ, softplus's max(x, 0); d = 0 unless
// kHasD) rounded once.
// The large terms z, k ln2hi, f and -fh^2 / 2 (f = fh + fl in 12-bit halves,
// so fh^2 is exact) are summed exactly (Fast2Sum, TwoSum); only small terms
// are rounded before the last add.
template <class F>
inline void two_sum(F a, F b, F& s, F& e) {
  s = a + b;
  const F bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}
template <bool kAddZ, bool kHasD, class F>
inline F log_combine_f32(F k, F f, F d, F z) {
  const F one = splat<F>(1), half = splat<F>(0.5);
  const F kh = k * splat<F>(kLn2HiF);  // exact
  F a = kh + f;
  F ae = f - (a - kh);  // Fast2Sum: |kh| >= |f| or kh = 0
  if constexpr (kAddZ) {
    F e0;
    two_sum(z, a, a, e0);
    ae = ae + e0;
  }
  const F fh = high12(f);
  const F fl = f - fh;
  F s, se;
  two_sum(a, -(half * fh * fh), s, se);  // fh^2 exact
  F small = k * splat<F>(kLn2LoF);
  // d / (1 + f) ~ d (1 - f)(1 + f^2): relative error f^4 < 0.03.
  if constexpr (kHasD) small = small + d * ((one - f) * (one + f * f));
  small = (log1p_cubic_f32(f) - half * fl * (f + fh)) + small;
  return s + ((ae + se) + small);
}

// exp(x), float32 lanes.
template <class F>
inline F exp_f32(F x) {
  using U = typename BitsOf<F>::type;
  F t, h, l;
  exp_parts_f32(clamp(x, -104.0, 89.0), t, h, l);  // e^-104 < 2^-150, e^89 > 2^128
  // 2^n (n in [-150, 128]) as two factors in range: the last multiply is the
  // only rounding for denormal results.
  const U n = shifted_int(t);
  const U n1 = sra(n, 1);
  return (h + l) * pow2i<F>(n1) * pow2i<F>(n - n1);
}

// expm1(x) = 2^n (e^r - 2^-n), r = hi - lo: the exact parts 1 + hi, -2^-n
// and hi^2 / 2 (hi split in 12-bit halves) are summed exactly (TwoSum)
// before the one rounding, so the cancellation at n = 1 (x near ln 2 / 2)
// and the rounding of r cost nothing.
template <class F>
inline F expm1_f32(F x) {
  const F one = splat<F>(1), half = splat<F>(0.5), shifter = splat<F>(kShifterF);
  // expm1 rounds to -1 below -17.33 and overflows above 88.72.
  const F xc = clamp(x, -18.0, 89.0);
  const F t = xc * splat<F>(kLog2eF) + shifter;
  const F n = t - shifter;
  const F hi = xc - n * splat<F>(kLn2HiF);  // exact (Sterbenz)
  const F lo = n * splat<F>(kLn2LoF);
  // e^r - 1 - r - r^2/2 = r^3 P(r) on |r| <= 0.3476, degree 4, |error| < 2^-30.8;
  // e^r - 1 = hi + hi^2/2 - lo (1 + hi - lo/2) + r^3 P(r) with r = hi - lo
  // rounded only inside r^3 P(r).
  static constexpr float c[] = {0.00019882936612702906f, 0.0013926397077739239f, 0.00833332072943449f,
                                0.04166655242443085f, 0.1666666716337204f};
  const F hh = high12(hi);
  const F hl = hi - hh;
  const F sq = half * hh * hh;  // exact
  const F r = hi - lo;
  const F small = half * hl * (hi + hh) + (r * r * r * horner(r, c) - lo * (one + (hi - half * lo)));
  // n = 0: hi + sq + small (1 + hi - 1 would round at the result's scale);
  // else h + hr = 1 + hi exactly (Fast2Sum, |hi| < 1) minus p = 2^-n.
  const auto n0 = n == splat<F>(0);
  const F zero = splat<F>(0);
  const F h = select(n0, hi, one + hi);
  const F hr = select(n0, zero, hi - (h - one));
  const F neg = select(n > splat<F>(100), splat<F>(-100), -n);  // 2^-n < 2^-100 is nothing
  const F p = select(n0, zero, pow2i<F>(shifted_int(neg + shifter)));
  const F s1 = h - p;  // TwoSum(h, -p)
  const F b1 = s1 - h;
  const F e1 = (h - (s1 - b1)) - (p + b1);
  const F s2 = s1 + sq;  // TwoSum(s1, sq)
  const F b2 = s2 - s1;
  const F e2 = (s1 - (s2 - b2)) + (sq - b2);
  // 2 2^(n-1): n = 128 does not overflow early, and the denormal x of n = 0 stay exact.
  const F result = (s2 + ((e1 + e2) + (hr + small))) * splat<F>(2) * pow2i<F>(shifted_int(t) - usplat32<F>(1u));
  return select(x == splat<F>(0), x, result);  // keeps -0
}

// Special values of log and log1p (z is the pole: 0 or -1).
template <class F>
inline F log_specials_f32(F x, F result, float z) {
  const F inf = splat<F>(__builtin_inff());
  result = select(x < inf, result, x);  // +inf, NaN
  result = select(x == splat<F>(z), -inf, result);
  return select(x < splat<F>(z), splat<F>(__builtin_nanf("")), result);
}

template <class F>
inline F log_f32(F x) {
  const auto tiny = x < splat<F>(1.17549435e-38f);  // FLT_MIN: scale denormals by 2^23
  const F xs = select(tiny, x * splat<F>(8388608.0f), x);
  F k, m;
  frexp_sqrt2_f32(xs, k, m);
  k = k - select(tiny, splat<F>(23), splat<F>(0));
  const F result = log_combine_f32<false, false>(k, m - splat<F>(1), splat<F>(0), splat<F>(0));
  return log_specials_f32(x, result, 0.0f);
}

// log1p(x): u = 1 + x rounded, c = (1 + x) - u exactly (Fast2Sum, the larger
// first). Where u's exponent k is 0, f = x itself (exact); elsewhere f = m - 1
// and c 2^-k is the correction d.
template <class F>
inline F log1p_f32(F x) {
  const F one = splat<F>(1);
  const F u = one + x;
  const F c = select(x > one, one - (u - x), x - (u - one));
  F k, m;
  frexp_sqrt2_f32(u, k, m);
  const auto k0 = k == splat<F>(0);
  const F f = select(k0, x, m - one);
  const F kc = select(k > splat<F>(100), splat<F>(100), k);  // 2^-k below 2^-100: d is nothing
  const F d = select(k0, splat<F>(0), c * pow2i<F>(shifted_int(splat<F>(kShifterF) - kc)));
  const F result = log_combine_f32<false, true>(k, f, d, splat<F>(0));
  return select(x == splat<F>(0), x, log_specials_f32(x, result, -1.0f));  // keeps -0
}

// softplus(x) = max(x, 0) + log1p(e) and sigmoid(x) = (x >= 0 ? 1 : e) / (1 + e),
// e = e^-|x| = eh + el (eh rounded once, el the rest), 1 + e = uh + ul.
template <bool kSoftplus, bool kSigmoid, class F>
inline void softplus_sigmoid_f32(F x, F& softplus, F& sigmoid) {
  using U = typename BitsOf<F>::type;
  const F zero = splat<F>(0), one = splat<F>(1);
  F t, h, l;
  exp_parts_f32(-clamp(abs(x), 0.0, 104.0), t, h, l);  // n in [-150, 0]
  const F y = h + l;
  const F yl = l - (y - h);  // Fast2Sum
  const U n = shifted_int(t);
  const U n1 = sra(n, 1);
  const F p1 = pow2i<F>(n1), p2 = pow2i<F>(n - n1);
  const F eh = y * p1 * p2;  // exact, or one rounding into the denormals
  const F el = yl * p1 * p2;
  const F uh = one + eh;
  const F ul = (eh - (uh - one)) + el;  // Fast2Sum (eh <= 1)
  if constexpr (kSoftplus) {
    // log1p(e) = k ln 2 + log(1 + f) + d / (1 + f): for 1 + e >= sqrt(2), k = 1
    // and f + d = (uh + ul) / 2 - 1 (f exact); below, k = 0, f = eh, d = el
    // (no rounding of 1 + e, which would swamp tiny e).
    const auto big = uh >= splat<F>(1.41421354f);
    const F half = splat<F>(0.5);
    const F k = select(big, one, zero);
    const F f = select(big, uh * half - one, eh);
    const F d = select(big, ul * half, el);
    const F sp = log_combine_f32<true, true>(k, f, d, select(x > zero, x, zero));
    softplus = select(x > splat<F>(20), x, sp);  // e^-x < ulp(x) / 4; +inf
  }
  if constexpr (kSigmoid) {
    // 1 / (uh + ul) = q0 (1 + rho + rho^2) with q0 = 1/uh cut to 12 bits and
    // rho = 1 - q0 (uh + ul) computed exactly enough (12-bit products).
    const F q0 = high12(one / uh);
    const F uhh = high12(uh);
    const F rho = ((one - q0 * uhh) - q0 * (uh - uhh)) - q0 * ul;
    const F c = q0 * (rho + rho * rho);
    // x >= 0: q0 + c. x < 0: e (q0 + c) with eh split so eh_hi q0 is exact.
    const F ehh = high12(eh);
    const F neg = ehh * q0 + ((eh - ehh) * q0 + (eh * c + el * q0));
    sigmoid = select(x >= zero, q0 + c, neg);
  }
}


// ---- float32 for the losses' hot paths (loss_exp, loss_log, loss_log1p,
// loss_logistic below). The functions above carry every result as an exact
// sum to stay below 1 ulp everywhere; the losses' float32 results are
// compared at ~100 ulp (and torch's own float32 math is a few ulp), so these
// give up a little accuracy for ~3x fewer operations: one plain rounding per
// step, a table-driven log (a degree-3 polynomial instead of degree 11), no
// denormal results from exp, and fmadd (vec.h): one rounding on every level
// (emulated exactly on baseline), so every level, and every level's scalar
// tail, gives the same bits.

// Horner with fmadd.
template <class F, int N>
inline F horner_fma(F x, const float (&c)[N]) {
  F r = splat<F>(c[0]);
  for (int i = 1; i < N; ++i) r = fmadd(r, x, splat<F>(c[i]));
  return r;
}

// e^x = 2^n y with y = e^r rounded once from 1 + hi + (r^2 P(r) - lo)
// (1 + hi split by Fast2Sum), n = round(x / ln 2) (t = n + kShifterF).
// e^r - 1 - r = r^2 P(r) on |r| <= 0.3486, degree 4, |error| < 2^-23.8
// relative to P (2^-27 relative to e^r).
template <class F>
inline F exp_y_fast_f32(F x, F& t) {
  const F one = splat<F>(1);
  t = fmadd(x, splat<F>(kLog2eF), splat<F>(kShifterF));
  const F n = t - splat<F>(kShifterF);
  const F hi = fmadd(n, splat<F>(-kLn2HiF), x);  // exact, fused or not (Sterbenz)
  const F lo = n * splat<F>(kLn2LoF);
  const F r = hi - lo;
  static constexpr float c[] = {0.001392660829738979f, 0.008363519048498828f, 0.04166655205195496f,
                                0.1666657493620777f, 0.5f};
  const F q = fmadd(r * r, horner_fma(r, c), -lo);
  const F h = one + hi;
  return h + ((hi - (h - one)) + q);
}

// e^x for the losses: < 1 ulp where e^x is a normal float; 0 below
// x = -87.3365 (e^x < FLT_MIN: flushed, no denormals), +inf above 88.7228,
// NaN -> NaN. 2^n goes straight into y's exponent field.
// kNonPositive: the caller knows x <= 0 or NaN (no overflow test).
// kNaN false: the caller discards the result for NaN x (any value then).
template <bool kNonPositive = false, bool kNaN = true, class F>
inline F exp_fast_f32(F x) {
  F t;
  const F y = exp_y_fast_f32(x, t);
  F result = from_bits(to_bits(y) + (shifted_int(t) << 23));
  result = select(x < splat<F>(-87.33654f), splat<F>(0), result);
  if constexpr (!kNonPositive) result = select(x > splat<F>(88.72283f), splat<F>(__builtin_inff()), result);
  if constexpr (!kNaN) return result;
  return select(x == x, result, x);  // NaN
}

// ---- The losses' log: table-driven, no division.
// u = 2^k z with z in [0.6992, 1.3984) (bits(u) - bits(0.6992) split into
// exponent k and mantissa), i = the top 4 mantissa bits of that difference,
// r = z / c_i - 1 = fmadd(z, invc_i, -1) (one rounding, relative to r), and
//   log u = k ln 2 + log c_i + log1p(r),  |r| <= 0.0297.
// invc_i is a float near 1 / (bucket centre) picked so that -log(invc_i)
// rounds to a float within 2^-35 relative (logc_i); the bucket holding 1 has
// c = 1 exactly, so log u near 1 is log1p(r) with r exact. log1p(r) =
// r - r^2 / 2 + r^3 P(r), P of degree 1 fitted on |r| <= 0.03 (error
// < 2^-25 relative to log1p(r)). Measured over every float32:
// log < 1.4 ulp, log1p < 1.9 ulp (tests/test_vector_math.py asserts 2).
// About half the operations of fdlibm's division form and no division: the
// lookup is a permute (vpermps), no gather and no memory access per lane
// (baseline: one scalar load per lane); the scalar tail indexes the same
// table, so lanes and tails give the same bits. r needs the fused
// multiply-add (unfused it would round at 2^-24 absolute): baseline's is
// emulated exactly. Table: invc_i, logc_i for i = 0..15 (mpmath, 40 digits).
constexpr float kLogTableInvC[16] = {1.3991581f, 1.3400596f, 1.2865453f, 1.236972f,  1.1908499f, 1.1475949f,
                                     1.1077672f, 1.0713822f, 1.0363605f, 1.0f,       0.94808525f, 0.8952928f,
                                     0.8477693f, 0.8048529f, 0.7666198f, 0.7313842f};
constexpr float kLogTableLogC[16] = {-0.3358707f,  -0.29271412f, -0.25196055f, -0.21266644f,
                                     -0.17466725f, -0.13766839f, -0.10234648f, -0.06894956f,
                                     -0.03571506f, 0.0f,         0.053310856f, 0.11060444f,
                                     0.16514671f,  0.21709575f,  0.2657643f,   0.31281635f};
constexpr uint32_t kLogTableOffset = 0x3f330000u;  // 0.69921875
// invc_i 2^-23, for arguments the caller scaled by 2^23 (kScaled below).
struct LogTableScaled {
  float v[16];
  constexpr LogTableScaled() : v() {
    for (int i = 0; i < 16; ++i) v[i] = kLogTableInvC[i] * 0x1p-23f;
  }
};
constexpr LogTableScaled kLogTableInvCScaled{};

// table[i & 15] per lane (the permutes read only the index's low bits).
inline float lookup16(const float (&table)[16], uint32_t i) { return table[i & 15u]; }
inline VecF lookup16(const float (&table)[16], VecU32 i) {
#if defined(__AVX512F__)
  return _mm512_permutexvar_ps(reinterpret_cast<__m512i>(i), load<VecF>(table));
#elif defined(__AVX2__)
  const __m256i idx = reinterpret_cast<__m256i>(i);
  const __m256 lo = _mm256_permutevar8x32_ps(load<VecF>(table), idx);
  const __m256 hi = _mm256_permutevar8x32_ps(load<VecF>(table + 8), idx);
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));  // bit 3 -> sign
#else
  VecF r;  // SSE2 has no variable permute: one load per lane
  for (int j = 0; j < kLanes<float>; ++j) r[j] = table[i[j] & 15u];
  return r;
#endif
}

// u = 2^k z: k (float), r = z / c_i - 1 and logc_i, for u a positive normal
// float. kScaled: u = 2^23 v for the caller's v in [0, 1] (denormals are
// normal after the exact scaling) and k is v's exponent: the scale lives in
// the offset and the table (invc 2^-23 times z 2^23 is the same product),
// and v = +-0 gives k = -149 (the result is below -103, not -inf).
template <bool kScaled, bool kNegZero = kScaled, class F>
inline void log_table_reduce_f32(F u, F& k, F& r, F& invc, F& logc) {
  using U = typename BitsOf<F>::type;
  U ix = to_bits(u);
  if constexpr (kNegZero) ix = ix & usplat32<F>(0x7fffffffu);  // -0 as +0 (kNegZero false: u is never -0)
  const U tmp = ix - usplat32<F>(kLogTableOffset + (kScaled ? 23u << 23 : 0u));
  const U i = tmp >> 19;
  k = int_to_float(sra(tmp, 23));
  const F z = from_bits(ix - (tmp & usplat32<F>(0xff800000u)));
  invc = lookup16(kScaled ? kLogTableInvCScaled.v : kLogTableInvC, i);
  logc = lookup16(kLogTableLogC, i);
  r = fmadd(z, invc, splat<F>(-1));
}

// k ln 2 + logc + log1p(r) + d: hi = k ln 2 + logc rounded once (fused,
// float(ln 2): the 2^-27.4 relative error of k float(ln 2) is left out),
// then r and the small terms (one more rounding: r + r^2 q is added first
// unless kHasD).
template <bool kHasD, class F>
inline F log_table_combine_f32(F k, F r, F logc, F d) {
  static constexpr float c[] = {-0.25012973f, 0.33348241f};
  const F q = fmadd(r, horner_fma(r, c), splat<F>(-0.5));  // -1/2 + r P(r)
  const F hi = fmadd(k, splat<F>(0.693147182f), logc);
  if constexpr (kHasD) return hi + (r + fmadd(r * r, q, d));
  return hi + fmadd(r * r, q, r);
}

// 2^23 x + 0: exact for every float x below 2^105 in magnitude (a denormal
// becomes normal; larger ones overflow to +-inf, outside [0, 1] anyway),
// -0 -> +0. One fused multiply-add where the level has
// it (the sum after an exact product: the same bits as the two steps).
template <class F>
inline F unit_scaled_f32(F x) {
#if defined(__FMA__)
  return fmadd(x, splat<F>(8388608.0f), splat<F>(0));
#else
  return x * splat<F>(8388608.0f) + splat<F>(0);
#endif
}

// log(x) for the losses, denormals included: the table form, < 2 ulp.
// log(+-0) = -inf, x < 0 -> NaN,
// +inf -> +inf. kUnit: the caller knows x is in [0, 1] and clamps the result
// at -100 (BCE's checked input; values outside [0, 1] and NaN give
// unspecified results): log(+-0) is -inf or below -103.
template <bool kUnit = false, class F>
inline F log_fast_f32(F x) {
  F k, r, invc, logc;
  if constexpr (kUnit) {
    log_table_reduce_f32<true, false>(unit_scaled_f32(x), k, r, invc, logc);
    return log_table_combine_f32<false>(k, r, logc, r);
  }
  const auto tiny = x < splat<F>(1.17549435e-38f);  // FLT_MIN: scale denormals by 2^23
  log_table_reduce_f32<false>(select(tiny, x * splat<F>(8388608.0f), x), k, r, invc, logc);
  k = k - select(tiny, splat<F>(23), splat<F>(0));
  const F result = log_table_combine_f32<false>(k, r, logc, r);
  return log_specials_f32(x, result, 0.0f);
}

// log1p(x) for the losses: log(u) + c / u with u = 1 + x rounded and c the
// rounding (Fast2Sum, larger first): < 2 ulp; tiny x exact, -0 kept,
// -1 -> -inf, x < -1 -> NaN,
// +inf -> +inf. kUnit: the caller knows x is in [-1, 0] and clamps the
// result at -100 (BCE's log1p(-x)): log1p(-1) is -inf or below -103, and
// the sign of a zero result is unspecified.
template <bool kUnit = false, class F>
inline F log1p_fast_f32(F x) {
  const F one = splat<F>(1);
  F k, r, invc, logc, ck;
  if constexpr (kUnit) {
    // u = 1 + x in [0, 1], scaled by 2^23 (u = 0 -> k = -149); c is 0
    // unless u >= 1/2 (Sterbenz), so 2^-k is 1 or 2 where it matters, and
    // the 2^23 goes into c (invc is the scaled table's):
    // ck = 2^23 c 2^-k = 2^23 c (1 - k) for k in {-1, 0} (exact; c = 0 elsewhere).
    const F s23 = splat<F>(8388608.0f);
#if defined(__FMA__)
    // Fused, the same values in fewer steps: 2^23 u = 2^23 + 2^23 x rounded
    // once (scaling by 2^23 commutes with the rounding); -2^23 c =
    // (2^23 u - 2^23) - 2^23 x, exact (the difference is exact: Sterbenz,
    // or -2^23 x itself where 1 + x is exact; -2^23 c is a float), and
    // ck = (-2^23 c) k - (-2^23 c).
    const F us = fmadd(x, s23, s23);
    const F nc = fmadd(x, -s23, us - s23);
    log_table_reduce_f32<true, false>(us, k, r, invc, logc);
    ck = fmadd(nc, k, -nc);
#else
    const F u = one + x;
    const F c = (one - u) + x;  // x - (u - 1), exact
    log_table_reduce_f32<true, false>(u * s23, k, r, invc, logc);
    ck = c * fmadd(k, -s23, s23);
#endif
  } else {
    const F u = one + x;
    const F c = select(x > one, one - (u - x), x - (u - one));
    log_table_reduce_f32<false>(u, k, r, invc, logc);  // u >= 2^-24 or 0 (then c = 0)
    const F kc = select(k > splat<F>(100), splat<F>(100), k);  // 2^-k below 2^-100: d is nothing
    ck = c * pow2i<F>(shifted_int(splat<F>(kShifterF) - kc));
  }
  // 1 + x = 2^k (z + c 2^-k): r = (z + c 2^-k) invc - 1, rounded once more.
  r = fmadd(ck, invc, r);
  const F result = log_table_combine_f32<false>(k, r, logc, r);
  if constexpr (kUnit) return result;
  return select(x == splat<F>(0), x, log_specials_f32(x, result, -1.0f));  // keeps -0
}

// softplus(x) = max(x, 0) + log1p(e) and sigmoid(+-x) from one e = e^-|x|
// (exp_fast_f32: 0 for |x| > 87.3). kSigmoid: 0 none, 1 sigmoid(x), -1
// sigmoid(-x). log1p(e) = e + e^2 P(e), e in [0, 1], P of degree 8 (no
// division): a least-squares fit of (log1p(e) - e) / e^2 weighted to the
// relative error of log1p(e), float32 coefficients rounded one at a time
// from the lowest order (the rest refitted after each); |error| < 2^-27.2
// relative. softplus < 2.5 ulp (1.76 measured), sigmoid < 2 ulp (1.86).
template <bool kSoftplus, int kSigmoid, class F>
inline void logistic_fast_f32(F x, F& softplus, F& sigmoid) {
  const F zero = splat<F>(0), one = splat<F>(1);
  // -|x| by setting the sign bit (one operation); the sigmoid needs e NaN
  // for NaN x, the softplus alone does not (max(x, 0) keeps the NaN).
  const F e = exp_fast_f32<true, kSigmoid != 0>(from_bits(to_bits(x) | usplat32<F>(0x80000000u)));
  if constexpr (kSoftplus) {
    static constexpr float c[] = {-0.0032268476206809282f, 0.01978927105665207f, -0.056879717856645584f,
                                  0.10600581020116806f,    -0.15307912230491638f, 0.1967887133359909f,
                                  -0.24955375492572784f,   0.3333020508289337f,   -0.4999992251396179f};
    const F log1p_e = fmadd(e * e, horner_fma(e, c), e);
    softplus = max_or_second(zero, x) + log1p_e;  // NaN kept: (0 > x ? 0 : x)
  }
  if constexpr (kSigmoid != 0) {
    // (x >= 0 ? 1 : e) / (1 + e) (sigmoid(-x): the other numerator) with
    // 1 + e = h + l exactly (Fast2Sum): q (1 - l / h) removes h's rounding,
    // l / h <= 2^-24 so 1 / h ~ 1.457 - h / 2 (7 % on [1, 2]) is plenty.
    const F h = one + e;
    const F l = e - (h - one);
    const F num = kSigmoid > 0 ? select(x >= zero, one, e) : select(x >= zero, e, one);
    const F q = num / h;  // NaN: e is NaN
    sigmoid = fmadd(-q, l * fmadd(splat<F>(-0.5), h, splat<F>(1.457)), q);
  }
}

}  // namespace math_detail

// Public functions, for V in {VecF, VecD, float, double}. The error bounds are
// what tests/test_vector_math.py measures (dense grids and special values
// against correctly rounded references) on every ISA level; results are
// bitwise identical across levels and between vector lanes and scalar tails.

template <class V>
constexpr bool kIsF32 = sizeof(typename ElemOf<V>::type) == sizeof(float);

// exp(x). Lanes: f32, f64. Max error: f32 1 ulp, f64 1 ulp. Range: all x
// (+inf above 88.72 / 709.78; denormals, then 0, below -87.3 / -708.4).
template <class V>
inline V exp(V x) {
  if constexpr (kIsF32<V>) return math_detail::exp_f32(x);
  else return math_detail::exp_core(x);
}

// expm1(x) = e^x - 1. Lanes: f32, f64. Max error: f32 1 ulp, f64 2 ulp.
// Range: all x (tiny and denormal x exact, -0 kept, -1 below -17.4 / -37.5,
// +inf above 88.72 / 709.78).
template <class V>
inline V expm1(V x) {
  if constexpr (kIsF32<V>) return math_detail::expm1_f32(x);
  else return math_detail::expm1_core(x);
}

// log(x). Lanes: f32, f64. Max error: f32 1 ulp, f64 1 ulp. Range: x > 0
// including denormals; log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf.
template <class V>
inline V log(V x) {
  if constexpr (kIsF32<V>) return math_detail::log_f32(x);
  else return math_detail::log_core<true>(x, V{});
}

// log1p(x) = log(1 + x). Lanes: f32, f64. Max error: f32 1 ulp, f64 1 ulp.
// Range: x > -1 (tiny and denormal x exact, -0 kept); log1p(-1) = -inf,
// x < -1 -> NaN, +inf -> +inf.
template <class V>
inline V log1p(V x) {
  if constexpr (kIsF32<V>) return math_detail::log1p_f32(x);
  else return math_detail::log1p_core<false>(x);
}

// softplus(x) and sigmoid(x) from one exp (a logits loss's value and
// gradient): the same bits as calling softplus and sigmoid.
template <class V>
inline void softplus_and_sigmoid(V x, V& softplus_out, V& sigmoid_out) {
  if constexpr (kIsF32<V>) math_detail::softplus_sigmoid_f32<true, true>(x, softplus_out, sigmoid_out);
  else math_detail::softplus_sigmoid_core<true, true>(x, softplus_out, sigmoid_out);
}

// softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|). Lanes: f32, f64.
// Max error: f32 1 ulp, f64 2 ulp. Range: all x, no overflow (x itself
// for large x, e^x down to denormals and 0 for very negative x).
template <class V>
inline V softplus(V x) {
  V softplus_out{}, unused{};
  if constexpr (kIsF32<V>) math_detail::softplus_sigmoid_f32<true, false>(x, softplus_out, unused);
  else math_detail::softplus_sigmoid_core<true, false>(x, softplus_out, unused);
  return softplus_out;
}

// log_sigmoid(x) = log(1 / (1 + e^-x)) = -softplus(-x). Lanes: f32, f64.
// Max error: f32 1 ulp, f64 2 ulp. Range: all x, no overflow.
template <class V>
inline V log_sigmoid(V x) {
  return -softplus(-x);
}

// sigmoid(x) = 1 / (1 + e^-x) = (x >= 0 ? 1 : e) / (1 + e), e = e^-|x|.
// Lanes: f32, f64. Max error: f32 1 ulp, f64 2 ulp. Range: all x, no
// overflow (1 above 16.6 / 36.7; denormals, then 0, below -87.3 / -708.4).
template <class V>
inline V sigmoid(V x) {
  V unused{}, sigmoid_out{};
  if constexpr (kIsF32<V>) math_detail::softplus_sigmoid_f32<false, true>(x, unused, sigmoid_out);
  else math_detail::softplus_sigmoid_core<false, true>(x, unused, sigmoid_out);
  return sigmoid_out;
}

// tanh(x) = e / (e + 2) with e = expm1(2|x|), x's sign: expm1 keeps the
// relative accuracy for tiny |x| (no 1 - 2 / (e^2x + 1) cancellation), and
// |x| is clamped at 20 first (tanh rounds to 1 beyond 9.01 / 19.06). Lanes:
// f32, f64. Max error: f32 2.5 ulp (2.19 measured), f64 2 ulp (1.59). Range: all x (-0 kept, +-1 for
// +-inf, NaN kept). Built on expm1 (no FMA): bitwise the same on every level.
template <class V>
inline V tanh(V x) {
  const V zero = splat<V>(0), two = splat<V>(2), limit = splat<V>(20);
  const V a = abs(x);
  const V e = expm1(two * select(a < limit, a, limit));  // NaN: clamped to 20, restored below
  const V t = e / (e + two);
  const V signed_t = select(x < zero, -t, t);
  return select(a < limit, select(x == zero, x, signed_t), select(x == x, signed_t, x));
}

// ---- The losses' variants: float32 from the *_fast_f32 functions above
// (their comments give the bounds; tests/test_vector_math.py asserts them),
// float64 the functions above, unchanged. Lanes, tails and every level give
// the same bits.

// exp(x); float32 flushes results below FLT_MIN (x < -87.34) to 0.
template <class V>
inline V loss_exp(V x) {
  if constexpr (kIsF32<V>) return math_detail::exp_fast_f32(x);
  else return exp(x);
}

// log(x): float32 < 2 ulp. kUnit: x is in [0, 1] and the
// caller clamps at -100 (or does not use the result): log(+-0) is -inf or
// below -103; NaN, +inf and x < 0 give unspecified values.
template <bool kUnit = false, class V>
inline V loss_log(V x) {
  if constexpr (kIsF32<V>) return math_detail::log_fast_f32<kUnit>(x);
  else return log(x);
}

// x in [0, 1] (false for NaN), for loss_log<true>'s callers: float32 tests
// the bits of the log's own scaled argument (2^23 x + 0 <= 2^23 as unsigned
// integers: -0 is +0 there, negatives and NaN have larger bits), one compare
// where the log's scaling is shared; float64 compares twice.
template <class V>
inline auto in_unit_interval(V x) {
  if constexpr (kIsF32<V>) {
    using namespace math_detail;
    return to_bits(unit_scaled_f32(x)) <= usplat32<V>(0x4b000000u);
  } else {
    return x >= splat<V>(0) && x <= splat<V>(1);
  }
}

// log1p(x): float32 < 2 ulp. kUnit: x is in [-1, 0] and
// the caller clamps at -100 (or does not use the result): log1p(-1) is -inf
// or below -103, a zero result's sign is unspecified; NaN, +inf and x
// outside give unspecified values.
template <bool kUnit = false, class V>
inline V loss_log1p(V x) {
  if constexpr (kIsF32<V>) return math_detail::log1p_fast_f32<kUnit>(x);
  else return log1p(x);
}

// softplus(x) (if kSoftplus) and sigmoid(x) (kSigmoid 1) or sigmoid(-x)
// (kSigmoid -1) from one exp: float32 < 2.5 / 2 ulp, e^-|x| flushed to 0
// beyond |x| = 87.34: softplus(x) = 0 below x = -87.34 and x + 0 above 87.34
// (torch's float32 log1p(exp(x)) is a denormal down to x = -103.9).
template <bool kSoftplus, int kSigmoid, class V>
inline void loss_logistic(V x, V& softplus_out, V& sigmoid_out) {
  if constexpr (kIsF32<V>) {
    math_detail::logistic_fast_f32<kSoftplus, kSigmoid>(x, softplus_out, sigmoid_out);
  } else {
    V unused{};
    if constexpr (kSoftplus) math_detail::softplus_sigmoid_core<true, false>(x, softplus_out, unused);
    if constexpr (kSigmoid != 0)
      math_detail::softplus_sigmoid_core<false, true>(kSigmoid > 0 ? x : -x, unused, sigmoid_out);
  }
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
