// The row-wise driver: a reduction along one axis (the class axis of the
// classification losses; the feature axis of the paired-row losses) for
// every position of the other axes. It owns the loops over rows, the
// layouts, the per-row scalars, the threads and the blocked sums; a loss
// functor (cpp/src/losses/classification.h) owns the math of one row.
//
// Layout (fastloss.h, RowwiseCall): every array is a cube (outer, classes,
// inner) of element strides; a row is the `classes` elements at one (n, s),
// rows are numbered r = n * inner + s. Three ways to walk a row, picked per
// call from the strides alone (never from the thread count or the ISA):
//   row      the class axis has unit stride in every row operand: the loss
//            vectorises along the classes, in place (a (N, C) array, or a
//            channels-last (N, d, C) one);
//   spatial  the class axis is strided and the inner axis has unit stride
//            (a contiguous (N, C, H, W)): the loss vectorises across
//            adjacent rows (lane l is row s + l) and loops over the classes.
//            Rows left over at a run's end take the same code with scalar
//            lanes, so a row's bits do not depend on the vector width;
//   gather   anything else: the row is copied into a contiguous scratch row,
//            run as `row`, and its gradient copied back (losses that read
//            one element per row, nll_loss, take any stride directly).
//
// Blocks: rows are cut into blocks of a fixed number of rows (a function of
// the class count only); threads take whole blocks; each block keeps its
// sums in double, adding its rows' losses in row order, and the blocks are
// added in block order: results are bitwise identical for any thread count.
// Inside a row the loss sums in fixed slots (slot_sums below), the same on
// every ISA level.
//
// Targets: class indices of any integer width are read through one loader
// per width (chosen once per call), a block at a time, into int64. A block
// also prepares each row's class weight w[y] and gradient scale; an index
// outside [0, classes) (other than ignore_index) sets the error bit, records
// the value (the first in row order wins) and its row computes nothing: no
// read out of bounds, and no separate validation pass.
//
// Mean: the denominator (the summed w[y] of the counted rows, or the row
// count) is computed first, from the targets alone, when gradients are
// wanted, so the gradient pass can scale by grad_output / denominator.
//
// A loss functor gives kTarget (RowTarget), kIgnoreIndex, kWeightTotal,
// kAnyStride, kSpatial, kRuns, Params<T>(options, classes) and
//   row<kValue, kGrad>(const RowView<T>&, const Params&, const RowScalars&, RowError*) -> double
//   spatial<kValue, kGrad, V>(const RowView<T>&, const Params&, const LaneScalars<T>&, double* values)
//   run_rows<kValue, kGrad>(const RunView<T>&, y, wy, scale, status, values)   (kRuns: whole runs of rows)
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fastloss/fastloss.h"
#include "simd/math.h"
#include "simd/parallel.h"
#include "simd/vec.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp
}

