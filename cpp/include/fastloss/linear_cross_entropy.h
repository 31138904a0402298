// fastloss C++ API: linear_cross_entropy, the loss of
// cross_entropy(input @ linear_weight.T + linear_bias, target) and its
// gradients without the (rows, V) logits ever existing (Python's
// fastloss.linear_cross_entropy, the same maths; the Liger-Kernel / Apple
// cut-cross-entropy idea), with a caller-owned workspace:
//
//   LinearCrossEntropyCall call;  ... fill it ...
//   std::vector<unsigned char> ws(fastloss::linear_cross_entropy_workspace_size(
//       fastloss::DType::Float32, call, fastloss::get_num_threads()));
//   double loss = fastloss::linear_cross_entropy(fastloss::DType::Float32, call, ws.data(), ws.size());
//
// Shapes: input X (rows, F); linear_weight W (V, F) with V = classes * inner
// (torch's K-dimensional (classes, d1..dk, F) weight has inner = d1 * ... * dk,
// its row v = c * inner + s); linear_bias (V) or none. The logits of a row
// are the cube (classes, inner) of cross_entropy, so the target, the class
// weight, grad_output and loss_out are RowArrays over (rows, classes, inner)
// exactly as in a RowwiseCall (fastloss.h): class indices per (row, s) of
// any integer width, or probabilities over the whole cube (ElementType::Float).
//
// Per chunk of R rows (chunk_size; default: a logits buffer of about 64 MB,
// at most 4096 rows): logits = X[chunk] W^T (+ b) into one buffer of the
// workspace; the cross-entropy kernel writes the rows' losses and, in place,
// G = d loss / d logits (softmax - target, already scaled by the class weight,
// grad_output, grad_scale and the 'mean' denominator, which is computed up
// front from the targets); then grad_input[chunk] = G W, grad_linear_weight
// += G^T X[chunk] and grad_linear_bias += the column sums of G (in double).
//
// The matrix products: the caller's GEMM (sgemm for Float32, dgemm for
// Float64: cblas_sgemm / cblas_dgemm's argument list, so OpenBLAS, MKL,
// Accelerate or any BLAS plugs in), or, when none is given, the built-in
// blocked GEMM (portable, compiled per ISA level, threaded over tiles by the
// library's pool). The contract of a caller's GEMM: fastloss calls it from
// the calling thread, always with layout CblasRowMajor (101), trans_a/trans_b
// CblasNoTrans (111) or CblasTrans (112), alpha = 1, beta 0 or 1, m, n, k >= 1
// and leading dimensions >= 1 that fit int (operands whose stride does not
// are copied into the workspace first); it must compute C = alpha op(A) op(B)
// + beta C (beta 0: C not read) and return; it is never called with
// overlapping A/B and C. Operands a BLAS cannot take as they are (no unit
// stride, negative or broadcast strides) are copied into the workspace first
// (see the size below); the built-in GEMM reads any strides directly.
//
// Workspace (linear_cross_entropy_workspace_size; T = 4 or 8 bytes, each
// part rounded up to 64 bytes, plus 64):
//   R * V * T                        the logits / gradient buffer
//   + R * V * T                      want_grad, softcap != 0 and inner > 1 (its
//                                    kernel reads the logits again after writing G)
//   + V * 8                          want_grad with grad_linear_bias (its sums)
//   built-in GEMM: + threads * (96 * 256 + 256 * 256) * T   (packing panels)
//   caller's GEMM: + R * F * T if input, + V * F * T if linear_weight,
//                  + R * F * T if grad_input, + V * F * T if grad_linear_weight
//                  is not a BLAS matrix (unit column stride and row stride >= its
//                  columns, or the transpose of one; leading dimension <= INT_MAX).
// A larger workspace is fine; a built-in-GEMM workspace sized for fewer
// threads (at least one) runs on fewer threads.
//
// Results: value and gradients equal Python's linear_cross_entropy to
// rounding (the GEMMs differ). With the built-in GEMM they are bitwise
// identical for any thread count (every product element is one fixed-order
// sum, whichever thread computes it; simd/gemm.h), and so are its products on
// every ISA level (no fused multiply-adds; float64 calls are bitwise equal
// across levels, float32 ones as the cross-entropy kernel is); any chunk size
// gives the same maths. Errors throw
// before anything is written: std::invalid_argument (sizes, null arrays,
// options as the Python function checks them, a short workspace), std::out_of_range
// (a class index outside [0, classes) other than ignore_index, naming it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "fastloss/fastloss.h"

