// fastloss C++ API: the loss kernels without Python.
//
// Arrays are described by a data pointer and strides counted in elements (not
// bytes); a stride of 0 broadcasts. All arrays of one call share one logical
// shape (the loss's shape) of at most kMaxDims dimensions. The caller owns every
// buffer; the kernels allocate nothing proportional to the data (a few KB of
// stack per thread).
//
// Results are bitwise identical for any thread count and any instruction-set
// level: sums are taken in double precision over fixed blocks of the flattened
// (C-order) index, in a fixed order inside each block, and the block sums are
// combined in block order.
//
// Errors: pointwise() and coalesce() check what they can see (ndim in
// [0, kMaxDims], shape[d] >= 0 and an element count that fits int64, the
// operands the loss needs present, known enum values, beta >= 0, delta >= 0: torch refuses
// delta == 0, but a positive delta may round to 0 in float32)
// and throw std::invalid_argument with a message naming the field; nothing is
// read or written then. They cannot see buffer sizes: every pointer/stride
// combination the shape reaches must lie inside the caller's buffers, and
// written arrays (loss_out, grad_out) must not overlap read ones.
//
// Threads: a pool of our own (no OpenMP runtime needed to link), safe to use
// from several threads at once (a call that finds the pool busy runs on its
// own thread) and in a child forked after multi-threaded calls.
#pragma once

#include <cstdint>

#include "fastloss/losses.h"

