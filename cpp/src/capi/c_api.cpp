// The C ABI (cpp/include/fastloss.h) over the C++ API: argument checks the C
// side needs (null pointers, ids, ranges), exceptions turned into status codes
// and a thread-local message.
#include "fastloss.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <new>
#include <stdexcept>
#include <string>

#include "api/checks.h"
#include "fastloss/ctc.h"
#include "fastloss/fastloss.h"
#include "fastloss/linear_cross_entropy.h"
#include "fastloss/options.h"

#ifndef FASTLOSS_VERSION_STRING
#define FASTLOSS_VERSION_STRING "0.0.0"
#endif

namespace {

thread_local std::string g_last_error;

fastloss_status fail(fastloss_status status, const std::string& message) {
  g_last_error = message;
  return status;
}

// Runs f (which may throw), mapping exceptions to status codes.
template <class F>
fastloss_status guarded(F&& f) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, e.what());
  } catch (const std::out_of_range& e) {
    return fail(FASTLOSS_ERROR_INDEX, e.what());
  } catch (const std::bad_alloc&) {
    return fail(FASTLOSS_ERROR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return fail(FASTLOSS_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(FASTLOSS_ERROR_INTERNAL, "unknown error");
  }
}

static_assert(FASTLOSS_MAX_DIMS == fastloss::kMaxDims, "C and C++ dimension limits differ");
static_assert(FASTLOSS_MAX_INPUTS == fastloss::kMaxInputs, "C and C++ input limits differ");
static_assert(FASTLOSS_MAX_GRADS == fastloss::kMaxGrads, "C and C++ gradient limits differ");
static_assert(FASTLOSS_MAX_OPTIONS == fastloss::kMaxOptions, "C and C++ option limits differ");

void copy_array(const fastloss_array& in, fastloss::StridedArray& out) {
  out.data = in.data;
  std::memcpy(out.strides, in.strides, sizeof out.strides);
}

fastloss::ElementwiseCall to_cpp(const fastloss_elementwise_call& c) {
  fastloss::ElementwiseCall call;
  call.ndim = c.ndim;
  std::memcpy(call.shape, c.shape, sizeof call.shape);
  for (int k = 0; k < FASTLOSS_MAX_INPUTS; ++k) copy_array(c.inputs[k], call.inputs[k]);
  copy_array(c.weight, call.weight);
  copy_array(c.grad_output, call.grad_output);
  copy_array(c.loss_out, call.loss_out);
  for (int k = 0; k < FASTLOSS_MAX_GRADS; ++k) copy_array(c.grads[k], call.grads[k]);
  call.want_value = c.want_value != 0;
  call.want_grad = c.want_grad != 0;
  call.grad_scale = c.grad_scale;
  std::memcpy(call.options, c.options, sizeof call.options);
  return call;
}

fastloss_status check_loss(int loss) {
  if (loss < 0 || loss >= fastloss::kNumLosses)
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT,
                "loss: unknown id " + std::to_string(loss) + " (0 .. " + std::to_string(fastloss::kNumLosses - 1) + ")");
  return FASTLOSS_OK;
}

fastloss_status check_dtype(int dtype) {
  if (dtype != FASTLOSS_FLOAT32 && dtype != FASTLOSS_FLOAT64)
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "dtype: expected FASTLOSS_FLOAT32 or FASTLOSS_FLOAT64, got " +
                                                     std::to_string(dtype));
  return FASTLOSS_OK;
}

fastloss_status run(int loss, int dtype, const fastloss::ElementwiseCall& call, fastloss_totals* out) {
  const fastloss::Totals t =
      fastloss::elementwise(static_cast<fastloss::Loss>(loss), static_cast<fastloss::DType>(dtype), call);
  if (out != nullptr) {
    out->loss = t.loss;
    out->weight = t.weight;
    out->errors = t.errors;
  }
  if (t.errors != 0)
    return fail(FASTLOSS_ERROR_VALUE, std::string(fastloss::loss_info(static_cast<fastloss::Loss>(loss)).name) +
                                          ": an input value is outside what the loss accepts (check bits " +
                                          std::to_string(t.errors) + ")");
  return FASTLOSS_OK;
}

