// Vector types for one instruction-set level, written with GCC/Clang vector
// extensions so the same source compiles to SSE2, AVX2 or AVX-512 depending on
// the flags of the translation unit that includes it.
//
// Every name lives in fastloss::FASTLOSS_ISA_NS (one namespace per ISA) and no
// standard-library template is instantiated here: inline functions compiled
// with AVX-512 flags must never be merged with their baseline twins by the
// linker. Loss functors are written once against these helpers and work on
// both a vector V and its scalar element type T (used for tails).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
// GCC 12 reports -Wmaybe-uninitialized inside the AVX-512 intrinsics that
// start from _mm512_undefined_*() once they are inlined (GCC bug 105593, fixed
// in 13); the state at the header's own lines is what GCC consults.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#error "fastloss kernels: x86-64 only for now (vec.h widen)"
#endif

#ifndef FASTLOSS_ISA_NS
#error "FASTLOSS_ISA_NS must name the instruction-set namespace of this translation unit"
#endif

namespace fastloss {
namespace FASTLOSS_ISA_NS {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX2__) || defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

typedef float VecF __attribute__((vector_size(kVectorBytes)));
typedef double VecD __attribute__((vector_size(kVectorBytes)));

template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  using type = VecF;
};
template <>
struct VecOf<double> {
  using type = VecD;
};

// Element type of V (V itself for scalars).
template <class V>
struct ElemOf {
  using type = V;
};
template <>
struct ElemOf<VecF> {
  using type = float;
};
template <>
struct ElemOf<VecD> {
  using type = double;
};

template <class T>
constexpr int kLanes = kVectorBytes / static_cast<int>(sizeof(T));

