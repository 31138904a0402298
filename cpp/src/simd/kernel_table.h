// One table of kernel entry points per instruction-set level. Each level's
// table is compiled from the same sources with that level's flags (see
// CMakeLists.txt); dispatch.cpp picks one at run time.
#pragma once

#include "fastloss/fastloss.h"

namespace fastloss {
namespace detail {

using PointwiseFn = double (*)(Pointwise, const PointwiseArgs&);

struct KernelTable {
  const char* name;
  PointwiseFn pointwise[2];  // indexed by DType
};

}  // namespace detail

#define FASTLOSS_DECLARE_TABLE(ns) \
  namespace ns {                   \
  extern const detail::KernelTable kKernels; \
  }
FASTLOSS_DECLARE_TABLE(baseline)
FASTLOSS_DECLARE_TABLE(avx2)
FASTLOSS_DECLARE_TABLE(avx512)
#undef FASTLOSS_DECLARE_TABLE

}  // namespace fastloss
