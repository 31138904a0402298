// Typed options of the row-wise losses (fastloss/losses.h's
// FASTLOSS_ROWWISE_LOSSES): one list per loss, FASTLOSS_OPTIONS_<Id>(O), of
// O(type, name, torch's default) in the table's option order. From it come
// a struct <Id>Options per loss (the options, then `reduction`), its
// conversion to RowwiseCall::options and the defaults the C ABI's
// fastloss_rowwise_call_init fills in. A static_assert checks that each
// list names the table's options in the table's order, so the two cannot
// drift apart: a loss added to the table needs its list here (one line).
#pragma once

#include <cstdint>

#include "fastloss/fastloss.h"

// A list may be empty. Integer options (class indices) are int64_t, flags bool.
// (cross_entropy's softcap: 0 is Python's None, no cap)
#define FASTLOSS_OPTIONS_CrossEntropy(O) \
  O(int64_t, ignore_index, -100) O(double, label_smoothing, 0.0) O(double, z_loss, 0.0) O(double, softcap, 0.0)
#define FASTLOSS_OPTIONS_NllLoss(O) O(int64_t, ignore_index, -100)
#define FASTLOSS_OPTIONS_MultilabelSoftMargin(O)
#define FASTLOSS_OPTIONS_MultiMargin(O) O(int, p, 1) O(double, margin, 1.0)
#define FASTLOSS_OPTIONS_MultilabelMargin(O)
#define FASTLOSS_OPTIONS_PairwiseDistance(O) O(double, p, 2.0) O(double, eps, 1e-6)
#define FASTLOSS_OPTIONS_CosineDistance(O)
#define FASTLOSS_OPTIONS_CosineEmbedding(O) O(double, margin, 0.0)
#define FASTLOSS_OPTIONS_TripletMargin(O) \
  O(double, margin, 1.0) O(double, p, 2.0) O(double, eps, 1e-6) O(bool, swap, false)
#define FASTLOSS_OPTIONS_TripletMarginCosine(O) O(double, margin, 1.0) O(bool, swap, false)
// Beyond torch.nn: the Python functions' defaults (softmax_focal_loss's alpha is
// the Python layer's: folded into the class weight).
#define FASTLOSS_OPTIONS_Poly1CrossEntropy(O) \
  O(int64_t, ignore_index, -100) O(double, label_smoothing, 0.0) O(double, epsilon, 1.0)
#define FASTLOSS_OPTIONS_SoftmaxFocal(O) O(int64_t, ignore_index, -100) O(double, gamma, 2.0)
#define FASTLOSS_OPTIONS_Dice(O) O(double, smooth, 0.0) O(double, eps, 1e-7)