// Unaligned load/store (memcpy compiles to one vmovu*).
template <class V, class T>
inline V load(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
inline void store(T* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// Lanes [half * L/2, (half + 1) * L/2) of a float vector widened to double
// (exact): one extract and one convert per half, no trip through memory.
inline VecD widen(VecF v, int half) {
#if defined(__AVX512F__)
  // The zero-masked forms: GCC 12's unmasked ones fill an "undefined" source
  // that trips -Wmaybe-uninitialized inside its own headers.
  const __m256 h = half == 0 ? _mm512_maskz_extractf32x8_ps(0xFF, v, 0) : _mm512_maskz_extractf32x8_ps(0xFF, v, 1);
  return _mm512_maskz_cvtps_pd(0xFF, h);
#elif defined(__AVX__)
  return _mm256_cvtps_pd(half == 0 ? _mm256_castps256_ps128(v) : _mm256_extractf128_ps(v, 1));
#else
  return _mm_cvtps_pd(half == 0 ? v : _mm_movehl_ps(v, v));
#endif
}

// Broadcast a scalar to V (V may itself be the scalar type).
// Constants are converted to the element type first, so float math stays float.
template <class V, class S>
inline V splat(S s) {
  return V{} + static_cast<typename ElemOf<V>::type>(s);
}

// select(mask, a, b): lane-wise mask ? a : b. For vectors the comparison
// operators give integer lane masks; for scalars they give bool.
template <class M, class V>
inline V select(M mask, V a, V b) {
  return mask ? a : b;
}

// |x| by clearing the sign bit: abs(-0) = +0 as torch's (a compare-and-negate
// would keep -0).
typedef int32_t VecI32 __attribute__((vector_size(kVectorBytes)));
typedef int64_t VecI64 __attribute__((vector_size(kVectorBytes)));
inline float abs(float x) { return __builtin_fabsf(x); }
inline double abs(double x) { return __builtin_fabs(x); }
inline VecF abs(VecF x) { return reinterpret_cast<VecF>(reinterpret_cast<VecI32>(x) & 0x7fffffff); }
inline VecD abs(VecD x) {
  return reinterpret_cast<VecD>(reinterpret_cast<VecI64>(x) & 0x7fffffffffffffffLL);
}

// fmadd(a, b, c) = a * b + c rounded once (a fused multiply-add), on every
// level: the FMA instructions on avx2/avx512, an exact emulation on baseline
// (SSE2 has no FMA), so math.h's float32 loss_* functions, the only users,
// give the same bits on every level. The -ffp-contract=off build never fuses
// anything else.
//
// The emulation: a * b is exact in double (24 + 24 bits), s = a b + c is
// rounded to double and e = (a b + c) - s exactly (TwoSum); where e != 0,
// s is replaced by its neighbour with an odd last bit on e's side (rounding
// to odd). Rounding that to float is the correctly rounded a b + c (odd
// rounding to 53 bits, then nearest to 24 <= 53 - 2 bits: Boldo and
// Melquiond, "Emulation of FMA and correctly rounded sums: proved
// algorithms using rounding to odd", IEEE TC 2008). ~20 operations per two
// lanes instead of one; only baseline pays them.
inline double fma_round_to_odd(double a, double b, double c) {
  const double p = a * b;  // exact
  const double s = p + c;
  const double bb = s - p;
  const double e = (p - (s - bb)) + (c - bb);  // TwoSum: p + c = s + e
  int64_t bits;
  std::memcpy(&bits, &s, sizeof bits);
  if ((e < 0 || e > 0) && (bits & 1) == 0) bits += (e < 0) != (s < 0) ? -1 : 1;  // NaN e (s infinite): exact
  double r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}
#if !defined(__FMA__)
// The same on two lanes, in SSE2 (masks from double compares: SSE2 has no
// 64-bit integer compare).
inline __m128d fma_round_to_odd(__m128d a, __m128d b, __m128d c) {
  const __m128d p = _mm_mul_pd(a, b);
  const __m128d s = _mm_add_pd(p, c);
  const __m128d bb = _mm_sub_pd(s, p);
  const __m128d e = _mm_add_pd(_mm_sub_pd(p, _mm_sub_pd(s, bb)), _mm_sub_pd(c, bb));
  const __m128d zero = _mm_setzero_pd();
  const __m128i neg_e = _mm_castpd_si128(_mm_cmplt_pd(e, zero));
  const __m128i inexact = _mm_or_si128(neg_e, _mm_castpd_si128(_mm_cmpgt_pd(e, zero)));
  const __m128i opposite = _mm_xor_si128(neg_e, _mm_castpd_si128(_mm_cmplt_pd(s, zero)));
  const __m128i one = _mm_set1_epi64x(1);
  const __m128i bits = _mm_castpd_si128(s);
  const __m128i even = _mm_sub_epi64(_mm_and_si128(bits, one), one);  // all ones where the last bit is 0
  const __m128i step = _mm_add_epi64(_mm_add_epi64(opposite, opposite), one);  // +-1: toward e
  return _mm_castsi128_pd(_mm_add_epi64(bits, _mm_and_si128(step, _mm_and_si128(inexact, even))));
}
#endif
inline float fmadd(float a, float b, float c) {
#if defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return static_cast<float>(fma_round_to_odd(double{a}, double{b}, double{c}));
#endif
}
inline VecF fmadd(VecF a, VecF b, VecF c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  const __m128 lo = _mm_cvtpd_ps(fma_round_to_odd(_mm_cvtps_pd(a), _mm_cvtps_pd(b), _mm_cvtps_pd(c)));
  const __m128 ah = _mm_movehl_ps(a, a), bh = _mm_movehl_ps(b, b), ch = _mm_movehl_ps(c, c);
  const __m128 hi = _mm_cvtpd_ps(fma_round_to_odd(_mm_cvtps_pd(ah), _mm_cvtps_pd(bh), _mm_cvtps_pd(ch)));
  return _mm_movelh_ps(lo, hi);
#endif
}

// a > b ? a : b, as one maxps/maxpd (the generic select is a compare and a
// blend): b when either is NaN or both are zeros.
inline float max_or_second(float a, float b) { return a > b ? a : b; }
inline double max_or_second(double a, double b) { return a > b ? a : b; }
inline VecF max_or_second(VecF a, VecF b) {
#if defined(__AVX512F__)
  return _mm512_max_ps(a, b);
#elif defined(__AVX__)
  return _mm256_max_ps(a, b);
#else
  return _mm_max_ps(a, b);
#endif
}
inline VecD max_or_second(VecD a, VecD b) {
#if defined(__AVX512F__)
  return _mm512_max_pd(a, b);
#elif defined(__AVX__)
  return _mm256_max_pd(a, b);
#else
  return _mm_max_pd(a, b);
#endif
}

// sign as torch's: 1, -1, or 0 for +-0 and NaN.
template <class V>
inline V sign(V x) {
  const V zero = splat<V>(0);
  return select(x > zero, splat<V>(1), select(x < zero, splat<V>(-1), zero));
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