static_assert(FASTLOSS_MAX_ROW_INPUTS == fastloss::kMaxRowInputs, "C and C++ row operand limits differ");
static_assert(FASTLOSS_MAX_ROW_OPTIONS >= fastloss::kMaxOptions, "the C row-wise call holds fewer options than C++");
static_assert(FASTLOSS_TARGET_INDEX_OR_FLOAT == static_cast<int>(fastloss::RowTarget::IndexOrFloat) &&
                  FASTLOSS_TARGET_NONE == static_cast<int>(fastloss::RowTarget::None),
              "C and C++ target kinds differ");
static_assert(FASTLOSS_ELEMENT_UINT64 == static_cast<int>(fastloss::ElementType::UInt64) &&
                  FASTLOSS_ELEMENT_FLOAT == static_cast<int>(fastloss::ElementType::Float),
              "C and C++ element types differ");

fastloss_status check_row_loss(int loss) {
  if (loss < 0 || loss >= fastloss::kNumRowLosses)
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "loss: unknown row-wise id " + std::to_string(loss) + " (0 .. " +
                                                     std::to_string(fastloss::kNumRowLosses - 1) + ")");
  return FASTLOSS_OK;
}

// The first version of a versioned struct: what a caller's struct_size must
// at least cover (later versions append fields and default those a smaller
// struct lacks).
template <class S>
fastloss_status check_struct_size(const S& s, size_t first_version, const char* what) {
  if (s.struct_size < static_cast<int64_t>(first_version))
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, std::string("call.struct_size: ") + std::to_string(s.struct_size) +
                                                     ", expected at least " + std::to_string(first_version) +
                                                     " (sizeof(" + what + "); its _init function sets it)");
  return FASTLOSS_OK;
}

void copy_row(const fastloss_row_array& in, fastloss::RowArray& out) {
  out.data = in.data;
  std::memcpy(out.strides, in.strides, sizeof out.strides);
}

fastloss::RowwiseCall to_cpp(const fastloss_rowwise_call& c) {
  fastloss::RowwiseCall call;
  call.outer = c.outer;
  call.classes = c.classes;
  call.inner = c.inner;
  for (int k = 0; k < FASTLOSS_MAX_ROW_INPUTS; ++k) {
    copy_row(c.inputs[k], call.inputs[k]);
    copy_row(c.grads[k], call.grads[k]);
  }
  copy_row(c.target, call.target);
  call.target_type = static_cast<fastloss::ElementType>(c.target_type);  // an int-backed enum: any value is defined
  copy_row(c.weight, call.weight);
  copy_row(c.grad_output, call.grad_output);
  copy_row(c.loss_out, call.loss_out);
  call.reduction = static_cast<fastloss::Reduction>(c.reduction);
  call.want_value = c.want_value != 0;
  call.want_grad = c.want_grad != 0;
  call.grad_scale = c.grad_scale;
  std::memcpy(call.options, c.options, sizeof call.options);
  return call;
}

// The stride rule (fastloss.h): an array's reach must fit the address range.
// Extents are the call's sizes as given; a negative or empty one is left to
// the C++ checks (or reaches nothing).
fastloss_status check_reach(const void* data, const int64_t* strides, std::initializer_list<int64_t> extents,
                            size_t elem, const std::string& name) {
  if (data == nullptr) return FASTLOSS_OK;
  if (!fastloss::detail::reach_fits(data, strides, extents.begin(), static_cast<int>(extents.size()), elem))
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, fastloss::detail::reach_message(name));
  return FASTLOSS_OK;
}

size_t elem_size(int dtype) { return dtype == FASTLOSS_FLOAT32 ? 4 : 8; }

