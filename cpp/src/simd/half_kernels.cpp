// float16 <-> float32 over contiguous arrays for one ISA level, bitwise equal
// to NumPy's astype (npy_halfbits_to_floatbits / npy_floatbits_to_halfbits):
// round to nearest even (subnormal results included), overflow to +-inf, and
// NaN payloads kept as NumPy keeps them: float16 -> float32 shifts the payload
// up, float32 -> float16 keeps its top 10 bits (or 1 if those are all 0), and
// neither direction sets the quiet bit. The AVX2/AVX-512 levels use F16C,
// which is exact except that it quiets signalling NaNs; a step holding one
// (never in practice) is redone by the scalar code. The baseline level runs
// the scalar algorithm on SSE2 vectors. No result depends on MXCSR's FTZ/DAZ:
// F16C ignores them, and the baseline's float additions see and give normal
// numbers only (a float32 subnormal input rounds to a float16 zero either
// way). They assume round-to-nearest, as all of fastloss's arithmetic does.
#include <cstdint>
#include <cstring>

#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {
namespace {

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// float16 bits -> float32 bits. Exponent rebias by integer addition; inf/NaN
// get the rest of the exponent; a subnormal h = m * 2^-24 becomes
// (2^-14 + m * 2^-24) - 2^-14, a difference of two normal floats in one
// binade, which is exact (Sterbenz).
inline uint32_t half_to_float_bits(uint16_t h) {
  uint32_t o = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t exponent = o & 0x0f800000u;
  o += 0x38000000u;  // (127 - 15) << 23
  if (exponent == 0x0f800000u)
    o += 0x38000000u;  // inf/NaN: exponent 255, payload as it is
  else if (exponent == 0)
    o = bits_of(float_of(o + 0x00800000u) - float_of(0x38800000u));  // zero/subnormal; 2^-14
  return o | static_cast<uint32_t>(h & 0x8000u) << 16;
}

// float32 bits -> float16 bits, round to nearest even.
//   |f| >= 65536, inf, NaN: inf, or NaN with the payload's top bits;
//   |f| < 2^-14 (a float16 subnormal or zero): |f| + 0.5 rounds |f| to a
//     multiple of 2^-24 (0.5's ulp) in the FPU, and the low mantissa bits of
//     the sum are then the float16 bits (1024 = the smallest normal);
//   otherwise: rebias, add 0xfff + the kept mantissa's lowest bit (ties to
//     even) and keep the top bits; a carry rounds into the exponent, 65520
//     and above into inf.
inline uint16_t float_to_half_bits(uint32_t f) {
  const uint32_t sign = (f >> 16) & 0x8000u;
  const uint32_t a = f & 0x7fffffffu;
  uint32_t o;
  if (a >= 0x47800000u) {
    const uint32_t payload = (a & 0x007fffffu) >> 13;
    o = a > 0x7f800000u ? 0x7c00u | (payload != 0 ? payload : 1u) : 0x7c00u;
  } else if (a < 0x38800000u) {
    o = bits_of(float_of(a) + 0.5f) - 0x3f000000u;
  } else {
    o = (a + 0xc8000fffu + ((a >> 13) & 1u)) >> 13;  // 0xc8000000 = (15 - 127) << 23 mod 2^32
  }
  return static_cast<uint16_t>(o | sign);
}

void half_to_float_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float_of(half_to_float_bits(src[i]));
}

void float_to_half_scalar(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = float_to_half_bits(bits_of(src[i]));
}

#if defined(__F16C__)

#if defined(__AVX512F__)

void half_to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i h = _mm512_loadu_si512(src + i);
    const __m512i a = _mm512_and_si512(h, _mm512_set1_epi16(0x7fff));
    const __mmask32 snan = _mm512_cmpgt_epi16_mask(a, _mm512_set1_epi16(0x7c00)) &
                           _mm512_cmpgt_epi16_mask(_mm512_set1_epi16(0x7e00), a);
    if (snan != 0) {
      half_to_float_scalar(src + i, dst + i, 32);
      continue;
    }
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm512_castsi512_si256(h)));
    _mm512_storeu_ps(dst + i + 16, _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)));
  }
  half_to_float_scalar(src + i, dst + i, n - i);
}

void float_to_half(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(src + i), v1 = _mm512_loadu_ps(src + i + 16);
    const __m512i lim_inf = _mm512_set1_epi32(0x7f800000), lim_quiet = _mm512_set1_epi32(0x7fc00000);
    const __m512i a0 = _mm512_and_si512(_mm512_castps_si512(v0), _mm512_set1_epi32(0x7fffffff));
    const __m512i a1 = _mm512_and_si512(_mm512_castps_si512(v1), _mm512_set1_epi32(0x7fffffff));
    const __mmask16 s0 = _mm512_cmpgt_epi32_mask(a0, lim_inf) & _mm512_cmpgt_epi32_mask(lim_quiet, a0);
    const __mmask16 s1 = _mm512_cmpgt_epi32_mask(a1, lim_inf) & _mm512_cmpgt_epi32_mask(lim_quiet, a1);
    if ((s0 | s1) != 0) {
      float_to_half_scalar(src + i, dst + i, 32);
      continue;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 16), _mm512_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT));
  }
  float_to_half_scalar(src + i, dst + i, n - i);
}

#else  // AVX2 + F16C

// Signalling NaN: exponent all ones, quiet bit clear, payload not zero.
inline bool any_signalling_half(__m128i h) {
  const __m128i a = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  const __m128i snan = _mm_and_si128(_mm_cmpgt_epi16(a, _mm_set1_epi16(0x7c00)),
                                     _mm_cmpgt_epi16(_mm_set1_epi16(0x7e00), a));
  return _mm_movemask_epi8(snan) != 0;
}
inline bool any_signalling_float(__m256 v) {
  const __m256i a = _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
  const __m256i snan = _mm256_and_si256(_mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000)),
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(0x7fc00000), a));
  return _mm256_movemask_epi8(snan) != 0;
}