namespace fastloss {

// cblas_sgemm / cblas_dgemm's argument list (the CBLAS enums as int: layout
// 101 row-major, transposes 111 no, 112 yes).
using SgemmFn = void (*)(int layout, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc);
using DgemmFn = void (*)(int layout, int trans_a, int trans_b, int m, int n, int k, double alpha, const double* a,
                         int lda, const double* b, int ldb, double beta, double* c, int ldc);

// A matrix: element (i, j) at data + i * strides[0] + j * strides[1] (elements, any sign, 0 broadcasts).
struct Matrix {
  void* data = nullptr;  // nullptr: absent
  int64_t strides[2] = {};
};

struct LinearCrossEntropyCall {
  int64_t rows = 0;      // N (1 for torch's unbatched (F) input)
  int64_t features = 0;  // F: in_features
  int64_t classes = 0;   // C: num_classes
  int64_t inner = 1;     // d1 * ... * dk of a K-dimensional linear_weight (1: a (C, F) weight)
  Matrix input;          // (rows, F), read
  Matrix linear_weight;  // (V, F), read
  const void* linear_bias = nullptr;  // V values at linear_bias + v * linear_bias_stride; null: no bias
  int64_t linear_bias_stride = 1;
  RowArray target;                           // as RowwiseCall::target over (rows, classes, inner)
  ElementType target_type = ElementType::Int64;
  RowArray weight;       // class weight (strides[1]); absent: 1
  RowArray grad_output;  // Reduction::None: per row (absent: 1); else not read (use grad_scale)
  RowArray loss_out;     // Reduction::None with want_value: per row (required then)
  // Gradients (want_grad), each optional (null: not computed), at least one given.
  Matrix grad_input;           // (rows, F)
  Matrix grad_linear_weight;   // (V, F)
  void* grad_linear_bias = nullptr;  // V values (only with a linear_bias)
  int64_t grad_linear_bias_stride = 1;
  Reduction reduction = Reduction::Mean;
  bool want_value = true;
  bool want_grad = false;
  double grad_scale = 1.0;  // multiplies every gradient (the upstream gradient of a reduced loss)
  // cross_entropy's options (torch's defaults; softcap 0: none).
  int64_t ignore_index = -100;
  double label_smoothing = 0.0;
  double z_loss = 0.0;
  double softcap = 0.0;
  int64_t chunk_size = 0;  // rows per chunk; 0: the default
  SgemmFn sgemm = nullptr;  // Float32 products; null: the built-in GEMM
  DgemmFn dgemm = nullptr;  // Float64 products; null: the built-in GEMM
};

// Rows per chunk of a call (chunk_size, or the default), at least 1.
int64_t linear_cross_entropy_chunk_rows(DType dtype, const LinearCrossEntropyCall& call);

// Bytes of workspace the call needs on up to `threads` threads (the formula
// above). Throws std::invalid_argument for sizes it cannot address.
size_t linear_cross_entropy_workspace_size(DType dtype, const LinearCrossEntropyCall& call, int threads);

// Runs the call: writes loss_out and the gradients asked for, returns the
// reduced loss (Mean: over the summed class weights of the counted rows for
// class indices, rows * inner for probabilities, NaN when nothing counts;
// Sum; None: 0).
double linear_cross_entropy(DType dtype, const LinearCrossEntropyCall& call, void* workspace, size_t workspace_bytes);

}  // namespace fastloss
