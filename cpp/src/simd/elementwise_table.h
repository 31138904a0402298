// Fills a level's kernel table from the loss list (fastloss/losses.h): each
// family's source file calls fill_family<ItsFamily>, which takes the rows of
// that family and instantiates the driver for their functors (declared here
// for every row, defined in the family's header).
#pragma once

#include "fastloss/losses.h"
#include "simd/elementwise_driver.h"
#include "simd/kernel_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

#define FASTLOSS_DECLARE_FUNCTOR(id, name, family, inputs, grads, options) struct id;
FASTLOSS_ELEMENTWISE_LOSSES(FASTLOSS_DECLARE_FUNCTOR)
#undef FASTLOSS_DECLARE_FUNCTOR

template <bool kMine, class Functor, int kInputs, int kGrads>
void fill_entry(detail::ElementwiseFn* entry) {
  if constexpr (kMine) {
    static_assert(Functor::kInputs == kInputs && Functor::kGrads == kGrads,
                  "losses.h's inputs/grads columns disagree with the functor");
    static_assert(kInputs <= kMaxInputs && kGrads <= kMaxGrads, "too many operands");
    entry[static_cast<int>(DType::Float32)] = &run_loss<Functor, float>;
    entry[static_cast<int>(DType::Float64)] = &run_loss<Functor, double>;
  }
}

template <Family kFamily>
void fill_family(detail::KernelTable& table) {
#define FASTLOSS_FILL(id, name, family, inputs, grads, options) \
  fill_entry<Family::family == kFamily, id, inputs, grads>(table.elementwise[static_cast<int>(Loss::id)]);
  FASTLOSS_ELEMENTWISE_LOSSES(FASTLOSS_FILL)
#undef FASTLOSS_FILL
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