namespace FASTLOSS_ISA_NS {
namespace rowwise {

// A block holds about kBlockElements elements, and at most kMaxBlockRows rows.
constexpr int64_t kBlockElements = 16384;
constexpr int64_t kMaxBlockRows = 2048;
constexpr int64_t kRoundBlocks = 1024;  // blocks whose partials one parallel round keeps on the stack
// Slots of a row's sums (the same on every ISA level), and the segment of
// classes summed in T before its sum is added in double.
constexpr int kSumSlots = 16;
constexpr int64_t kClassBlock = 1024;
static_assert(kSumSlots % (kVectorBytes / 4) == 0, "a float vector covers whole slots");

// Rows per block: about kBlockElements elements (a loss that reads one
// element per row, kRuns, takes kMaxBlockRows). A function of the shape only.
inline int64_t block_rows(int64_t classes, bool runs) {
  if (runs) return kMaxBlockRows;
  const int64_t c = classes > 1 ? classes : 1;
  const int64_t rows = kBlockElements / c;
  return rows < 1 ? 1 : (rows > kMaxBlockRows ? kMaxBlockRows : rows);
}

// ---- target loaders: one per integer width, picked once per call.
using IndexLoader = void (*)(const void* base, int64_t stride, int64_t n, int64_t* out);

template <class I>
void load_indices(const void* base, int64_t stride, int64_t n, int64_t* out) {
  const I* p = static_cast<const I*>(base);
  for (int64_t i = 0; i < n; ++i) {
    const I v = p[i * stride];
    // uint64 values beyond int64 are out of range for any class count.
    if constexpr (sizeof(I) == 8 && static_cast<I>(-1) > 0)
      out[i] = v > static_cast<I>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    else
      out[i] = static_cast<int64_t>(v);
  }
}

inline int element_size(ElementType t, int float_size) {
  switch (t) {
    case ElementType::Int8: case ElementType::UInt8: return 1;
    case ElementType::Int16: case ElementType::UInt16: return 2;
    case ElementType::Int32: case ElementType::UInt32: return 4;
    case ElementType::Int64: case ElementType::UInt64: return 8;
    default: return float_size;
  }
}

inline IndexLoader loader_for(ElementType t) {
  switch (t) {
    case ElementType::Int8: return &load_indices<int8_t>;
    case ElementType::Int16: return &load_indices<int16_t>;
    case ElementType::Int32: return &load_indices<int32_t>;
    case ElementType::Int64: return &load_indices<int64_t>;
    case ElementType::UInt8: return &load_indices<uint8_t>;
    case ElementType::UInt16: return &load_indices<uint16_t>;
    case ElementType::UInt32: return &load_indices<uint32_t>;
    case ElementType::UInt64: return &load_indices<uint64_t>;
    default: return nullptr;
  }
}

// ---- what a loss sees.

// One row (row path: unit class strides) or the first of a group of adjacent
// rows (spatial path: lane l at +l). Absent operands are null.
template <class T>
struct RowView {
  const T* x = nullptr;  // input
  int64_t xc = 1;        // its class stride
  const T* t = nullptr;  // float target row (probabilities, multilabel targets)
  int64_t tc = 1;
  const int64_t* trow = nullptr;  // a row of class indices (contiguous)
  T* g = nullptr;                 // gradient (null when not wanted)
  int64_t gc = 1;
  const T* w = nullptr;  // class weights, contiguous (null: 1)
  int64_t classes = 0;
  T* scratch = nullptr;  // `classes` elements the loss may use (not on the spatial path)
};

// A run of rows for a loss that takes runs (kRuns): row k at x + k * xr.
template <class T>
struct RunView {
  const T* x = nullptr;
  int64_t xc = 1, xr = 0;
  T* g = nullptr;
  int64_t gc = 1, gr = 0;
  int64_t classes = 0, count = 0;
};

// A row-level error a loss finds itself (a row of class indices with one out of range).
struct RowError {
  bool failed = false;
  int64_t value = 0;
};

// The driver's per-row values: class index (valid), its weight, gradient scale.
struct RowScalars {
  int64_t y;
  double wy;
  double scale;
};

// The same for the lanes of a spatial group (invalid lanes: y = 0, wy = 0, scale = 0).
template <class T>
struct LaneScalars {
  const int64_t* y;
  const double* wy;
  const double* scale;
};

// Sums K quantities over n contiguous positions in kSumSlots fixed slots:
// f(i, out) writes the K terms of positions [i, i + lanes) into out[K]
// (vectors of T, or T for the tail); position j goes into slot j mod 16;
// each slot is kept in T, then the slots are added in double as a fixed
// pairwise tree. Same order on every ISA level.
template <int K, class T, class F>
inline void slot_sums(int64_t n, F&& f, double* out) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr int kVecs = kSumSlots / L;
  V acc[K][kVecs];
  T tail[K][kSumSlots];
  for (int k = 0; k < K; ++k) {
    for (int j = 0; j < kVecs; ++j) acc[k][j] = splat<V>(T(0));
    for (int s = 0; s < kSumSlots; ++s) tail[k][s] = T(0);
  }
  int64_t i = 0;
  for (; i + kSumSlots <= n; i += kSumSlots) {
#pragma GCC unroll 16
    for (int j = 0; j < kVecs; ++j) {
      V v[K];
      f(i + j * L, v);
      for (int k = 0; k < K; ++k) acc[k][j] += v[k];
    }
  }
  for (int s = 0; i < n; ++i, ++s) {
    T v[K];
    f(i, v);
    for (int k = 0; k < K; ++k) tail[k][s] += v[k];
  }
  for (int k = 0; k < K; ++k) {
    T lanes[kSumSlots];
    for (int j = 0; j < kVecs; ++j) store(lanes + j * L, acc[k][j]);
    double slot[kSumSlots];
    for (int s = 0; s < kSumSlots; ++s) slot[s] = static_cast<double>(lanes[s]) + static_cast<double>(tail[k][s]);
    for (int width = kSumSlots / 2; width > 0; width /= 2)
      for (int s = 0; s < width; ++s) slot[s] += slot[s + width];
    out[k] = slot[0];
  }
}

// Largest element of a contiguous row (NaNs skipped: they reach the result
// through the sums); -inf for an empty row. Exact, so any order.
template <class T>
inline T row_max(const T* x, int64_t n) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  const T ninf = -__builtin_huge_val();
  V m0 = splat<V>(ninf), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const V a = load<V>(x + i), b = load<V>(x + i + L);
    m0 = select(a > m0, a, m0);
    m1 = select(b > m1, b, m1);
  }
  m0 = select(m1 > m0, m1, m0);
  T lanes[L];
  store(lanes, m0);
  T m = ninf;
  for (int l = 0; l < L; ++l) m = lanes[l] > m ? lanes[l] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// ---- the driver