fastloss_status check_elementwise_reach(int dtype, const fastloss_elementwise_call& c) {
  if (c.ndim < 0 || c.ndim > FASTLOSS_MAX_DIMS) return FASTLOSS_OK;  // the C++ check names ndim
  const size_t elem = elem_size(dtype);
  auto one = [&](const fastloss_array& a, const std::string& name) -> fastloss_status {
    if (a.data == nullptr) return FASTLOSS_OK;
    if (!fastloss::detail::reach_fits(a.data, a.strides, c.shape, c.ndim, elem))
      return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, fastloss::detail::reach_message(name + ".strides"));
    return FASTLOSS_OK;
  };
  for (int k = 0; k < FASTLOSS_MAX_INPUTS; ++k)
    if (fastloss_status s = one(c.inputs[k], "inputs[" + std::to_string(k) + "]")) return s;
  if (fastloss_status s = one(c.weight, "weight")) return s;
  if (fastloss_status s = one(c.grad_output, "grad_output")) return s;
  if (fastloss_status s = one(c.loss_out, "loss_out")) return s;
  for (int k = 0; k < FASTLOSS_MAX_GRADS; ++k)
    if (fastloss_status s = one(c.grads[k], "grads[" + std::to_string(k) + "]")) return s;
  return FASTLOSS_OK;
}

// Bytes of a row-wise target element (0: an unknown type, left to the C++ check).
size_t target_elem(int target_type, int dtype) {
  switch (target_type) {
    case FASTLOSS_ELEMENT_FLOAT: return elem_size(dtype);
    case FASTLOSS_ELEMENT_INT8: case FASTLOSS_ELEMENT_UINT8: return 1;
    case FASTLOSS_ELEMENT_INT16: case FASTLOSS_ELEMENT_UINT16: return 2;
    case FASTLOSS_ELEMENT_INT32: case FASTLOSS_ELEMENT_UINT32: return 4;
    case FASTLOSS_ELEMENT_INT64: case FASTLOSS_ELEMENT_UINT64: return 8;
    default: return 0;
  }
}

fastloss_status check_rowwise_reach(int loss, int dtype, const fastloss_rowwise_call& c) {
  const size_t elem = elem_size(dtype);
  const int64_t O = c.outer, C = c.classes, S = c.inner;
  for (int k = 0; k < FASTLOSS_MAX_ROW_INPUTS; ++k) {
    if (fastloss_status s = check_reach(c.inputs[k].data, c.inputs[k].strides, {O, C, S}, elem,
                                        "inputs[" + std::to_string(k) + "].strides"))
      return s;
    if (fastloss_status s = check_reach(c.grads[k].data, c.grads[k].strides, {O, C, S}, elem,
                                        "grads[" + std::to_string(k) + "].strides"))
      return s;
  }
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(loss));
  const size_t te = target_elem(c.target_type, dtype);
  const bool integer = c.target_type != FASTLOSS_ELEMENT_FLOAT;
  // What the loss reads: a class index per row, a float per row (the
  // feature-axis losses), or the whole cube (rows of indices, float rows).
  const bool per_row = (integer && (info.target == fastloss::RowTarget::Index ||
                                    info.target == fastloss::RowTarget::IndexOrFloat)) ||
                       (!integer && info.inputs >= 2);
  if (te != 0) {
    if (fastloss_status s = check_reach(c.target.data, c.target.strides, {O, per_row ? 1 : C, S}, te, "target.strides"))
      return s;
  }
  if (fastloss_status s = check_reach(c.weight.data, c.weight.strides, {1, C, 1}, elem, "weight.strides")) return s;
  if (fastloss_status s = check_reach(c.grad_output.data, c.grad_output.strides, {O, 1, S}, elem,
                                      "grad_output.strides"))
    return s;
  return check_reach(c.loss_out.data, c.loss_out.strides, {O, 1, S}, elem, "loss_out.strides");
}

