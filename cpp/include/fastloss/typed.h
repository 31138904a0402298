// fastloss typed C++17 API: one function per loss over C-contiguous arrays
// and their shape, with the loss's options struct (fastloss/options.h,
// generated from the loss tables: torch's names and defaults) and the
// reduction done by the library.
//
//   std::vector<float> logits(N * C), grad(N * C);
//   std::vector<int32_t> labels(N);                  // any integer width
//   fastloss::CrossEntropyOptions options;           // ignore_index -100, label_smoothing 0, Mean
//   options.label_smoothing = 0.1;
//   fastloss::Outputs<float> out;
//   out.grads[0] = grad.data();                      // d mean / d logits, from the same pass
//   double loss = fastloss::cross_entropy(logits.data(), {N, C}, labels.data(), options, nullptr, out);
//
// Every function returns the reduced loss ('mean' as torch divides: by the
// summed class weights of the counted rows for class-index cross_entropy and
// nll_loss, else by the row count; NaN when nothing counts), or 0 with
// Reduction::None (then out.losses receives one loss per row, required).
// Gradients are written where out.grads[k] is given (every differentiable
// input's, or none), shaped as the inputs, times out.grad_output (None: one
// value per row; else not read) and out.grad_scale.
//
// Errors throw before any array is written: std::invalid_argument (shapes,
// null arrays, options as the Python functions check them, a class weight
// for a loss without one), std::out_of_range (a class index outside
// [0, classes) other than ignore_index, naming it and its row). The arrays
// must hold what the shape says; written arrays must not overlap read ones.
//
// For strided or broadcast operands, use the layer below: fastloss::row_loss
// with a RowwiseCall (fastloss/fastloss.h), which every function here calls
// once, and fastloss::ctc_loss with a CtcCall and a caller-owned workspace
// (fastloss/ctc.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fastloss/ctc.h"
#include "fastloss/fastloss.h"
#include "fastloss/options.h"

namespace fastloss {

using Shape = std::vector<int64_t>;

// What a typed call writes, besides its return value.
template <class T>
struct Outputs {
  T* losses = nullptr;                 // Reduction::None: one loss per row (required then)
  T* grads[kMaxRowInputs] = {};        // d loss / d input k, shaped as input k (null: not computed)
  const T* grad_output = nullptr;      // Reduction::None: one value per row (null: 1); else not read
  double grad_scale = 1.0;             // multiplies every gradient element
};

// The built-in distances of triplet_margin_with_distance_loss.
enum class Distance : int { Pairwise = 0, Cosine = 1 };

namespace detail {

// Keeps a parameter out of template argument deduction (C++20's type_identity).
template <class T>
struct identity {
  using type = T;
};
template <class T>
using same_t = typename identity<T>::type;

template <class T>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "fastloss computes in float or double");
  return std::is_same_v<T, float> ? DType::Float32 : DType::Float64;
}

template <class I>
constexpr ElementType index_type_of() {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>, "class indices are integers");
  if constexpr (std::is_signed_v<I>) {
    if constexpr (sizeof(I) == 1) return ElementType::Int8;
    if constexpr (sizeof(I) == 2) return ElementType::Int16;
    if constexpr (sizeof(I) == 4) return ElementType::Int32;
    return ElementType::Int64;
  } else {
    if constexpr (sizeof(I) == 1) return ElementType::UInt8;
    if constexpr (sizeof(I) == 2) return ElementType::UInt16;
    if constexpr (sizeof(I) == 4) return ElementType::UInt32;
    return ElementType::UInt64;
  }
}

[[noreturn]] inline void invalid(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string("fastloss::") + function + ": " + what);
}

// The product of shape[from, to), checked (non-negative, no int64 overflow).
inline int64_t count(const char* function, const Shape& shape, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t d = from; d < to; ++d) {
    if (shape[d] < 0)
      invalid(function, "shape[" + std::to_string(d) + "]: negative (" + std::to_string(shape[d]) + ")");
    if (__builtin_mul_overflow(n, shape[d], &n)) invalid(function, "shape: the element count overflows int64");
  }
  return n;
}

inline RowArray row_array(const void* data, int64_t s0, int64_t s1, int64_t s2) {
  RowArray a;
  a.data = const_cast<void*>(data);
  a.strides[0] = s0;
  a.strides[1] = s1;
  a.strides[2] = s2;
  return a;
}