enum Status : uint8_t { kValid = 0, kIgnored = 1, kBad = 2 };

template <class T>
struct Setup {
  const RowwiseCall* call;
  int64_t rows, rows_per_block, nblocks;
  const T* weight;  // contiguous class weights or null
  IndexLoader loader;
  int target_size;
  bool index_target;  // a class index per row
  bool index_rows;    // a row of class indices per row
  bool float_target;  // a float row
  int64_t ignore_index;
  bool has_ignore;
  double grad_scale;  // call.grad_scale / denominator for Mean
};

struct BlockResult {
  double loss, weight;
  uint32_t errors;
  int64_t bad_index;
};

// Per-row preparation of a block: class indices, status, w[y], scale.
template <class T>
struct BlockRows {
  int64_t y[kMaxBlockRows];
  double wy[kMaxBlockRows];
  double scale[kMaxBlockRows];
  uint8_t status[kMaxBlockRows];
  double value[kMaxBlockRows];
};

template <class T>
inline const T* at(const RowArray& a, int64_t n, int64_t c, int64_t s) {
  return static_cast<const T*>(a.data) + n * a.strides[0] + c * a.strides[1] + s * a.strides[2];
}
template <class T>
inline T* at_mut(const RowArray& a, int64_t n, int64_t c, int64_t s) {
  return static_cast<T*>(a.data) + n * a.strides[0] + c * a.strides[1] + s * a.strides[2];
}