fastloss_status check_ctc_reach(int dtype, const fastloss_ctc_call& c) {
  const size_t elem = elem_size(dtype);
  const int64_t T = c.max_time, N = c.batch, C = c.classes;
  if (fastloss_status s = check_reach(c.log_probs, c.log_probs_strides, {T, N, C}, elem, "log_probs_strides"))
    return s;
  if (fastloss_status s = check_reach(c.grad, c.grad_strides, {T, N, C}, elem, "grad_strides")) return s;
  if (fastloss_status s = check_reach(c.losses, &c.losses_stride, {N}, elem, "losses_stride")) return s;
  const int64_t one = 1;
  if (fastloss_status s = check_reach(c.targets, &one, {c.target_count}, 8, "target_count")) return s;
  if (c.reduction == FASTLOSS_REDUCTION_NONE)
    return check_reach(c.grad_output, &c.grad_output_stride, {N}, 8, "grad_output_stride");
  return FASTLOSS_OK;
}

void copy_matrix(const fastloss_matrix& in, fastloss::Matrix& out) {
  out.data = in.data;
  out.strides[0] = in.strides[0];
  out.strides[1] = in.strides[1];
}

fastloss::LinearCrossEntropyCall to_cpp(const fastloss_linear_cross_entropy_call& c) {
  fastloss::LinearCrossEntropyCall x;
  x.rows = c.rows;
  x.features = c.features;
  x.classes = c.classes;
  x.inner = c.inner;
  copy_matrix(c.input, x.input);
  copy_matrix(c.linear_weight, x.linear_weight);
  x.linear_bias = c.linear_bias;
  x.linear_bias_stride = c.linear_bias_stride;
  copy_row(c.target, x.target);
  x.target_type = static_cast<fastloss::ElementType>(c.target_type);
  copy_row(c.weight, x.weight);
  copy_row(c.grad_output, x.grad_output);
  copy_row(c.loss_out, x.loss_out);
  copy_matrix(c.grad_input, x.grad_input);
  copy_matrix(c.grad_linear_weight, x.grad_linear_weight);
  x.grad_linear_bias = c.grad_linear_bias;
  x.grad_linear_bias_stride = c.grad_linear_bias_stride;
  x.reduction = static_cast<fastloss::Reduction>(c.reduction);
  x.want_value = c.want_value != 0;
  x.want_grad = c.want_grad != 0;
  x.grad_scale = c.grad_scale;
  x.ignore_index = c.ignore_index;
  x.label_smoothing = c.label_smoothing;
  x.z_loss = c.z_loss;
  x.softcap = c.softcap;
  x.chunk_size = c.chunk_size;
  x.sgemm = c.sgemm;
  x.dgemm = c.dgemm;
  return x;
}

fastloss_status check_lce_reach(int dtype, const fastloss_linear_cross_entropy_call& c) {
  const size_t elem = elem_size(dtype);
  const int64_t N = c.rows, F = c.features, C = c.classes, S = c.inner;
  int64_t V = 0;
  if (C < 0 || S < 0 || __builtin_mul_overflow(C, S, &V)) return FASTLOSS_OK;  // the C++ check says
  if (fastloss_status s = check_reach(c.input.data, c.input.strides, {N, F}, elem, "input.strides")) return s;
  if (fastloss_status s = check_reach(c.linear_weight.data, c.linear_weight.strides, {V, F}, elem,
                                      "linear_weight.strides"))
    return s;
  if (fastloss_status s = check_reach(c.linear_bias, &c.linear_bias_stride, {V}, elem, "linear_bias_stride"))
    return s;
  const size_t te = target_elem(c.target_type, dtype);
  if (te != 0) {
    const bool per_row = c.target_type != FASTLOSS_ELEMENT_FLOAT;
    if (fastloss_status s = check_reach(c.target.data, c.target.strides, {N, per_row ? 1 : C, S}, te,
                                        "target.strides"))
      return s;
  }
  if (fastloss_status s = check_reach(c.weight.data, c.weight.strides, {1, C, 1}, elem, "weight.strides")) return s;
  if (fastloss_status s = check_reach(c.grad_output.data, c.grad_output.strides, {N, 1, S}, elem,
                                      "grad_output.strides"))
    return s;
  if (fastloss_status s = check_reach(c.loss_out.data, c.loss_out.strides, {N, 1, S}, elem, "loss_out.strides"))
    return s;
  if (fastloss_status s = check_reach(c.grad_input.data, c.grad_input.strides, {N, F}, elem, "grad_input.strides"))
    return s;
  if (fastloss_status s = check_reach(c.grad_linear_weight.data, c.grad_linear_weight.strides, {V, F}, elem,
                                      "grad_linear_weight.strides"))
    return s;
  return check_reach(c.grad_linear_bias, &c.grad_linear_bias_stride, {V}, elem, "grad_linear_bias_stride");
}

}  // namespace

