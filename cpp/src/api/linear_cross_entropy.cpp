// fastloss::linear_cross_entropy (fastloss/linear_cross_entropy.h): the
// checks (all before anything is written), the workspace layout, and the
// chunk loop over three matrix products and the cross-entropy kernel, as
// python/fastloss/_linear.py does it with NumPy's matmul.
#include "fastloss/linear_cross_entropy.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "api/checks.h"
#include "simd/gemm.h"

namespace fastloss {
namespace {

constexpr size_t kAlign = 64;
constexpr int64_t kChunkBytes = int64_t(64) << 20;  // the default logits buffer (Python's CHUNK_BYTES)
constexpr int64_t kMaxChunkRows = 4096;             // (Python's MAX_CHUNK_ROWS)

[[noreturn]] void invalid(const std::string& what) {
  throw std::invalid_argument("fastloss::linear_cross_entropy: " + what);
}

std::string str(int64_t v) { return std::to_string(v); }

int64_t elem_of(DType dtype) { return dtype == DType::Float32 ? 4 : 8; }

// A matrix a BLAS takes as it is: row-major (unit column stride, row stride
// >= its columns) or the transpose of one; leading dimension in int. A single
// row or column has any stride along its length-1 axis.
struct Blas {
  bool ok = false;
  bool trans = false;  // the matrix is (ld-strided rows of) its transpose
  int ld = 0;
};
Blas as_blas(int64_t rs, int64_t cs, int64_t rows, int64_t cols) {
  Blas b;
  const int64_t need_rows = std::max<int64_t>(cols, 1), need_cols = std::max<int64_t>(rows, 1);
  if (cols <= 1 || cs == 1) {  // row-major with ld = rs (any rs for a single row)
    const int64_t ld = rows <= 1 ? need_rows : rs;
    if (ld >= need_rows && ld <= INT_MAX) {
      b.ok = true;
      b.ld = static_cast<int>(ld);
      return b;
    }
  }
  if (rows <= 1 || rs == 1) {  // column-major: the row-major transpose with ld = cs
    const int64_t ld = cols <= 1 ? need_cols : cs;
    if (ld >= need_cols && ld <= INT_MAX) {
      b.ok = b.trans = true;
      b.ld = static_cast<int>(ld);
    }
  }
  return b;
}

// The sizes every part of the workspace is computed from.
struct Plan {
  int64_t elem, rows, chunk, features, vocabulary;
  bool want_grad, separate_grad, bias_grad, builtin;
  bool pack_input, pack_weight, scratch_grad_input, scratch_grad_weight;
  size_t logits, grad, bias_sums, input_pack, weight_pack, grad_input_scratch, grad_weight_scratch;  // bytes
  size_t fixed;  // everything but the panels
};

size_t rounded(int64_t elements, int64_t elem, const char* what) {
  int64_t bytes;
  if (__builtin_mul_overflow(elements, elem, &bytes) || bytes > (int64_t(1) << 60))
    invalid(std::string(what) + ": the workspace part would need more bytes than can be addressed");
  return (static_cast<size_t>(bytes) + kAlign - 1) / kAlign * kAlign;
}

int64_t vocabulary_of(const LinearCrossEntropyCall& c) {
  if (c.rows < 0 || c.features < 0 || c.classes < 0 || c.inner < 0)
    invalid("rows, features, classes, inner: negative (" + str(c.rows) + ", " + str(c.features) + ", " +
            str(c.classes) + ", " + str(c.inner) + ")");
  int64_t v, rv, vf, rf, ri;
  if (__builtin_mul_overflow(c.classes, c.inner, &v) || __builtin_mul_overflow(c.rows, c.inner, &ri) || __builtin_mul_overflow(c.rows, v, &rv) ||
      __builtin_mul_overflow(v, c.features, &vf) || __builtin_mul_overflow(c.rows, c.features, &rf))
    invalid("rows x classes x inner x features: a product overflows int64");
  return v;
}

Plan plan_of(DType dtype, const LinearCrossEntropyCall& c) {
  if (dtype != DType::Float32 && dtype != DType::Float64)
    invalid("dtype: unknown value " + str(static_cast<int>(dtype)));
  Plan p{};
  p.elem = elem_of(dtype);
  p.rows = c.rows;
  p.vocabulary = vocabulary_of(c);
  p.features = c.features;
  p.chunk = linear_cross_entropy_chunk_rows(dtype, c);
  p.want_grad = c.want_grad;
  p.separate_grad = c.want_grad && c.softcap != 0 && c.inner > 1;
  p.bias_grad = c.want_grad && c.grad_linear_bias != nullptr;
  p.builtin = dtype == DType::Float32 ? c.sgemm == nullptr : c.dgemm == nullptr;
  const int64_t R = p.chunk, V = p.vocabulary, F = p.features;
  if (!p.builtin) {
    p.pack_input = !as_blas(c.input.strides[0], c.input.strides[1], R, F).ok ||
                   !as_blas(c.input.strides[0], c.input.strides[1], c.rows, F).ok;
    p.pack_weight = !as_blas(c.linear_weight.strides[0], c.linear_weight.strides[1], V, F).ok;
    p.scratch_grad_input = c.want_grad && c.grad_input.data != nullptr &&
                           (!as_blas(c.grad_input.strides[0], c.grad_input.strides[1], R, F).ok ||
                            !as_blas(c.grad_input.strides[0], c.grad_input.strides[1], c.rows, F).ok);
    p.scratch_grad_weight = c.want_grad && c.grad_linear_weight.data != nullptr &&
                            !as_blas(c.grad_linear_weight.strides[0], c.grad_linear_weight.strides[1], V, F).ok;
  }
  int64_t rv;
  if (__builtin_mul_overflow(R, V, &rv)) invalid("chunk rows x V overflows int64");
  p.logits = rounded(rv, p.elem, "logits");
  p.grad = p.separate_grad ? p.logits : 0;
  p.bias_sums = p.bias_grad ? rounded(V, 8, "grad_linear_bias") : 0;
  p.input_pack = p.pack_input ? rounded(R * F, p.elem, "input") : 0;
  p.weight_pack = p.pack_weight ? rounded(V * F, p.elem, "linear_weight") : 0;
  p.grad_input_scratch = p.scratch_grad_input ? rounded(R * F, p.elem, "grad_input") : 0;
  p.grad_weight_scratch = p.scratch_grad_weight ? rounded(V * F, p.elem, "grad_linear_weight") : 0;
  p.fixed = kAlign + p.logits + p.grad + p.bias_sums + p.input_pack + p.weight_pack + p.grad_input_scratch +
            p.grad_weight_scratch;
  return p;
}

// One product C (m x n) = beta C + A (m x k) B (k x n) through the built-in
// GEMM or the caller's (every operand then a BLAS matrix: the driver packed
// those that are not).
struct Products {
  DType dtype;
  SgemmFn sgemm;
  DgemmFn dgemm;
  void* panels;
  size_t panel_bytes;