template <class T>
void set_outputs(RowwiseCall& c, const Outputs<T>& out, int inputs, const RowArray& layout, const RowArray& per_row) {
  int given = 0;
  for (int k = 0; k < kMaxRowInputs; ++k) given += out.grads[k] != nullptr;
  c.want_grad = given > 0;
  if (given > 0 && given != inputs)
    invalid("typed", "out.grads: give every input's gradient (" + std::to_string(inputs) + ") or none");
  for (int k = 0; k < inputs && c.want_grad; ++k) {
    c.grads[k] = layout;
    c.grads[k].data = out.grads[k];
  }
  c.want_value = c.reduction != Reduction::None || out.losses != nullptr || !c.want_grad;
  if (out.losses != nullptr) {
    c.loss_out = per_row;
    c.loss_out.data = out.losses;
  }
  if (out.grad_output != nullptr && c.reduction == Reduction::None) {
    c.grad_output = per_row;
    c.grad_output.data = const_cast<T*>(out.grad_output);
  }
  c.grad_scale = out.grad_scale;
}

}  // namespace detail

// ---- class-axis losses: input (C), (N, C) or (N, C, d1, ..., dk), class axis 1.
// Target: class indices (any integer type I) shaped as input without the
// class axis; or a float (T) array shaped as input (cross_entropy's
// probabilities, multilabel_soft_margin_loss's targets); or an integer
// array shaped as input (multilabel_margin_loss's rows of indices, -1 ends a
// row's list). weight: C class weights (null: 1), for the losses that have them.
template <RowLoss L, class T, class Target>
double class_loss(const T* input, const Shape& shape, const Target* target, const RowOptions<L>& options = {},
                  const detail::same_t<T>* weight = nullptr, const Outputs<detail::same_t<T>>& out = {}) {
  const RowLossInfo& info = row_loss_info(L);
  const char* f = info.name;
  if (info.inputs != 1) detail::invalid(f, "reads several row operands: call feature_loss");
  if (shape.empty()) detail::invalid(f, "shape: expected 1 or more dimensions (got 0)");
  // The K-dim form (N, C, d1..dk) is cross_entropy's and nll_loss's; these take (C) or (N, C), as torch.
  if (shape.size() > 2 && (L == RowLoss::MultilabelSoftMargin || L == RowLoss::MultiMargin ||
                           L == RowLoss::MultilabelMargin))
    detail::invalid(f, "shape: expected (C) or (N, C), got " + std::to_string(shape.size()) + " dimensions");
  const int64_t numel = detail::count(f, shape, 0, shape.size());
  RowwiseCall c;
  c.outer = shape.size() == 1 ? 1 : shape[0];
  c.classes = shape.size() == 1 ? shape[0] : shape[1];
  c.inner = detail::count(f, shape, 2, shape.size());
  const int64_t C = c.classes, S = c.inner;
  const RowArray layout = detail::row_array(input, C * S, S, 1);
  const RowArray per_row = detail::row_array(nullptr, S, 0, 1);
  if (input == nullptr && numel > 0) detail::invalid(f, "input: null");
  c.inputs[0] = layout;
  if constexpr (std::is_floating_point_v<Target>) {
    static_assert(std::is_same_v<Target, T>, "a float target has the input's type");
    c.target_type = ElementType::Float;
    c.target = detail::row_array(target, C * S, S, 1);
  } else {
    c.target_type = detail::index_type_of<Target>();
    c.target = info.target == RowTarget::IndexRows ? detail::row_array(target, C * S, S, 1)
                                                   : detail::row_array(target, S, 0, 1);
  }
  if (weight != nullptr) c.weight = detail::row_array(weight, 0, 1, 0);
  options.store(c.options);
  c.reduction = options.reduction;
  detail::set_outputs(c, out, 1, layout, per_row);
  return row_loss(L, detail::dtype_of<T>(), c);
}

// ---- feature-axis losses: every operand C-contiguous of one `shape`
// (..., D): rows are the last axis (a 0-d shape is one row of one feature).
// target: one T per row (cosine_embedding_loss's 1 or -1), else null.
template <RowLoss L, class T>
double feature_loss(std::initializer_list<const T*> inputs, const Shape& shape, const T* target,
                    const RowOptions<L>& options = {}, const Outputs<detail::same_t<T>>& out = {}) {
  const RowLossInfo& info = row_loss_info(L);
  const char* f = info.name;
  if (static_cast<int>(inputs.size()) != info.inputs)
    detail::invalid(f, "takes " + std::to_string(info.inputs) + " inputs, got " + std::to_string(inputs.size()));
  const int64_t numel = detail::count(f, shape, 0, shape.size());
  RowwiseCall c;
  c.outer = shape.empty() ? 1 : detail::count(f, shape, 0, shape.size() - 1);
  c.classes = shape.empty() ? 1 : shape.back();
  c.inner = 1;
  const RowArray layout = detail::row_array(nullptr, c.classes, 1, 0);
  const RowArray per_row = detail::row_array(nullptr, 1, 0, 0);
  int k = 0;
  for (const T* x : inputs) {
    if (x == nullptr && numel > 0) detail::invalid(f, "inputs[" + std::to_string(k) + "]: null");
    c.inputs[k] = layout;
    c.inputs[k++].data = const_cast<T*>(x);
  }
  c.target_type = ElementType::Float;
  if (target != nullptr) c.target = detail::row_array(target, 1, 0, 0);
  options.store(c.options);
  c.reduction = options.reduction;
  detail::set_outputs(c, out, info.inputs, layout, per_row);
  return row_loss(L, detail::dtype_of<T>(), c);
}

