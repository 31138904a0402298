// The element-wise losses: one row each. Everything else that lists losses
// is generated from this table: the Loss ids below, each instruction-set
// level's kernel table (cpp/src/simd/kernels.cpp), the Python bindings'
// metadata (fastloss._core.losses(), which a test compares with the Python
// registry) and the C++ test's loss list.
//
// Columns: X(Id, "functional name", Family, inputs, grads, "options")
//   Id          the C++ functor (cpp/src/losses/<family>.h) and the Loss id
//   inputs      arrays the loss reads, in torch's argument order; weight and
//               grad_output are the driver's, not listed here
//   grads       gradients it writes: of inputs 0, 1, ... in that order
//   options     its numeric options in ElementwiseCall::options order
//               (bools as 0/1), space separated
#pragma once

#define FASTLOSS_ELEMENTWISE_LOSSES(X)                      \
  X(Sum, "sum", Regression, 1, 0, "")                       \
  X(L1, "l1_loss", Regression, 2, 1, "")                    \
  X(Mse, "mse_loss", Regression, 2, 1, "")                  \
  X(SmoothL1, "smooth_l1_loss", Regression, 2, 1, "beta")   \
  X(Huber, "huber_loss", Regression, 2, 1, "delta")

namespace fastloss {

enum class Loss : int {
#define FASTLOSS_LOSS_ID(id, name, family, inputs, grads, options) id,
  FASTLOSS_ELEMENTWISE_LOSSES(FASTLOSS_LOSS_ID)
#undef FASTLOSS_LOSS_ID
};

constexpr int kNumLosses = 0
#define FASTLOSS_LOSS_COUNT(id, name, family, inputs, grads, options) +1
    FASTLOSS_ELEMENTWISE_LOSSES(FASTLOSS_LOSS_COUNT)
#undef FASTLOSS_LOSS_COUNT
    ;

// What the table says of one loss (for bindings, tests and validation).
struct LossInfo {
  const char* name;
  int inputs;
  int grads;
  const char* options;
};

inline const LossInfo& loss_info(Loss loss) {
  static const LossInfo kInfo[] = {
#define FASTLOSS_LOSS_INFO(id, name, family, inputs, grads, options) {name, inputs, grads, options},
      FASTLOSS_ELEMENTWISE_LOSSES(FASTLOSS_LOSS_INFO)
#undef FASTLOSS_LOSS_INFO
  };
  return kInfo[static_cast<int>(loss)];
}

}  // namespace fastloss
