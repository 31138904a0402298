// Fills a level's row-wise kernel table from the row-wise loss list
// (fastloss/losses.h), as elementwise_table.h does for the element-wise
// losses: each family's source file calls fill_row_family<ItsFamily>.
#pragma once

#include "fastloss/losses.h"
#include "simd/kernel_table.h"
#include "simd/rowwise_driver.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

#define FASTLOSS_DECLARE_ROW_FUNCTOR(id, name, family, inputs, grads, target, options) struct id;
FASTLOSS_ROWWISE_LOSSES(FASTLOSS_DECLARE_ROW_FUNCTOR)
#undef FASTLOSS_DECLARE_ROW_FUNCTOR

template <bool kMine, class Functor, RowTarget kTarget>
void fill_row_entry(detail::RowwiseFn* entry) {
  if constexpr (kMine) {
    static_assert(Functor::kTarget == kTarget, "losses.h's target column disagrees with the functor");
    entry[static_cast<int>(DType::Float32)] = &rowwise::run_loss<Functor, float>;
    entry[static_cast<int>(DType::Float64)] = &rowwise::run_loss<Functor, double>;
  }
}

template <Family kFamily>
void fill_row_family(detail::KernelTable& table) {
#define FASTLOSS_FILL_ROW(id, name, family, inputs, grads, target, options) \
  fill_row_entry<Family::family == kFamily, id, RowTarget::target>(table.rowwise[static_cast<int>(RowLoss::id)]);
  FASTLOSS_ROWWISE_LOSSES(FASTLOSS_FILL_ROW)
#undef FASTLOSS_FILL_ROW
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