extern "C" {

int fastloss_abi_version(void) { return FASTLOSS_ABI_VERSION; }

const char* fastloss_version(void) { return FASTLOSS_VERSION_STRING; }

const char* fastloss_last_error(void) { return g_last_error.c_str(); }

int fastloss_loss_count(void) { return fastloss::kNumLosses; }

int fastloss_loss_id(const char* name) {
  if (name == nullptr) return -1;
  for (int id = 0; id < fastloss::kNumLosses; ++id)
    if (std::strcmp(fastloss::loss_info(static_cast<fastloss::Loss>(id)).name, name) == 0) return id;
  return -1;
}

fastloss_status fastloss_loss_info(int id, const char** name, int* inputs, int* grads, const char** options) {
  if (fastloss_status s = check_loss(id)) return s;
  const fastloss::LossInfo& info = fastloss::loss_info(static_cast<fastloss::Loss>(id));
  if (name) *name = info.name;
  if (inputs) *inputs = info.inputs;
  if (grads) *grads = info.grads;
  if (options) *options = info.options;
  return FASTLOSS_OK;
}

void fastloss_call_init(fastloss_elementwise_call* call) {
  if (call == nullptr) return;
  std::memset(call, 0, sizeof *call);
  call->want_value = 1;
  call->grad_scale = 1.0;
}

fastloss_status fastloss_elementwise(int loss, int dtype, const fastloss_elementwise_call* call,
                                     fastloss_totals* totals) {
  if (fastloss_status s = check_loss(loss)) return s;
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (fastloss_status s = check_elementwise_reach(dtype, *call)) return s;
  return guarded([&] { return run(loss, dtype, to_cpp(*call), totals); });
}

fastloss_status fastloss_reduce(int loss, int dtype, int reduction, const fastloss_elementwise_call* call,
                                double* value) {
  if (fastloss_status s = check_loss(loss)) return s;
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (value == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "value: NULL");
  if (reduction != FASTLOSS_REDUCTION_MEAN && reduction != FASTLOSS_REDUCTION_SUM)
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "reduction: expected FASTLOSS_REDUCTION_MEAN or _SUM (a 'none' "
                                                 "call writes loss_out with fastloss_elementwise)");
  if (fastloss_status s = check_elementwise_reach(dtype, *call)) return s;
  return guarded([&] {
    fastloss::ElementwiseCall c = to_cpp(*call);
    c.want_value = true;
    c.want_grad = false;
    c.loss_out = fastloss::StridedArray{};
    fastloss_totals t{};
    const fastloss_status s = run(loss, dtype, c, &t);
    if (s != FASTLOSS_OK) return s;
    if (reduction == FASTLOSS_REDUCTION_SUM) {
      *value = t.loss;
      return FASTLOSS_OK;
    }
    // torch 2.13: weighted L1/MSE means divide by the sum of the weights, every other by the count.
    const auto id = static_cast<fastloss::Loss>(loss);
    double denominator;
    if (c.weight.data != nullptr && (id == fastloss::Loss::L1 || id == fastloss::Loss::Mse)) {
      denominator = t.weight;
    } else {
      denominator = 1;
      for (int d = 0; d < c.ndim; ++d) denominator *= static_cast<double>(c.shape[d]);
    }
    *value = t.loss / denominator;  // IEEE: 0/0 is NaN (the mean of nothing), as torch
    return FASTLOSS_OK;
  });
}

int fastloss_rowwise_loss_count(void) { return fastloss::kNumRowLosses; }