// ---- one function per loss (torch.nn.functional's names and semantics).

// Cross entropy of logits: class indices (I integer) or probabilities (I = T).
template <class T, class I>
double cross_entropy(const T* input, const Shape& shape, const I* target, const CrossEntropyOptions& options = {},
                     const detail::same_t<T>* weight = nullptr, const Outputs<detail::same_t<T>>& out = {}) {
  return class_loss<RowLoss::CrossEntropy, T, I>(input, shape, target, options, weight, out);
}

// Negative log likelihood of log-probabilities (also (N, C, d1..dk), NLLLoss2d).
template <class T, class I>
double nll_loss(const T* input, const Shape& shape, const I* target, const NllLossOptions& options = {},
                const detail::same_t<T>* weight = nullptr, const Outputs<detail::same_t<T>>& out = {}) {
  return class_loss<RowLoss::NllLoss, T, I>(input, shape, target, options, weight, out);
}

// input (C) or (N, C); target: input's shape, 0/1 (or soft) labels.
template <class T>
double multilabel_soft_margin_loss(const T* input, const Shape& shape, const T* target,
                                   const MultilabelSoftMarginOptions& options = {},
                                   const detail::same_t<T>* weight = nullptr,
                                   const Outputs<detail::same_t<T>>& out = {}) {
  return class_loss<RowLoss::MultilabelSoftMargin, T, T>(input, shape, target, options, weight, out);
}

// input (C) or (N, C); one class index per row; p 1 or 2.
template <class T, class I>
double multi_margin_loss(const T* input, const Shape& shape, const I* target, const MultiMarginOptions& options = {},
                         const detail::same_t<T>* weight = nullptr, const Outputs<detail::same_t<T>>& out = {}) {
  return class_loss<RowLoss::MultiMargin, T, I>(input, shape, target, options, weight, out);
}

// input (C) or (N, C); target input's shape: each row's classes, ended by -1.
template <class T, class I>
double multilabel_margin_loss(const T* input, const Shape& shape, const I* target,
                              const MultilabelMarginOptions& options = {}, const Outputs<detail::same_t<T>>& out = {}) {
  return class_loss<RowLoss::MultilabelMargin, T, I>(input, shape, target, options, nullptr, out);
}

// Rows of input1 and input2 (shape (..., D)); target one 1 or -1 per row.
template <class T>
double cosine_embedding_loss(const T* input1, const T* input2, const Shape& shape, const T* target,
                             const CosineEmbeddingOptions& options = {}, const Outputs<detail::same_t<T>>& out = {}) {
  return feature_loss<RowLoss::CosineEmbedding, T>({input1, input2}, shape, target, options, out);
}

// max(margin + d(a, p) - d(a, n), 0) with d = pairwise_distance(p, eps).
template <class T>
double triplet_margin_loss(const T* anchor, const T* positive, const T* negative, const Shape& shape,
                           const TripletMarginOptions& options = {}, const Outputs<detail::same_t<T>>& out = {}) {
  return feature_loss<RowLoss::TripletMargin, T>({anchor, positive, negative}, shape, nullptr, options, out);
}

// The triplet with a built-in distance: Distance::Pairwise (torch's default,
// pairwise_distance with p = 2, eps = 1e-6; other p, eps:
// triplet_margin_loss) or Distance::Cosine (cosine_distance).
template <class T>
double triplet_margin_with_distance_loss(const T* anchor, const T* positive, const T* negative, const Shape& shape,
                                         Distance distance = Distance::Pairwise,
                                         const TripletMarginCosineOptions& options = {},
                                         const Outputs<detail::same_t<T>>& out = {}) {
  if (distance == Distance::Cosine)
    return feature_loss<RowLoss::TripletMarginCosine, T>({anchor, positive, negative}, shape, nullptr, options, out);
  if (distance != Distance::Pairwise)
    detail::invalid("triplet_margin_with_distance_loss", "distance: unknown value " +
                                                             std::to_string(static_cast<int>(distance)));
  TripletMarginOptions pairwise;
  pairwise.margin = options.margin;
  pairwise.swap = options.swap;
  pairwise.reduction = options.reduction;
  return feature_loss<RowLoss::TripletMargin, T>({anchor, positive, negative}, shape, nullptr, pairwise, out);
}