void half_to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i h0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    const __m128i h1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i + 8));
    if (any_signalling_half(h0) || any_signalling_half(h1)) {
      half_to_float_scalar(src + i, dst + i, 16);
      continue;
    }
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h0));
    _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(h1));
  }
  half_to_float_scalar(src + i, dst + i, n - i);
}

void float_to_half(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(src + i), v1 = _mm256_loadu_ps(src + i + 8);
    if (any_signalling_float(v0) || any_signalling_float(v1)) {
      float_to_half_scalar(src + i, dst + i, 16);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(v0, _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 8), _mm256_cvtps_ph(v1, _MM_FROUND_TO_NEAREST_INT));
  }
  float_to_half_scalar(src + i, dst + i, n - i);
}

#endif  // __AVX512F__

#else  // baseline: the scalar algorithms on SSE2 vectors of 4 lanes

// Lanes where mask is set take a, the others b.
inline __m128i select(__m128i mask, __m128i a, __m128i b) {
  return _mm_or_si128(_mm_and_si128(mask, a), _mm_andnot_si128(mask, b));
}

// 4 float16 values, zero-extended to 32-bit lanes.
inline __m128 half_to_float4(__m128i h) {
  __m128i o = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x7fff)), 13);
  const __m128i exponent = _mm_and_si128(o, _mm_set1_epi32(0x0f800000));
  o = _mm_add_epi32(o, _mm_set1_epi32(0x38000000));
  const __m128i special = _mm_cmpeq_epi32(exponent, _mm_set1_epi32(0x0f800000));
  const __m128i tiny = _mm_cmpeq_epi32(exponent, _mm_setzero_si128());
  // Only the tiny lanes reach the subtraction (the others subtract from 0).
  const __m128 renormal = _mm_sub_ps(
      _mm_castsi128_ps(_mm_and_si128(tiny, _mm_add_epi32(o, _mm_set1_epi32(0x00800000)))),
      _mm_castsi128_ps(_mm_and_si128(tiny, _mm_set1_epi32(0x38800000))));
  o = _mm_add_epi32(o, _mm_and_si128(special, _mm_set1_epi32(0x38000000)));
  o = select(tiny, _mm_castps_si128(renormal), o);
  return _mm_castsi128_ps(_mm_or_si128(o, _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16)));
}

// 4 float32 values -> float16 bits in the low half of each 32-bit lane,
// sign-extended (for _mm_packs_epi32, which saturates signed values).
inline __m128i float_to_half4(__m128 v) {
  const __m128i f = _mm_castps_si128(v);
  const __m128i a = _mm_and_si128(f, _mm_set1_epi32(0x7fffffff));
  const __m128i sign = _mm_and_si128(_mm_srli_epi32(f, 16), _mm_set1_epi32(0x8000));
  const __m128i odd = _mm_and_si128(_mm_srli_epi32(a, 13), _mm_set1_epi32(1));
  const __m128i normal =
      _mm_srli_epi32(_mm_add_epi32(_mm_add_epi32(a, _mm_set1_epi32(static_cast<int>(0xc8000fffu))), odd), 13);
  const __m128i tiny = _mm_cmplt_epi32(a, _mm_set1_epi32(0x38800000));
  // Only the tiny lanes reach the addition (a NaN there would raise 'invalid').
  const __m128i rounded = _mm_sub_epi32(
      _mm_castps_si128(_mm_add_ps(_mm_castsi128_ps(_mm_and_si128(tiny, a)), _mm_set1_ps(0.5f))),
      _mm_set1_epi32(0x3f000000));
  __m128i payload = _mm_srli_epi32(_mm_and_si128(a, _mm_set1_epi32(0x007fffff)), 13);
  payload = _mm_or_si128(payload, _mm_and_si128(_mm_cmpeq_epi32(payload, _mm_setzero_si128()), _mm_set1_epi32(1)));
  const __m128i big = _mm_cmpgt_epi32(a, _mm_set1_epi32(0x477fffff));
  const __m128i nan = _mm_cmpgt_epi32(a, _mm_set1_epi32(0x7f800000));
  __m128i o = select(tiny, rounded, normal);
  o = select(big, _mm_set1_epi32(0x7c00), o);
  o = select(nan, _mm_or_si128(payload, _mm_set1_epi32(0x7c00)), o);
  o = _mm_or_si128(o, sign);
  return _mm_srai_epi32(_mm_slli_epi32(o, 16), 16);
}

void half_to_float(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_ps(dst + i, half_to_float4(_mm_unpacklo_epi16(h, _mm_setzero_si128())));
    _mm_storeu_ps(dst + i + 4, half_to_float4(_mm_unpackhi_epi16(h, _mm_setzero_si128())));
  }
  half_to_float_scalar(src + i, dst + i, n - i);
}

void float_to_half(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i lo = float_to_half4(_mm_loadu_ps(src + i));
    const __m128i hi = float_to_half4(_mm_loadu_ps(src + i + 4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm_packs_epi32(lo, hi));
  }
  float_to_half_scalar(src + i, dst + i, n - i);
}

#endif  // __F16C__

}  // namespace

void half_to_float_kernel(const uint16_t* src, float* dst, int64_t n) { half_to_float(src, dst, n); }
void float_to_half_kernel(const float* src, uint16_t* dst, int64_t n) { float_to_half(src, dst, n); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