int fastloss_rowwise_loss_id(const char* name) {
  if (name == nullptr) return -1;
  for (int id = 0; id < fastloss::kNumRowLosses; ++id)
    if (std::strcmp(fastloss::row_loss_info(static_cast<fastloss::RowLoss>(id)).name, name) == 0) return id;
  return -1;
}

fastloss_status fastloss_rowwise_loss_info(int id, const char** name, int* inputs, int* grads, int* target_kind,
                                           const char** options) {
  if (fastloss_status s = check_row_loss(id)) return s;
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(id));
  if (name) *name = info.name;
  if (inputs) *inputs = info.inputs;
  if (grads) *grads = info.grads;
  if (target_kind) *target_kind = static_cast<int>(info.target);
  if (options) *options = info.options;
  return FASTLOSS_OK;
}

int fastloss_rowwise_option(int id, const char* name) {
  if (id < 0 || id >= fastloss::kNumRowLosses || name == nullptr) return -1;
  const char* s = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(id)).options;
  const size_t len = std::strlen(name);
  for (int k = 0;; ++k) {
    while (*s == ' ') ++s;
    if (*s == '\0') return -1;
    const char* end = s;
    while (*end != '\0' && *end != ' ') ++end;
    if (static_cast<size_t>(end - s) == len && std::strncmp(s, name, len) == 0) return k;
    s = end;
  }
}

fastloss_status fastloss_rowwise_call_init(int id, fastloss_rowwise_call* call) {
  if (fastloss_status s = check_row_loss(id)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  std::memset(call, 0, sizeof *call);
  call->struct_size = sizeof *call;
  call->inner = 1;
  call->target_type = FASTLOSS_ELEMENT_INT64;
  call->reduction = FASTLOSS_REDUCTION_MEAN;
  call->want_value = 1;
  call->grad_scale = 1.0;
  fastloss::row_option_defaults(static_cast<fastloss::RowLoss>(id), call->options);
  return FASTLOSS_OK;
}

fastloss_status fastloss_rowwise(int loss, int dtype, const fastloss_rowwise_call* call, double* value) {
  if (fastloss_status s = check_row_loss(loss)) return s;
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (fastloss_status s = check_struct_size(*call, sizeof(fastloss_rowwise_call), "fastloss_rowwise_call")) return s;
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(loss));
  int count = 0;
  for (const char* o = info.options; *o != '\0'; ++o)
    if (*o != ' ' && (o == info.options || o[-1] == ' ')) ++count;
  for (int k = count; k < FASTLOSS_MAX_ROW_OPTIONS; ++k)
    if (call->options[k] != 0)
      return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "options[" + std::to_string(k) + "]: " + info.name + " has " +
                                                       std::to_string(count) + " options (" + info.options + ")");
  if (fastloss_status s = check_rowwise_reach(loss, dtype, *call)) return s;
  return guarded([&] {
    const double v = fastloss::row_loss(static_cast<fastloss::RowLoss>(loss), static_cast<fastloss::DType>(dtype),
                                        to_cpp(*call));
    if (value != nullptr) *value = v;
    return FASTLOSS_OK;
  });
}

void fastloss_ctc_call_init(fastloss_ctc_call* call) {
  if (call == nullptr) return;
  std::memset(call, 0, sizeof *call);
  call->struct_size = sizeof *call;
  call->padded_length = -1;
  call->losses_stride = 1;
  call->reduction = FASTLOSS_REDUCTION_MEAN;
}

fastloss_status fastloss_ctc_workspace_size(int64_t max_time, int64_t batch, int64_t max_target_length,
                                            int want_grad, int threads, size_t* bytes) {
  if (bytes == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "bytes: NULL");
  return guarded([&] {
    *bytes = fastloss::ctc_workspace_size(max_time, batch, max_target_length, want_grad != 0, threads);
    return FASTLOSS_OK;
  });
}