// ||x1 - x2 + eps||_p per row into `distances` (options.reduction is not
// read: a distance is per row); gradients with out.grads.
template <class T>
void pairwise_distance(const T* x1, const T* x2, const Shape& shape, T* distances,
                       const PairwiseDistanceOptions& options = {}, Outputs<detail::same_t<T>> out = {}) {
  PairwiseDistanceOptions o = options;
  o.reduction = Reduction::None;
  out.losses = distances;
  feature_loss<RowLoss::PairwiseDistance, T>({x1, x2}, shape, nullptr, o, out);
}

// 1 - cosine_similarity(x1, x2) per row (eps 1e-8, as torch) into `distances`.
template <class T>
void cosine_distance(const T* x1, const T* x2, const Shape& shape, T* distances, Outputs<detail::same_t<T>> out = {}) {
  CosineDistanceOptions o;
  o.reduction = Reduction::None;
  out.losses = distances;
  feature_loss<RowLoss::CosineDistance, T>({x1, x2}, shape, nullptr, o, out);
}

// CTC loss of log_probs (max_time, batch, classes), C-contiguous; targets
// padded (padded_length = S >= 0, batch * S labels) or concatenated
// (padded_length < 0, sum(target_lengths) labels); out.losses: per sample;
// out.grads[0]: d loss / d log_probs (torch's convention, ctc.h);
// out.grad_output: per sample (None). Allocates its workspace per call; a
// caller that repeats calls sizes one with ctc_workspace_size and uses
// fastloss::ctc_loss(DType, CtcCall, workspace, bytes).
template <class T>
double ctc_loss(const T* log_probs, int64_t max_time, int64_t batch, int64_t classes, const int64_t* targets,
                int64_t padded_length, const int64_t* input_lengths, const int64_t* target_lengths,
                const CtcOptions& options = {}, const Outputs<detail::same_t<T>>& out = {}) {
  const char* f = "ctc_loss";
  if (max_time < 0 || batch < 0 || classes < 0) detail::invalid(f, "max_time, batch, classes: negative");
  const int64_t numel = detail::count(f, {max_time, batch, classes}, 0, 3);
  if (log_probs == nullptr && numel > 0) detail::invalid(f, "log_probs: null");
  if (batch > 0 && (input_lengths == nullptr || target_lengths == nullptr))
    detail::invalid(f, "input_lengths/target_lengths: null");
  CtcCall c;
  c.max_time = max_time;
  c.batch = batch;
  c.classes = classes;
  c.log_probs = log_probs;
  c.log_probs_strides[0] = batch * classes;
  c.log_probs_strides[1] = classes;
  c.log_probs_strides[2] = 1;
  c.targets = targets;
  int64_t total = 0, longest = 0;
  for (int64_t n = 0; n < batch; ++n) {
    const int64_t tl = target_lengths[n];
    if (tl < 0) detail::invalid(f, "target_lengths[" + std::to_string(n) + "]: negative");
    if (__builtin_add_overflow(total, tl, &total)) detail::invalid(f, "target_lengths: the sum overflows int64");
    longest = tl > longest ? tl : longest;
  }
  if (padded_length >= 0 && __builtin_mul_overflow(batch, padded_length, &c.target_count))
    detail::invalid(f, "batch * padded_length overflows int64");
  if (padded_length < 0) c.target_count = total;
  c.padded_length = padded_length;
  c.input_lengths = input_lengths;
  c.target_lengths = target_lengths;
  c.blank = options.blank;
  c.zero_infinity = options.zero_infinity;
  c.reduction = options.reduction;
  c.losses = out.losses;
  c.grad = out.grads[0];
  c.grad_strides[0] = batch * classes;
  c.grad_strides[1] = classes;
  c.grad_strides[2] = 1;
  std::vector<double> go;
  if (out.grad_output != nullptr && options.reduction == Reduction::None) {
    go.assign(out.grad_output, out.grad_output + batch);
    c.grad_output = go.data();
    c.grad_output_stride = 1;
  }
  if (out.grad_scale != 1.0 && options.reduction != Reduction::None) {
    go.assign(1, out.grad_scale);
    c.grad_output = go.data();
  } else if (out.grad_scale != 1.0) {
    if (go.empty()) go.assign(static_cast<size_t>(batch), 1.0);
    for (double& g : go) g *= out.grad_scale;
    c.grad_output = go.data();
    c.grad_output_stride = 1;
  }
  std::vector<unsigned char> workspace(
      ctc_workspace_size(max_time, batch, longest, c.grad != nullptr,
                         get_num_threads()));
  return fastloss::ctc_loss(detail::dtype_of<T>(), c, workspace.data(), workspace.size());
}

}  // namespace fastloss
