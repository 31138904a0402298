// One table of kernel entry points per instruction-set level. Each level's
// table is compiled from the same sources with that level's flags (see
// CMakeLists.txt); dispatch.cpp picks one at run time.
#pragma once

#include "fastloss/fastloss.h"
#include "losses/ctc_sample.h"
#include "simd/gemm.h"

namespace fastloss {

// The loss families: one source file each (cpp/src/losses/<family>.cpp),
// which fills its losses' entries of the table.
enum class Family { Regression, Probabilistic, Margin, Classification, Embedding };

namespace detail {

using ElementwiseFn = Totals (*)(const ElementwiseCall&);
using RowwiseFn = RowTotals (*)(const RowwiseCall&);  // simd/rowwise_driver.h
using VectorMathFn = void (*)(int fn, const void* in, void* out, int64_t n);  // simd/math_kernels.cpp
// float16 (as its bits) <-> float32 over contiguous arrays, bitwise NumPy's
// astype (simd/half_kernels.cpp; simd/convert.h walks strided arrays).
using HalfToFloatFn = void (*)(const uint16_t* src, float* dst, int64_t n);
using FloatToHalfFn = void (*)(const float* src, uint16_t* dst, int64_t n);

struct KernelTable {
  const char* name;
  ElementwiseFn elementwise[kNumLosses][2];  // [Loss][DType]
  RowwiseFn rowwise[kNumRowLosses][2];       // [RowLoss][DType]
  VectorMathFn vector_math[2];               // indexed by DType; fn is a MathFn (simd/math_functions.h)
  HalfToFloatFn half_to_float;
  FloatToHalfFn float_to_half;
  CtcSampleFn ctc[2];                        // [DType]: one CTC sample (losses/ctc.cpp)
  GemmTileFn gemm_tile[2];                   // [DType]: one tile of the built-in GEMM (simd/gemm_kernels.cpp)
};

const KernelTable& current_table();  // dispatch.cpp: the selected level

}  // namespace detail

#define FASTLOSS_DECLARE_TABLE(ns)          \
  namespace ns {                            \
  const detail::KernelTable& kernels();     \
  }
FASTLOSS_DECLARE_TABLE(baseline)
FASTLOSS_DECLARE_TABLE(avx2)
FASTLOSS_DECLARE_TABLE(avx512)
#undef FASTLOSS_DECLARE_TABLE

}  // namespace fastloss