// Loads and checks the class indices of rows [r0, r1); fills status, y, wy
// and (kScale) the gradient scale. Returns the error bits (bad index in *bad).
template <class T, bool kScale>
inline uint32_t prepare(const Setup<T>& su, int64_t r0, int64_t r1, BlockRows<T>& b, int64_t* bad) {
  const RowwiseCall& c = *su.call;
  const int64_t inner = c.inner;
  uint32_t errors = 0;
  const int64_t count = r1 - r0;
  if (su.index_target) {
    if (inner == 1) {  // one run over the block's rows (n = r)
      const char* base = static_cast<const char*>(c.target.data) + r0 * c.target.strides[0] * su.target_size;
      su.loader(base, c.target.strides[0], count, b.y);
    } else {
      for (int64_t r = r0; r < r1;) {
        const int64_t n = r / inner, s = r % inner;
        const int64_t run = (inner - s) < (r1 - r) ? (inner - s) : (r1 - r);
        const char* base = static_cast<const char*>(c.target.data) +
                           (n * c.target.strides[0] + s * c.target.strides[2]) * su.target_size;
        su.loader(base, c.target.strides[2], run, b.y + (r - r0));
        r += run;
      }
    }
    for (int64_t k = 0; k < count; ++k) {
      const int64_t y = b.y[k];
      if (su.has_ignore && y == su.ignore_index) {
        b.status[k] = kIgnored;
      } else if (y < 0 || y >= c.classes) {
        b.status[k] = kBad;
        if (errors == 0) *bad = y;
        errors = 1;
      } else {
        b.status[k] = kValid;
        b.wy[k] = su.weight != nullptr ? static_cast<double>(su.weight[y]) : 1.0;
        continue;
      }
      b.y[k] = 0;
      b.wy[k] = 0;
    }
  } else {
    for (int64_t k = 0; k < count; ++k) {
      b.status[k] = kValid;
      b.y[k] = 0;
      b.wy[k] = 1.0;
    }
  }
  if constexpr (kScale) {
    for (int64_t k = 0; k < count; ++k) {
      double g = su.grad_scale;
      if (c.grad_output.data != nullptr) {
        const int64_t r = r0 + k;
        g *= static_cast<double>(*at<T>(c.grad_output, r / inner, 0, r % inner));
      }
      b.scale[k] = b.status[k] == kValid ? g : 0.0;
    }
  }
  return errors;
}