  void operator()(int64_t m, int64_t n, int64_t k, detail::MatrixRef a, detail::MatrixRef b, void* c, int64_t c_rs,
                  int64_t c_cs, double beta) const {
    if (m <= 0 || n <= 0) return;
    if (sgemm == nullptr && dgemm == nullptr) {
      detail::gemm(dtype, m, n, k, a, b, c, c_rs, c_cs, beta, panels, panel_bytes);
      return;
    }
    if (k == 0) {  // (a BLAS may refuse k = 0): C = beta C
      const int64_t e = elem_of(dtype);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          char* p = static_cast<char*>(c) + (i * c_rs + j * c_cs) * e;
          if (dtype == DType::Float32)
            *reinterpret_cast<float*>(p) = beta == 0 ? 0.0f : static_cast<float>(beta) * *reinterpret_cast<float*>(p);
          else
            *reinterpret_cast<double*>(p) = beta == 0 ? 0.0 : beta * *reinterpret_cast<double*>(p);
        }
      return;
    }
    Blas cb = as_blas(c_rs, c_cs, m, n);
    if (cb.trans) {  // C column-major: compute C^T = B^T A^T into it
      std::swap(a, b);
      std::swap(a.rs, a.cs);
      std::swap(b.rs, b.cs);
      std::swap(m, n);
    }
    const Blas ab = as_blas(a.rs, a.cs, m, k), bb = as_blas(b.rs, b.cs, k, n);
    if (!cb.ok || !ab.ok || !bb.ok) throw std::logic_error("fastloss::linear_cross_entropy: a non-BLAS operand");
    constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
    const int ta = ab.trans ? kTrans : kNoTrans, tb = bb.trans ? kTrans : kNoTrans;
    const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
    if (dtype == DType::Float32)
      sgemm(kRowMajor, ta, tb, M, N, K, 1.0f, static_cast<const float*>(a.data), ab.ld,
            static_cast<const float*>(b.data), bb.ld, static_cast<float>(beta), static_cast<float*>(c), cb.ld);
    else
      dgemm(kRowMajor, ta, tb, M, N, K, 1.0, static_cast<const double*>(a.data), ab.ld,
            static_cast<const double*>(b.data), bb.ld, beta, static_cast<double*>(c), cb.ld);
  }
};

// dst (rows x cols, its strides) = src (rows x cols, strides), element by element.
template <class T>
void copy(const T* src, int64_t s_rs, int64_t s_cs, T* dst, int64_t d_rs, int64_t d_cs, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[i * d_rs + j * d_cs] = src[i * s_rs + j * s_cs];
}

template <class T>
double run(DType dtype, const LinearCrossEntropyCall& c, const Plan& p, double denominator, char* ws,
           size_t ws_bytes) {
  const int64_t R = p.chunk, V = p.vocabulary, F = p.features, N = c.rows, S = c.inner;
  char* at = ws;
  auto take = [&](size_t bytes) {
    char* q = at;
    at += bytes;
    return q;
  };
  T* logits = reinterpret_cast<T*>(take(p.logits));
  T* gbuf = p.separate_grad ? reinterpret_cast<T*>(take(p.grad)) : logits;
  double* bias_sums = p.bias_grad ? reinterpret_cast<double*>(take(p.bias_sums)) : nullptr;
  T* input_pack = p.pack_input ? reinterpret_cast<T*>(take(p.input_pack)) : nullptr;
  T* weight_pack = p.pack_weight ? reinterpret_cast<T*>(take(p.weight_pack)) : nullptr;
  T* gx_scratch = p.scratch_grad_input ? reinterpret_cast<T*>(take(p.grad_input_scratch)) : nullptr;
  T* gw_scratch = p.scratch_grad_weight ? reinterpret_cast<T*>(take(p.grad_weight_scratch)) : nullptr;
  const Products product{dtype, p.builtin ? nullptr : c.sgemm, p.builtin ? nullptr : c.dgemm, at,
                         ws_bytes - static_cast<size_t>(at - ws)};

  const T* X = static_cast<const T*>(c.input.data);
  const int64_t x_rs = c.input.strides[0], x_cs = c.input.strides[1];
  detail::MatrixRef W{c.linear_weight.data, c.linear_weight.strides[0], c.linear_weight.strides[1]};
  if (weight_pack != nullptr) {
    copy(static_cast<const T*>(W.data), W.rs, W.cs, weight_pack, F, 1, V, F);
    W = {weight_pack, F, 1};
  }
  const T* bias = static_cast<const T*>(c.linear_bias);
  T* gx = static_cast<T*>(c.grad_input.data);
  T* gw = static_cast<T*>(c.grad_linear_weight.data);
  const bool want_gx = p.want_grad && gx != nullptr, want_gw = p.want_grad && gw != nullptr;
  // grad_linear_weight accumulates over chunks where the product can add to it.
  T* gw_target = gw_scratch != nullptr ? gw_scratch : gw;
  const int64_t gw_rs = gw_scratch != nullptr ? F : c.grad_linear_weight.strides[0];
  const int64_t gw_cs = gw_scratch != nullptr ? 1 : c.grad_linear_weight.strides[1];
  if (bias_sums != nullptr) std::fill(bias_sums, bias_sums + V, 0.0);

  const bool none = c.reduction == Reduction::None;
  double scale = c.grad_scale;
  if (c.reduction == Reduction::Mean) scale /= denominator;  // inf when nothing counts: those rows' G is 0 anyway
  const int64_t t_elem = c.target_type == ElementType::Float ? elem_of(dtype) : [&] {
    switch (c.target_type) {
      case ElementType::Int8: case ElementType::UInt8: return int64_t(1);
      case ElementType::Int16: case ElementType::UInt16: return int64_t(2);
      case ElementType::Int32: case ElementType::UInt32: return int64_t(4);
      default: return int64_t(8);
    }
  }();
  double total = 0;
  for (int64_t r0 = 0; r0 < N; r0 += R) {
    const int64_t r = std::min(R, N - r0);
    detail::MatrixRef xc{X + r0 * x_rs, x_rs, x_cs};
    if (input_pack != nullptr) {
      copy(X + r0 * x_rs, x_rs, x_cs, input_pack, F, 1, r, F);
      xc = {input_pack, F, 1};
    }
    // logits = X[chunk] W^T (+ b): B(p, j) = W(j, p).
    product(r, V, F, xc, {W.data, W.cs, W.rs}, logits, V, 1, 0.0);
    if (bias != nullptr)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t v = 0; v < V; ++v) logits[i * V + v] += bias[v * c.linear_bias_stride];
    RowwiseCall rc;
    rc.outer = r;
    rc.classes = c.classes;
    rc.inner = S;
    rc.inputs[0] = {logits, {V, S, 1}};
    if (p.want_grad) rc.grads[0] = {gbuf, {V, S, 1}};
    rc.target = c.target;
    rc.target.data = static_cast<char*>(c.target.data) + r0 * c.target.strides[0] * t_elem;
    rc.target_type = c.target_type;
    rc.weight = c.weight;
    if (none && c.grad_output.data != nullptr) {
      rc.grad_output = c.grad_output;
      rc.grad_output.data = static_cast<T*>(c.grad_output.data) + r0 * c.grad_output.strides[0];
    }
    const bool value_out = none && c.want_value;
    if (value_out) {
      rc.loss_out = c.loss_out;
      rc.loss_out.data = static_cast<T*>(c.loss_out.data) + r0 * c.loss_out.strides[0];
    }
    rc.reduction = none ? Reduction::None : Reduction::Sum;  // 'mean' divides by the denominator above
    rc.want_value = c.want_value;
    rc.want_grad = p.want_grad;
    rc.grad_scale = scale;
    rc.options[0] = static_cast<double>(c.ignore_index);
    rc.options[1] = c.label_smoothing > 0 ? c.label_smoothing : 0.0;  // torch smooths only when > 0
    rc.options[2] = c.z_loss;
    rc.options[3] = c.softcap;
    const RowTotals t = rowwise(RowLoss::CrossEntropy, dtype, rc);
    if (t.errors & 2) throw std::bad_alloc();
    if (t.errors & 1)  // checked up front: a target changed by another thread during the call
      throw std::out_of_range("fastloss::linear_cross_entropy: target: class index " + str(t.bad_index) +
                              " is out of bounds");
    total += t.loss;
    if (!p.want_grad) continue;
    const detail::MatrixRef G{gbuf, V, 1};
    if (want_gx) {  // grad_input[chunk] = G W
      if (gx_scratch != nullptr) {
        product(r, F, V, G, W, gx_scratch, F, 1, 0.0);
        copy(gx_scratch, F, 1, gx + r0 * c.grad_input.strides[0], c.grad_input.strides[0], c.grad_input.strides[1],
             r, F);
      } else {
        product(r, F, V, G, W, gx + r0 * c.grad_input.strides[0], c.grad_input.strides[0], c.grad_input.strides[1],
                0.0);
      }
    }
    if (want_gw)  // grad_linear_weight += G^T X[chunk]
      product(V, F, r, {gbuf, 1, V}, xc, gw_target, gw_rs, gw_cs, r0 == 0 ? 0.0 : 1.0);
    if (bias_sums != nullptr)
      for (int64_t i = 0; i < r; ++i)
        for (int64_t v = 0; v < V; ++v) bias_sums[v] += static_cast<double>(gbuf[i * V + v]);
  }
  if (p.want_grad) {
    if (want_gw && N == 0)
      for (int64_t v = 0; v < V; ++v)
        for (int64_t f = 0; f < F; ++f) gw_target[v * gw_rs + f * gw_cs] = T(0);
    if (want_gw && gw_scratch != nullptr)
      copy(gw_scratch, F, 1, gw, c.grad_linear_weight.strides[0], c.grad_linear_weight.strides[1], V, F);
    if (bias_sums != nullptr) {
      T* gb = static_cast<T*>(c.grad_linear_bias);
      for (int64_t v = 0; v < V; ++v) gb[v * c.grad_linear_bias_stride] = static_cast<T>(bias_sums[v]);
    }
  }
  switch (c.reduction) {
    case Reduction::Mean: return total / denominator;  // IEEE: 0 / 0 is NaN, the mean of nothing
    case Reduction::Sum: return total;
    default: return 0.0;
  }
}

}  // namespace