namespace fastloss {
namespace detail {

// "a b c" equals " a b c" after its leading space (the list's names, joined).
constexpr bool same_option_names(const char* table, const char* list) {
  if (*list == ' ') ++list;
  while (*table != '\0' && *table == *list) {
    ++table;
    ++list;
  }
  return *table == *list;
}

constexpr int count_options(const char* names) {
  int n = 0;
  bool in_word = false;
  for (; *names != '\0'; ++names) {
    const bool space = *names == ' ';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

}  // namespace detail

#define FASTLOSS_OPTION_MEMBER(type, name, value) type name = value;
#define FASTLOSS_OPTION_STORE(type, name, value) out[k++] = static_cast<double>(name);
#define FASTLOSS_OPTION_NAME(type, name, value) " " #name
#define FASTLOSS_OPTIONS_STRUCT(id, fname, family, inputs, grads, target, options)                          \
  /* The options of fname (losses.h's options column, torch's defaults) and the reduction. */              \
  struct id##Options {                                                                                      \
    FASTLOSS_OPTIONS_##id(FASTLOSS_OPTION_MEMBER) Reduction reduction = Reduction::Mean;                   \
    /* Writes the options into RowwiseCall::options order. */                                               \
    void store(double* out) const {                                                                          \
      int k = 0;                                                                                             \
      FASTLOSS_OPTIONS_##id(FASTLOSS_OPTION_STORE)(void) out;                                                \
      (void)k;                                                                                               \
    }                                                                                                        \
  };                                                                                                        \
  static_assert(detail::same_option_names(options, "" FASTLOSS_OPTIONS_##id(FASTLOSS_OPTION_NAME)),         \
                "fastloss/options.h: FASTLOSS_OPTIONS_" #id " must list losses.h's options of " fname);     \
  static_assert(detail::count_options(options) <= kMaxOptions, fname ": more options than kMaxOptions");
FASTLOSS_ROWWISE_LOSSES(FASTLOSS_OPTIONS_STRUCT)
#undef FASTLOSS_OPTIONS_STRUCT
#undef FASTLOSS_OPTION_NAME
#undef FASTLOSS_OPTION_STORE
#undef FASTLOSS_OPTION_MEMBER

// RowOptions<RowLoss::CrossEntropy> is CrossEntropyOptions, and so on.
template <RowLoss L>
struct RowOptionsOf;
#define FASTLOSS_OPTIONS_OF(id, fname, family, inputs, grads, target, options) \
  template <>                                                                   \
  struct RowOptionsOf<RowLoss::id> {                                            \
    using type = id##Options;                                                   \
  };
FASTLOSS_ROWWISE_LOSSES(FASTLOSS_OPTIONS_OF)
#undef FASTLOSS_OPTIONS_OF
template <RowLoss L>
using RowOptions = typename RowOptionsOf<L>::type;

// torch's defaults of a loss's options, in RowwiseCall::options order (the
// rest of out[0 .. kMaxOptions) is 0). Unknown ids: all 0.
inline void row_option_defaults(RowLoss loss, double* out) {
  for (int k = 0; k < kMaxOptions; ++k) out[k] = 0;
  switch (loss) {
#define FASTLOSS_OPTIONS_DEFAULT(id, fname, family, inputs, grads, target, options) \
  case RowLoss::id:                                                                 \
    id##Options{}.store(out);                                                       \
    break;
    FASTLOSS_ROWWISE_LOSSES(FASTLOSS_OPTIONS_DEFAULT)
#undef FASTLOSS_OPTIONS_DEFAULT
    default:
      break;
  }
}

}  // namespace fastloss

// The sequence losses' options (FASTLOSS_SEQUENCE_LOSSES), the same way:
// CtcOptions {blank, zero_infinity, reduction}.
#define FASTLOSS_OPTIONS_Ctc(O) O(int64_t, blank, 0) O(bool, zero_infinity, false)

namespace fastloss {

#define FASTLOSS_OPTION_MEMBER(type, name, value) type name = value;
#define FASTLOSS_OPTION_NAME(type, name, value) " " #name
#define FASTLOSS_SEQUENCE_OPTIONS_STRUCT(id, fname, family, inputs, grads, options)                          \
  /* The options of fname (losses.h's options column, torch's defaults) and the reduction. */              \
  struct id##Options {                                                                                      \
    FASTLOSS_OPTIONS_##id(FASTLOSS_OPTION_MEMBER) Reduction reduction = Reduction::Mean;                   \
  };                                                                                                        \
  static_assert(detail::same_option_names(options, "" FASTLOSS_OPTIONS_##id(FASTLOSS_OPTION_NAME)),         \
                "fastloss/options.h: FASTLOSS_OPTIONS_" #id " must list losses.h's options of " fname);
FASTLOSS_SEQUENCE_LOSSES(FASTLOSS_SEQUENCE_OPTIONS_STRUCT)
#undef FASTLOSS_SEQUENCE_OPTIONS_STRUCT
#undef FASTLOSS_OPTION_NAME
#undef FASTLOSS_OPTION_MEMBER

}  // namespace fastloss