// Scratch of one thread: contiguous copies of a row's operands (gather path)
// and a row of class indices. malloc'd (no standard-library template in an
// ISA namespace, vec.h says why), sized by the class count only.
template <class T>
struct Scratch {
  T* x = nullptr;
  T* t = nullptr;
  T* g = nullptr;
  T* free_row = nullptr;
  int64_t* idx = nullptr;
  bool ok = true;
  explicit Scratch(int64_t classes, bool rows, bool index_rows) {
    const size_t n = static_cast<size_t>(classes > 0 ? classes : 1);
    if (rows) {
      x = static_cast<T*>(std::malloc(4 * n * sizeof(T)));
      ok = x != nullptr;
      if (ok) {
        t = x + n;
        g = x + 2 * n;
        free_row = x + 3 * n;
      }
    }
    if (index_rows && ok) {
      idx = static_cast<int64_t*>(std::malloc(n * sizeof(int64_t)));
      ok = idx != nullptr;
    }
  }
  ~Scratch() {
    std::free(x);
    std::free(idx);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

template <class Loss, bool kValue, bool kGrad, class T>
struct Runner {
  using P = typename Loss::template Params<T>;
  const Setup<T>* su;
  const P* p;
  int64_t first;  // first block of the round
  BlockResult* results;

  static void blocks(void* context, int64_t begin, int64_t end) {
    const Runner& self = *static_cast<const Runner*>(context);
    const Setup<T>& su = *self.su;
    const RowwiseCall& c = *su.call;
    Scratch<T> scratch(c.classes, !Loss::kAnyStride || su.index_rows, su.index_rows);
    BlockRows<T> b;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t block = self.first + k;
      const int64_t r0 = block * su.rows_per_block;
      const int64_t r1 = r0 + su.rows_per_block < su.rows ? r0 + su.rows_per_block : su.rows;
      BlockResult& res = self.results[k];
      res = BlockResult{0, 0, 0, 0};
      if (!scratch.ok) {
        res.errors = 2;  // out of memory
        continue;
      }
      res.errors = prepare<T, kGrad>(su, r0, r1, b, &res.bad_index);
      run_block(self, r0, r1, b, scratch, res);
    }
  }

  static void run_block(const Runner& self, int64_t r0, int64_t r1, BlockRows<T>& b, Scratch<T>& scratch,
                        BlockResult& res) {
    const Setup<T>& su = *self.su;
    const RowwiseCall& c = *su.call;
    const P& p = *self.p;
    const int64_t C = c.classes, inner = c.inner;
    const RowArray& X = c.inputs[0];
    const RowArray& G = c.grads[0];
    const RowArray& Tg = c.target;
    const bool float_rows = su.float_target;
    const bool unit = X.strides[1] == 1 && (!float_rows || Tg.strides[1] == 1) && (!kGrad || G.strides[1] == 1);
    const bool spatial = Loss::kSpatial && !unit && inner > 1 && X.strides[2] == 1 &&
                         (!float_rows || Tg.strides[2] == 1) && (!kGrad || G.strides[2] == 1);
    for (int64_t r = r0; r < r1;) {
      const int64_t n = r / inner, s0 = r % inner;
      const int64_t run = (inner - s0) < (r1 - r) ? (inner - s0) : (r1 - r);
      const int64_t k0 = r - r0;
      if constexpr (Loss::kRuns) {
        // The loss takes a run of rows at once (one element per row: a tight
        // gather loop keeps many loads in flight). With inner == 1 the run
        // is the whole block (rows step along n).
        const bool whole = inner == 1;
        const int64_t count = whole ? r1 - r0 : run;
        RunView<T> rv;
        rv.classes = C;
        rv.count = count;
        rv.x = at<T>(X, n, 0, s0);
        rv.xc = X.strides[1];
        rv.xr = whole ? X.strides[0] : X.strides[2];
        if constexpr (kGrad) {
          rv.g = at_mut<T>(G, n, 0, s0);
          rv.gc = G.strides[1];
          rv.gr = whole ? G.strides[0] : G.strides[2];
        }
        Loss::template run_rows<kValue, kGrad>(rv, b.y + k0, b.wy + k0, b.scale + k0, b.status + k0,
                                               b.value + k0);
        r += count;
        continue;
      }
      if (Loss::kSpatial && spatial) {
        using V = typename VecOf<T>::type;
        constexpr int L = kLanes<T>;
        int64_t j = 0;
        for (; j + L <= run; j += L) spatial_group<V>(self, n, s0 + j, k0 + j, b);
        for (; j < run; ++j) spatial_group<T>(self, n, s0 + j, k0 + j, b);
      } else {
        for (int64_t j = 0; j < run; ++j) {
          const int64_t k = k0 + j, s = s0 + j;
          // An ignored row's gradient is 0 * softmax, as torch's (NaN where
          // the row is not finite): the loss runs it with a zero scale,
          // except a loss that reads one element per row (nll_loss: 0).
          const bool run_ignored = !Loss::kAnyStride && kGrad && b.status[k] == kIgnored;
          if (b.status[k] != kValid && !run_ignored) {
            b.value[k] = 0;
            if constexpr (kGrad) {
              T* g = at_mut<T>(G, n, 0, s);
              for (int64_t cc = 0; cc < C; ++cc) g[cc * G.strides[1]] = T(0);
            }
            continue;
          }
          RowView<T> v;
          v.classes = C;
          v.w = su.weight;
          v.x = at<T>(X, n, 0, s);
          v.xc = X.strides[1];
          if (float_rows) {
            v.t = at<T>(Tg, n, 0, s);
            v.tc = Tg.strides[1];
          }
          if constexpr (kGrad) {
            v.g = at_mut<T>(G, n, 0, s);
            v.gc = G.strides[1];
          }
          if (su.index_rows) {
            const char* base = static_cast<const char*>(Tg.data) +
                               (n * Tg.strides[0] + s * Tg.strides[2]) * su.target_size;
            su.loader(base, Tg.strides[1], C, scratch.idx);
            v.trow = scratch.idx;
          }
          T* g_out = v.g;
          const bool gather = !Loss::kAnyStride && !unit;
          if (gather) {
            for (int64_t cc = 0; cc < C; ++cc) scratch.x[cc] = v.x[cc * v.xc];
            v.x = scratch.x;
            v.xc = 1;
            if (float_rows) {
              for (int64_t cc = 0; cc < C; ++cc) scratch.t[cc] = v.t[cc * v.tc];
              v.t = scratch.t;
              v.tc = 1;
            }
            if constexpr (kGrad) {
              v.g = scratch.g;
              v.gc = 1;
            }
          }
          v.scratch = scratch.free_row;
          const RowScalars rs{b.y[k], b.wy[k], kGrad ? b.scale[k] : 0.0};
          RowError err;
          b.value[k] = Loss::template row<kValue, kGrad>(v, p, rs, &err);
          if (err.failed) {
            if (res.errors == 0) res.bad_index = err.value;
            res.errors |= 1;
          }
          if constexpr (kGrad) {
            if (gather)
              for (int64_t cc = 0; cc < C; ++cc) g_out[cc * G.strides[1]] = scratch.g[cc];
          }
        }
      }
      r += run;
    }
    // The block's sums: row k into accumulator k mod 4 (a fixed order, and
    // four add chains in flight), then ((a0 + a1) + (a2 + a3)); 'none'
    // values written per row.
    const RowArray& O = c.loss_out;
    const int64_t count = r1 - r0;
    double loss[4] = {0, 0, 0, 0}, weight[4] = {0, 0, 0, 0};
    for (int64_t k = 0; k < count; ++k) {
      const bool valid = b.status[k] == kValid;
      const double value = valid ? b.value[k] : 0.0;
      if constexpr (kValue) {
        if (O.data != nullptr) {
          const int64_t r = r0 + k;
          *at_mut<T>(O, r / inner, 0, r % inner) = static_cast<T>(value);
        } else {
          loss[k & 3] += value;
        }
      }
      weight[k & 3] += valid ? b.wy[k] : 0.0;
    }
    res.loss = (loss[0] + loss[1]) + (loss[2] + loss[3]);
    res.weight = (weight[0] + weight[1]) + (weight[2] + weight[3]);
  }

  template <class V>
  static void spatial_group(const Runner& self, int64_t n, int64_t s, int64_t k, BlockRows<T>& b) {
    const Setup<T>& su = *self.su;
    const RowwiseCall& c = *su.call;
    RowView<T> v;
    v.classes = c.classes;
    v.w = su.weight;
    v.x = at<T>(c.inputs[0], n, 0, s);
    v.xc = c.inputs[0].strides[1];
    if (su.float_target) {
      v.t = at<T>(c.target, n, 0, s);
      v.tc = c.target.strides[1];
    }
    if constexpr (kGrad) {
      v.g = at_mut<T>(c.grads[0], n, 0, s);
      v.gc = c.grads[0].strides[1];
    }
    const LaneScalars<T> ls{b.y + k, b.wy + k, b.scale + k};
    Loss::template spatial<kValue, kGrad, V>(v, *self.p, ls, b.value + k);
  }
};

// The denominator pass: the summed w[y] of the counted rows (and the index
// checks), block by block in block order.
template <class T>
struct WeightRunner {
  const Setup<T>* su;
  int64_t first;
  BlockResult* results;
  static void blocks(void* context, int64_t begin, int64_t end) {
    const WeightRunner& self = *static_cast<const WeightRunner*>(context);
    BlockRows<T> b;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t block = self.first + k;
      const int64_t r0 = block * self.su->rows_per_block;
      const int64_t r1 = r0 + self.su->rows_per_block < self.su->rows ? r0 + self.su->rows_per_block : self.su->rows;
      BlockResult& res = self.results[k];
      res = BlockResult{0, 0, 0, 0};
      res.errors = prepare<T, false>(*self.su, r0, r1, b, &res.bad_index);
      double weight[4] = {0, 0, 0, 0};  // the main pass's order (Runner::run_block)
      for (int64_t i = 0; i < r1 - r0; ++i) weight[i & 3] += b.status[i] == kValid ? b.wy[i] : 0.0;
      res.weight = (weight[0] + weight[1]) + (weight[2] + weight[3]);
    }
  }
};

