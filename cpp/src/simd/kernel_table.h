// One table of kernel entry points per instruction-set level. Each level's
// table is compiled from the same sources with that level's flags (see
// CMakeLists.txt); dispatch.cpp picks one at run time.
#pragma once

#include "fastloss/fastloss.h"

namespace fastloss {

// The loss families: one source file each (cpp/src/losses/<family>.cpp),
// which fills its losses' entries of the table.
enum class Family { Regression, Probabilistic, Margin };

namespace detail {

using ElementwiseFn = Totals (*)(const ElementwiseCall&);
using VectorMathFn = void (*)(int fn, const void* in, void* out, int64_t n);  // simd/math_kernels.cpp

struct KernelTable {
  const char* name;
  ElementwiseFn elementwise[kNumLosses][2];  // [Loss][DType]
  VectorMathFn vector_math[2];               // indexed by DType; fn is a MathFn (simd/math_functions.h)
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