namespace fastloss {

constexpr int kMaxDims = 8;
constexpr int kMaxInputs = 4;   // arrays a loss reads (besides weight and grad_output)
constexpr int kMaxGrads = 3;    // gradients a loss writes
constexpr int kMaxOptions = 4;  // numeric options of a loss

enum class DType : int { Float32 = 0, Float64 = 1 };

enum class Reduction : int { None = 0, Mean = 1, Sum = 2 };

struct StridedArray {
  void* data = nullptr;  // nullptr: the operand is absent
  int64_t strides[kMaxDims] = {};
};

// One element-wise call: every array has the call's shape (broadcast by
// stride 0). Read: the loss's inputs (losses.h gives their number and
// order), weight (absent: 1) and, for gradients, grad_output (absent: 1).
// Written: loss_out (per-element weight * loss) when want_value and it is
// present, else the loss is summed into Totals; grads[k] = d loss /
// d inputs[k] * weight * grad_output * grad_scale for each present k when
// want_grad (an absent one is not computed).
struct ElementwiseCall {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  StridedArray inputs[kMaxInputs];
  StridedArray weight, grad_output, loss_out;
  StridedArray grads[kMaxGrads];
  bool want_value = true;
  bool want_grad = false;
  double grad_scale = 1.0;           // multiplies every gradient element
  double options[kMaxOptions] = {};  // the loss's options, in losses.h's order
};

// What a call returns besides the arrays it writes.
struct Totals {
  double loss = 0;      // sum of weight * loss (when summed)
  double weight = 0;    // sum of weight (losses whose weighted mean divides by it)
  uint32_t errors = 0;  // bit k: the loss's check k failed somewhere (e.g. BCE input outside [0, 1])
};

// Runs one element-wise loss; throws std::invalid_argument for arguments it
// can check (see above).
Totals elementwise(Loss loss, DType dtype, const ElementwiseCall& call);

// ---- Row-wise losses (losses.h's FASTLOSS_ROWWISE_LOSSES): a reduction
// along one axis for every position of the others.
//
// The input is a cube (outer, classes, inner): torch's (N, C, d1..dk) with
// inner = d1 * ... * dk (the caller merges d1..dk into one strided axis),
// (N, C) with inner = 1, an unbatched (C) with outer = 1. A row is the
// `classes` elements at one (n, s); rows are numbered r = n * inner + s, the
// C order of the loss's shape (N, d1..dk). Every array of a call is a
// RowArray over that cube: element strides over (outer, classes, inner), 0
// where the array does not extend along an axis (a per-row array has
// strides[1] = 0, the class weight strides[0] = strides[2] = 0).
constexpr int kMaxRowInputs = 3;  // float row operands (triplet: anchor, positive, negative)

struct RowArray {
  void* data = nullptr;  // nullptr: absent
  int64_t strides[3] = {};
};

// Element type of RowwiseCall::target: the call's float dtype, or an integer
// of any width (read as it is; values outside int64 count as out of range).
enum class ElementType : int { Float = 0, Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64 };

struct RowwiseCall {
  int64_t outer = 0, classes = 0, inner = 1;
  RowArray inputs[kMaxRowInputs];  // the loss's float row operands (losses.h: inputs)
  RowArray grads[kMaxRowInputs];   // d loss / d inputs[k] (written when want_grad and present)
  // Class index per row (strides[1] = 0), a row of class indices, or a float
  // row / per-row float (losses.h's target column says which the loss takes).
  RowArray target;
  ElementType target_type = ElementType::Int64;
  RowArray weight;       // per class (strides[1]); absent: 1
  RowArray grad_output;  // per row; absent: 1
  RowArray loss_out;     // per row: the loss of each row (reduction None)
  Reduction reduction = Reduction::Mean;
  bool want_value = true;
  bool want_grad = false;
  double grad_scale = 1.0;           // multiplies every gradient element
  double options[kMaxOptions] = {};  // the loss's options, in losses.h's order
};

struct RowTotals {
  double loss = 0;         // sum of the row losses (reduction Mean or Sum)
  double denominator = 0;  // what 'mean' divides by: the summed class weights of the counted rows, or the row count
  uint32_t errors = 0;     // bit 0: a class index out of range (bad_index holds the first, in row order)
  int64_t bad_index = 0;
};

// Runs one row-wise loss. With Reduction::Mean the gradients are scaled by
// grad_scale / denominator (computed first, from the targets alone). On an
// error bit the arrays written hold partial results. Throws
// std::invalid_argument for arguments it can check.
RowTotals rowwise(RowLoss loss, DType dtype, const RowwiseCall& call);

// The checked and reduced row-wise entry point (what the C ABI and
// fastloss/typed.h call): first everything rowwise() checks, the loss's
// options as the Python functions check them (e.g. label_smoothing <= 1,
// multi_margin_loss's p in {1, 2}, a triplet's margin > 0, flags 0 or 1;
// std::invalid_argument naming the option), a class weight only for losses
// that read one, cosine_embedding_loss's targets in {1, -1}, and every class
// index of the target (std::out_of_range naming the first bad one, in row
// order) — all before any array is written; then one rowwise() call.
// label_smoothing <= 0 or NaN means none, as torch. Returns the reduced loss:
// Mean the total over RowTotals::denominator (NaN when nothing counts, as
// torch), Sum the total, None 0 (the losses are in loss_out).
double row_loss(RowLoss loss, DType dtype, const RowwiseCall& call);

// The regression losses' first entry point, kept for existing callers: the
// same kernels through six fixed operand slots and one parameter. `Sum` is
// the identity on `input` (weight totals, bandwidth probes).
enum class Pointwise : int { L1 = 0, Mse = 1, SmoothL1 = 2, Huber = 3, Sum = 4 };

struct PointwiseArgs {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  // Read: input (and target), optional per-element weight and grad_output.
  StridedArray input, target, weight, grad_output;
  // Written: loss_out (per-element loss, only when want_value and the caller
  // does not reduce) and grad_out (d loss / d input, when want_grad).
  StridedArray loss_out, grad_out;
  bool want_value = true;  // value: loss_out if given, else returned as a sum
  bool want_grad = false;
  double param = 1.0;       // beta (SmoothL1) or delta (Huber)
  double grad_scale = 1.0;  // multiplies every gradient element
};

// Runs one pointwise loss. Returns the sum over all elements of
// weight * loss when want_value and loss_out is absent, else 0.
// Throws std::invalid_argument for arguments it can check (see above).
double pointwise(Pointwise loss, DType dtype, const PointwiseArgs& args);

// Merges adjacent dimensions that every present operand walks contiguously,
// and drops size-1 dimensions; the kernels do this themselves, it is exposed
// for callers that want to inspect the effective layout.
void coalesce(PointwiseArgs& args);
void coalesce(ElementwiseCall& call);

// Threads used by the kernels. set_num_threads clamps n to [1, 4 x the CPUs
// this process may use]; get_num_threads returns the clamped value. Calls
// under 32768 elements run on one thread, and a call never uses more threads
// than it has blocks of 8192 elements.
void set_num_threads(int n);
int get_num_threads();

// Instruction-set levels: "baseline" (SSE2), "avx2" (AVX2, FMA, F16C), "avx512"
// (avx2 + F/BW/DQ/VL), each only where the OS also enables its registers.
// available_isas() lists those compiled in and supported by this
// CPU, lowest first, separated by commas.
const char* current_isa();
const char* available_isas();
// Selects a level; returns false (and changes nothing) if it is unavailable.
bool select_isa(const char* name);

}  // namespace fastloss