int64_t linear_cross_entropy_chunk_rows(DType dtype, const LinearCrossEntropyCall& c) {
  const int64_t rows = std::max<int64_t>(c.rows, 1);
  if (c.chunk_size < 0) invalid("chunk_size: negative (" + str(c.chunk_size) + "; 0 is the default)");
  if (c.chunk_size > 0) return std::min(rows, c.chunk_size);
  int64_t v = 0;
  if (__builtin_mul_overflow(std::max<int64_t>(c.classes, 0), std::max<int64_t>(c.inner, 0), &v)) v = INT64_MAX;
  const int64_t row_bytes = std::max<int64_t>(1, v > INT64_MAX / 8 ? INT64_MAX : v * elem_of(dtype));
  return std::min(rows, std::max<int64_t>(1, std::min(kMaxChunkRows, kChunkBytes / row_bytes)));
}

size_t linear_cross_entropy_workspace_size(DType dtype, const LinearCrossEntropyCall& call, int threads) {
  const Plan p = plan_of(dtype, call);
  if (!p.builtin) return p.fixed;
  return p.fixed + static_cast<size_t>(std::max(threads, 1)) * detail::gemm_panel_bytes(dtype);
}

double linear_cross_entropy(DType dtype, const LinearCrossEntropyCall& c, void* workspace, size_t workspace_bytes) {
  const Plan p = plan_of(dtype, c);
  const int64_t V = p.vocabulary, N = c.rows, F = c.features;
  if (static_cast<unsigned>(c.reduction) > 2u) invalid("reduction: unknown value " + str(static_cast<int>(c.reduction)));
  if (static_cast<unsigned>(c.target_type) > static_cast<unsigned>(ElementType::UInt64))
    invalid("target_type: unknown value " + str(static_cast<int>(c.target_type)));
  if (!c.want_value && !c.want_grad) invalid("nothing to compute (want_value and want_grad are false)");
  if (c.input.data == nullptr && N * F > 0) invalid("input.data: null");
  if (c.linear_weight.data == nullptr && V * F > 0) invalid("linear_weight.data: null");
  if (c.target.data == nullptr && N * c.inner > 0) invalid("target.data: null");
  const bool none = c.reduction == Reduction::None;
  if (none && c.want_value && c.loss_out.data == nullptr && N * c.inner > 0)
    invalid("loss_out.data: null with reduction None");
  if (c.want_grad) {
    if (c.grad_input.data == nullptr && c.grad_linear_weight.data == nullptr && c.grad_linear_bias == nullptr)
      invalid("want_grad, but grad_input, grad_linear_weight and grad_linear_bias are all null");
    if (c.grad_linear_bias != nullptr && c.linear_bias == nullptr)
      invalid("grad_linear_bias: linear_bias is null, so it has no gradient");
  }
  // cross_entropy's options, as the Python function checks them.
  if (c.label_smoothing > 1) invalid("label_smoothing: must be <= 1 (got " + std::to_string(c.label_smoothing) + ")");
  if (!std::isfinite(c.z_loss)) invalid("z_loss: must be a finite number");
  if (c.softcap != 0) {
    const double lo = dtype == DType::Float32 ? 1.1754943508222875e-38 : 2.2250738585072014e-308;
    const double hi = dtype == DType::Float32 ? 3.4028234663852886e38 : 1.7976931348623157e308;
    if (!(c.softcap >= lo && c.softcap <= hi))
      invalid("softcap: must be 0 (none) or a positive normal number of the dtype");
  }
  const bool probabilities = c.target_type == ElementType::Float;
  if (probabilities && c.ignore_index >= 0) invalid("ignore_index: not supported for probability targets");
  if (!p.builtin && (p.chunk > INT_MAX || V > INT_MAX || F > INT_MAX))
    invalid("rows per chunk, V, features: a caller's GEMM takes int sizes (at most " + str(INT_MAX) + ")");
  const size_t need = p.builtin ? p.fixed + detail::gemm_panel_bytes(dtype) : p.fixed;
  if (workspace == nullptr) invalid("workspace: NULL (linear_cross_entropy_workspace_size gives its size)");
  if (workspace_bytes < need)
    invalid("workspace: " + str(static_cast<int64_t>(workspace_bytes)) + " bytes, the call needs at least " +
            str(static_cast<int64_t>(need)) + " (linear_cross_entropy_workspace_size)");
  // The targets (and the 'mean' denominator: the summed class weight of the counted rows, or their count).
  RowwiseCall view;
  view.outer = N;
  view.classes = c.classes;
  view.inner = c.inner;
  view.target = c.target;
  view.target_type = c.target_type;
  double denominator = static_cast<double>(N) * static_cast<double>(c.inner);
  if (!probabilities && N * c.inner > 0) {
    detail::check_class_indices(view, false, c.ignore_index, true, "linear_cross_entropy");
    int size = 1;
    switch (c.target_type) {
      case ElementType::Int8: case ElementType::UInt8: size = 1; break;
      case ElementType::Int16: case ElementType::UInt16: size = 2; break;
      case ElementType::Int32: case ElementType::UInt32: size = 4; break;
      default: size = 8; break;
    }
    denominator = 0;
    const char* base = static_cast<const char*>(c.target.data);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < c.inner; ++s) {
        const char* q = base + (n * c.target.strides[0] + s * c.target.strides[2]) * size;
        int64_t y;
        switch (c.target_type) {
          case ElementType::Int8: { int8_t v; std::memcpy(&v, q, 1); y = v; break; }
          case ElementType::UInt8: { uint8_t v; std::memcpy(&v, q, 1); y = v; break; }
          case ElementType::Int16: { int16_t v; std::memcpy(&v, q, 2); y = v; break; }
          case ElementType::UInt16: { uint16_t v; std::memcpy(&v, q, 2); y = v; break; }
          case ElementType::Int32: { int32_t v; std::memcpy(&v, q, 4); y = v; break; }
          case ElementType::UInt32: { uint32_t v; std::memcpy(&v, q, 4); y = v; break; }
          case ElementType::UInt64: {
            uint64_t v;
            std::memcpy(&v, q, 8);
            y = v > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(v);  // (checked: in range or ignored)
            break;
          }
          default: std::memcpy(&y, q, 8); break;
        }
        if (y == c.ignore_index || y < 0 || y >= c.classes) continue;
        if (c.weight.data == nullptr) {
          denominator += 1;
        } else {
          const int64_t w = y * c.weight.strides[1];
          denominator += dtype == DType::Float32 ? static_cast<double>(static_cast<const float*>(c.weight.data)[w])
                                                 : static_cast<const double*>(c.weight.data)[w];
        }
      }
  }
  // 64-byte aligned parts.
  char* base = static_cast<char*>(workspace);
  char* aligned = base + (kAlign - reinterpret_cast<uintptr_t>(base) % kAlign) % kAlign;
  const size_t usable = workspace_bytes - static_cast<size_t>(aligned - base);
  return dtype == DType::Float32 ? run<float>(dtype, c, p, denominator, aligned, usable)
                                 : run<double>(dtype, c, p, denominator, aligned, usable);
}

}  // namespace fastloss
