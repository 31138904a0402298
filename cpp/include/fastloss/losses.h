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
//   grads       gradients it writes, in the order of the Python registry's
//               differentiable inputs (gaussian_nll_loss: input, var)
//   options     its numeric options in ElementwiseCall::options order
//               (bools as 0/1), space separated
#pragma once

#define FASTLOSS_ELEMENTWISE_LOSSES(X)                                                    \
  X(Sum, "sum", Regression, 1, 0, "")                                                     \
  X(L1, "l1_loss", Regression, 2, 1, "")                                                  \
  X(Mse, "mse_loss", Regression, 2, 1, "")                                                \
  X(SmoothL1, "smooth_l1_loss", Regression, 2, 1, "beta")                                 \
  X(Huber, "huber_loss", Regression, 2, 1, "delta")                                       \
  X(BinaryCrossEntropy, "binary_cross_entropy", Probabilistic, 2, 1, "")                  \
  X(BinaryCrossEntropyWithLogits, "binary_cross_entropy_with_logits", Probabilistic, 3, 1, \
    "has_pos_weight")                                                                     \
  X(PoissonNll, "poisson_nll_loss", Probabilistic, 2, 1, "log_input full eps")            \
  X(GaussianNll, "gaussian_nll_loss", Probabilistic, 3, 2, "full eps")                    \
  X(KlDiv, "kl_div", Probabilistic, 2, 1, "log_target")                                   \
  X(SoftMargin, "soft_margin_loss", Margin, 2, 1, "")                                     \
  X(HingeEmbedding, "hinge_embedding_loss", Margin, 2, 1, "margin")                       \
  X(MarginRanking, "margin_ranking_loss", Margin, 3, 2, "margin")                         \
  X(SigmoidFocal, "sigmoid_focal_loss", Probabilistic, 2, 1, "alpha gamma")               \
  X(LogCosh, "log_cosh_loss", Regression, 2, 1, "")                                       \
  X(Pinball, "pinball_loss", Regression, 2, 1, "quantile")                                \
  X(JensenShannon, "jensen_shannon_divergence", Probabilistic, 2, 1, "beta log_target")

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