// Runs blocks [0, nblocks) of `Run` in rounds and combines them in block order.
template <class Run>
inline BlockResult run_blocks(Run& run, int64_t nblocks, int threads) {
  BlockResult total{0, 0, 0, 0};
  BlockResult results[kRoundBlocks];
  for (int64_t first = 0; first < nblocks; first += kRoundBlocks) {
    const int64_t count = nblocks - first < kRoundBlocks ? nblocks - first : kRoundBlocks;
    run.first = first;
    run.results = results;
    if (threads > 1 && count > 1)
      detail::parallel_for(count, threads, 1, &Run::blocks, &run);
    else
      Run::blocks(&run, 0, count);
    for (int64_t k = 0; k < count; ++k) {
      total.loss += results[k].loss;
      total.weight += results[k].weight;
      if (results[k].errors != 0 && total.errors == 0) total.bad_index = results[k].bad_index;
      total.errors |= results[k].errors;
    }
  }
  return total;
}

template <class Loss, class T>
RowTotals run_loss(const RowwiseCall& c) {
  RowTotals totals;
  Setup<T> su;
  su.call = &c;
  su.rows = c.outer * c.inner;
  su.rows_per_block = block_rows(c.classes, Loss::kRuns);
  su.nblocks = (su.rows + su.rows_per_block - 1) / su.rows_per_block;
  su.target_size = element_size(c.target_type, sizeof(T));
  su.loader = loader_for(c.target_type);
  const bool int_target = c.target_type != ElementType::Float;
  su.index_target = int_target && (Loss::kTarget == RowTarget::Index || Loss::kTarget == RowTarget::IndexOrFloat);
  su.index_rows = int_target && Loss::kTarget == RowTarget::IndexRows;
  su.float_target = !int_target && (Loss::kTarget == RowTarget::Float || Loss::kTarget == RowTarget::IndexOrFloat);
  su.has_ignore = Loss::kIgnoreIndex && su.index_target;
  su.ignore_index = 0;
  if (su.has_ignore) {
    const double ii = c.options[0];
    su.ignore_index = ii >= 9.2233720368547758e18 ? INT64_MAX : (ii < -9.2233720368547758e18 ? INT64_MIN : static_cast<int64_t>(ii));
  }
  const bool weight_total = Loss::kWeightTotal && su.index_target;
  // Class weights as a contiguous T array (a copy only for a strided weight).
  T* weight_copy = nullptr;
  su.weight = static_cast<const T*>(c.weight.data);
  if (su.weight != nullptr && c.weight.strides[1] != 1 && c.classes > 1) {
    weight_copy = static_cast<T*>(std::malloc(static_cast<size_t>(c.classes) * sizeof(T)));
    if (weight_copy == nullptr) {
      totals.errors = 2;
      return totals;
    }
    for (int64_t k = 0; k < c.classes; ++k) weight_copy[k] = su.weight[k * c.weight.strides[1]];
    su.weight = weight_copy;
  }
  const int threads = su.nblocks > 1 ? detail::threads_for(su.rows * (c.classes > 1 ? c.classes : 1)) : 1;
  const bool value = c.want_value, grad = c.want_grad;
  const bool mean = c.reduction == Reduction::Mean;
  double denominator = static_cast<double>(su.rows);
  su.grad_scale = c.grad_scale;
  if (grad && mean) {
    if (weight_total) {
      WeightRunner<T> wr{&su, 0, nullptr};
      const BlockResult pre = run_blocks(wr, su.nblocks, threads);
      if (pre.errors != 0) {
        std::free(weight_copy);
        totals.errors = pre.errors;
        totals.bad_index = pre.bad_index;
        return totals;
      }
      denominator = pre.weight;
    }
    // IEEE division, also for a zero denominator (inf or NaN, as torch).
    su.grad_scale = c.grad_scale / denominator;
  }
  const typename Loss::template Params<T> p(c.options, c.classes);
  BlockResult r{0, 0, 0, 0};
  if (value && grad) {
    Runner<Loss, true, true, T> run{&su, &p, 0, nullptr};
    r = run_blocks(run, su.nblocks, threads);
  } else if (grad) {
    Runner<Loss, false, true, T> run{&su, &p, 0, nullptr};
    r = run_blocks(run, su.nblocks, threads);
  } else {
    Runner<Loss, true, false, T> run{&su, &p, 0, nullptr};
    r = run_blocks(run, su.nblocks, threads);
  }
  std::free(weight_copy);
  totals.loss = r.loss;
  totals.errors = r.errors;
  totals.bad_index = r.bad_index;
  totals.denominator = weight_total ? (grad && mean ? denominator : r.weight) : static_cast<double>(su.rows);
  return totals;
}

}  // namespace rowwise
}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
