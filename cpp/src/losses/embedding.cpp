// The feature-axis family's entries in this level's row-wise kernel table
// (losses/embedding.h has the row loop and the math).
#include "losses/embedding.h"

#include "fastloss/losses.h"
#include "simd/kernel_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

#define FASTLOSS_DECLARE_ROW_FUNCTOR(id, name, family, inputs, grads, target, options) struct id;
FASTLOSS_ROWWISE_LOSSES(FASTLOSS_DECLARE_ROW_FUNCTOR)
#undef FASTLOSS_DECLARE_ROW_FUNCTOR

namespace {
template <bool kMine, class Functor>
void fill_entry(detail::RowwiseFn* entry) {
  if constexpr (kMine) {
    entry[static_cast<int>(DType::Float32)] = &Functor::template run<float>;
    entry[static_cast<int>(DType::Float64)] = &Functor::template run<double>;
  }
}
}  // namespace

void fill_embedding(detail::KernelTable& table) {
#define FASTLOSS_FILL_EMBEDDING(id, name, family, inputs, grads, target, options) \
  fill_entry<Family::family == Family::Embedding, id>(table.rowwise[static_cast<int>(RowLoss::id)]);
  FASTLOSS_ROWWISE_LOSSES(FASTLOSS_FILL_EMBEDDING)
#undef FASTLOSS_FILL_EMBEDDING
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