fastloss_status fastloss_ctc_loss(int dtype, const fastloss_ctc_call* call, void* workspace, size_t workspace_bytes,
                                  double* value) {
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (fastloss_status s = check_struct_size(*call, sizeof(fastloss_ctc_call), "fastloss_ctc_call")) return s;
  if (fastloss_status s = check_ctc_reach(dtype, *call)) return s;
  return guarded([&] {
    fastloss::CtcCall c;
    c.max_time = call->max_time;
    c.batch = call->batch;
    c.classes = call->classes;
    c.log_probs = call->log_probs;
    std::memcpy(c.log_probs_strides, call->log_probs_strides, sizeof c.log_probs_strides);
    c.targets = call->targets;
    c.target_count = call->target_count;
    c.padded_length = call->padded_length;
    c.input_lengths = call->input_lengths;
    c.target_lengths = call->target_lengths;
    c.blank = call->blank;
    c.reduction = static_cast<fastloss::Reduction>(call->reduction);
    c.zero_infinity = call->zero_infinity != 0;
    c.losses = call->losses;
    c.losses_stride = call->losses_stride;
    c.grad = call->grad;
    std::memcpy(c.grad_strides, call->grad_strides, sizeof c.grad_strides);
    c.exact = call->exact != 0;
    c.grad_output = call->grad_output;
    c.grad_output_stride = call->grad_output_stride;
    const double v = fastloss::ctc_loss(static_cast<fastloss::DType>(dtype), c, workspace, workspace_bytes);
    if (value != nullptr) *value = v;
    return FASTLOSS_OK;
  });
}

void fastloss_linear_cross_entropy_call_init(fastloss_linear_cross_entropy_call* call) {
  if (call == nullptr) return;
  std::memset(call, 0, sizeof *call);
  call->struct_size = sizeof *call;
  call->inner = 1;
  call->linear_bias_stride = 1;
  call->grad_linear_bias_stride = 1;
  call->target_type = FASTLOSS_ELEMENT_INT64;
  call->reduction = FASTLOSS_REDUCTION_MEAN;
  call->want_value = 1;
  call->grad_scale = 1.0;
  call->ignore_index = -100;
}

fastloss_status fastloss_linear_cross_entropy_workspace_size(int dtype, const fastloss_linear_cross_entropy_call* call,
                                                             int threads, size_t* bytes) {
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (bytes == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "bytes: NULL");
  if (fastloss_status s = check_struct_size(*call, sizeof(fastloss_linear_cross_entropy_call),
                                            "fastloss_linear_cross_entropy_call"))
    return s;
  return guarded([&] {
    *bytes = fastloss::linear_cross_entropy_workspace_size(static_cast<fastloss::DType>(dtype), to_cpp(*call),
                                                            threads);
    return FASTLOSS_OK;
  });
}

fastloss_status fastloss_linear_cross_entropy(int dtype, const fastloss_linear_cross_entropy_call* call,
                                              void* workspace, size_t workspace_bytes, double* value) {
  if (fastloss_status s = check_dtype(dtype)) return s;
  if (call == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "call: NULL");
  if (fastloss_status s = check_struct_size(*call, sizeof(fastloss_linear_cross_entropy_call),
                                            "fastloss_linear_cross_entropy_call"))
    return s;
  if (fastloss_status s = check_lce_reach(dtype, *call)) return s;
  return guarded([&] {
    const double v = fastloss::linear_cross_entropy(static_cast<fastloss::DType>(dtype), to_cpp(*call), workspace,
                                                    workspace_bytes);
    if (value != nullptr) *value = v;
    return FASTLOSS_OK;
  });
}

void fastloss_set_num_threads(int n) { fastloss::set_num_threads(n < 1 ? 1 : n); }

int fastloss_get_num_threads(void) { return fastloss::get_num_threads(); }

const char* fastloss_current_isa(void) { return fastloss::current_isa(); }

fastloss_status fastloss_select_isa(const char* name) {
  if (name == nullptr) return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, "name: NULL");
  if (!fastloss::select_isa(name))
    return fail(FASTLOSS_ERROR_INVALID_ARGUMENT, std::string("name: instruction set '") + name +
                                                     "' is not available (" + fastloss::available_isas() + ")");
  return FASTLOSS_OK;
}

}  // extern "C"
