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

// The row-wise losses: a reduction along one axis (the class axis, or the
// feature axis of the paired-row losses) for every position of the other
// axes (cpp/src/simd/rowwise_driver.h). One row each; the RowLoss ids, each
// level's row-wise kernel table, the bindings' metadata
// (fastloss._core.rowwise_losses(), compared with the Python registry by
// tests/test_registry.py) come from this list.
//
// Columns: X(Id, "functional name", Family, inputs, grads, target, "options")
//   Id          the C++ functor (cpp/src/losses/<family>.h) and the RowLoss id
//   inputs      float row operands (RowwiseCall::inputs), in torch's order
//   grads       gradients it writes, one per differentiable row operand
//   target      what RowwiseCall::target holds: Index (a class index per row,
//               any integer width), IndexRows (a row of class indices per
//               row, any integer width), Float (a float row), IndexOrFloat
//               (either: cross_entropy's class indices or probabilities), None
//   options     its numeric options in RowwiseCall::options order
#define FASTLOSS_ROWWISE_LOSSES(X)                                                                  \
  X(CrossEntropy, "cross_entropy", Classification, 1, 1, IndexOrFloat, "ignore_index label_smoothing z_loss softcap") \
  X(NllLoss, "nll_loss", Classification, 1, 1, Index, "ignore_index")                               \
  X(MultilabelSoftMargin, "multilabel_soft_margin_loss", Classification, 1, 1, Float, "")          \
  X(MultiMargin, "multi_margin_loss", Classification, 1, 1, Index, "p margin")                       \
  X(MultilabelMargin, "multilabel_margin_loss", Classification, 1, 1, IndexRows, "")             \
  FASTLOSS_EMBEDDING_LOSSES(X)                                                                      \
  FASTLOSS_BEYOND_TORCH_ROW_LOSSES(X)

// Row-wise losses torch.nn does not have (issue 14; cpp/src/losses/classification.h),
// after the others so the earlier ids stay as they were.
#define FASTLOSS_BEYOND_TORCH_ROW_LOSSES(X)                                                                  \
  X(Poly1CrossEntropy, "poly1_cross_entropy", Classification, 1, 1, Index, "ignore_index label_smoothing epsilon") \
  X(SoftmaxFocal, "softmax_focal_loss", Classification, 1, 1, Index, "ignore_index gamma")                 \
  X(Dice, "dice_loss", Classification, 1, 1, Float, "smooth eps")

// The feature-axis rows (cpp/src/losses/embedding.h: two or three row
// operands, the features as the cube's middle axis, per-row scalars; a Float
// target is one value per row). pairwise_distance and cosine_distance are the
// public distance functions (always reduction None); the cosine-distance
// triplet is triplet_margin_with_distance_loss's native
// distance_function=cosine_distance (its pairwise_distance runs on
// triplet_margin_loss's row).
#define FASTLOSS_EMBEDDING_LOSSES(X)                                                       \
  X(PairwiseDistance, "pairwise_distance", Embedding, 2, 2, None, "p eps")                 \
  X(CosineDistance, "cosine_distance", Embedding, 2, 2, None, "")                          \
  X(CosineEmbedding, "cosine_embedding_loss", Embedding, 2, 2, Float, "margin")            \
  X(TripletMargin, "triplet_margin_loss", Embedding, 3, 3, None, "margin p eps swap")      \
  X(TripletMarginCosine, "triplet_margin_with_distance_loss", Embedding, 3, 3, None, "margin swap")

namespace fastloss {

enum class RowLoss : int {
#define FASTLOSS_ROW_ID(id, name, family, inputs, grads, target, options) id,
  FASTLOSS_ROWWISE_LOSSES(FASTLOSS_ROW_ID)
#undef FASTLOSS_ROW_ID
};

constexpr int kNumRowLosses = 0
#define FASTLOSS_ROW_COUNT(id, name, family, inputs, grads, target, options) +1
    FASTLOSS_ROWWISE_LOSSES(FASTLOSS_ROW_COUNT)
#undef FASTLOSS_ROW_COUNT
    ;

// What a row-wise loss's RowwiseCall::target holds.
enum class RowTarget : int { None, Index, IndexRows, Float, IndexOrFloat };

struct RowLossInfo {
  const char* name;
  int inputs;
  int grads;
  RowTarget target;
  const char* options;
};

inline const RowLossInfo& row_loss_info(RowLoss loss) {
  static const RowLossInfo kInfo[] = {
#define FASTLOSS_ROW_INFO(id, name, family, inputs, grads, target, options) \
  {name, inputs, grads, RowTarget::target, options},
      FASTLOSS_ROWWISE_LOSSES(FASTLOSS_ROW_INFO)
#undef FASTLOSS_ROW_INFO
  };
  return kInfo[static_cast<int>(loss)];
}

}  // namespace fastloss

// The sequence losses (their own family: a recursion over time per sample,
// not an element-wise formula; cpp/src/losses/ctc.h). Same columns as
// above: X(Id, "functional name", Family, inputs, grads, "options"); their
// entry points are in fastloss/ctc.h, the bindings list them in
// fastloss._core.sequence_losses().
#define FASTLOSS_SEQUENCE_LOSSES(X) \
  X(Ctc, "ctc_loss", Ctc, 4, 1, "blank zero_infinity")

namespace fastloss {

enum class SequenceLoss : int {
#define FASTLOSS_SEQUENCE_ID(id, name, family, inputs, grads, options) id,
  FASTLOSS_SEQUENCE_LOSSES(FASTLOSS_SEQUENCE_ID)
#undef FASTLOSS_SEQUENCE_ID
};

inline const LossInfo& loss_info(SequenceLoss loss) {
  static const LossInfo kInfo[] = {
#define FASTLOSS_SEQUENCE_INFO(id, name, family, inputs, grads, options) {name, inputs, grads, options},
      FASTLOSS_SEQUENCE_LOSSES(FASTLOSS_SEQUENCE_INFO)
#undef FASTLOSS_SEQUENCE_INFO
  };
  return kInfo[static_cast<int>(loss)];
}

}  // namespace fastloss
