// The element-wise driver: walks N-d strided operands, runs a loss functor
// with SIMD, writes per-element losses and/or gradients, and sums losses over
// fixed blocks so results do not depend on the thread count or on the layout
// of any operand.
//
// Structure of one call over the flattened (C-order) index space [0, numel):
//   block  kBlock elements at fixed boundaries -> one double partial sum;
//          partials are added in block order (1 or N threads: same bits)
//   chunk  kChunk elements at fixed offsets inside the block. A run of chunks
//          that every operand walks with unit stride is processed in place;
//          any other chunk (row ends, strides, broadcast, negative strides) is
//          gathered into stack buffers first and its outputs scattered after.
// Inside a block, flat position j always lands in the same accumulator lane
// (four vector accumulators, lane j mod 4L), whichever path a chunk took, so
// the sum is a function of the values alone. Lanes accumulate in T (at most
// kBlock / 4L terms each, 128 for float32 on AVX-512), then are added in
// double; the < 4L elements after the last full step of the array are added
// in double. float32 sums stay within ~1e-7 relative of float64.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "fastloss/fastloss.h"
#include "simd/vec.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp: 1 for small calls, else the thread setting
}

namespace FASTLOSS_ISA_NS {

// Reduction block and chunk (elements). They fix the summation order of every
// result: changing them changes results in the last bits.
constexpr int64_t kBlock = 8192;
constexpr int64_t kChunk = 512;
static_assert(kBlock % kChunk == 0, "chunks tile blocks");
static_assert(kChunk % (4 * kVectorBytes / 4) == 0, "a chunk is whole 4-vector steps");

// Per-call loss parameters in the element type.
template <class T>
struct Params {
  T param;  // beta / delta
  T scale;  // gradient scale
};

// Bits of a driver mode.
enum : int {
  kValueNone = 1,   // write per-element loss to loss_out
  kValueSum = 2,    // accumulate the loss sum
  kGrad = 4,        // write the gradient to grad_out
  kGradArray = 8,   // per-element grad_output (else only params.scale)
  kWeighted = 16,   // per-element weight
};

enum Slot { kInput = 0, kTarget, kWeight, kGradOutput, kLossOut, kGradOut, kSlots };

struct Operands {
  char* data[kSlots];
  int64_t strides[kSlots][kMaxDims];
  int64_t shape[kMaxDims];
  int ndim;
};

// Loss (value and/or gradient) of one vector or scalar position, with weight,
// per-element grad_output and gradient scale applied; stores what the mode
// writes and returns the value to accumulate.
// Pointers of operands the mode does not use may be null: only used ones are offset.
template <class Loss, int kMode, class V, class T>
inline V step(const T* x, const T* y, const T* w, const T* g, T* lout, T* gout, int64_t i, V vparam,
              V vscale) {
  constexpr bool kValue = (kMode & (kValueNone | kValueSum)) != 0;
  constexpr bool kWantGrad = (kMode & kGrad) != 0;
  V value{}, grad{};
  V vy{};
  if constexpr (Loss::kInputs == 2) vy = load<V>(y + i);
  Loss::template eval<kValue, kWantGrad>(load<V>(x + i), vy, vparam, value, grad);
  if constexpr ((kMode & kWeighted) != 0) {
    const V vw = load<V>(w + i);
    if constexpr (kValue) value = value * vw;
    if constexpr (kWantGrad) grad = grad * vw;
  }
  if constexpr ((kMode & kValueNone) != 0) store(lout + i, value);
  if constexpr (kWantGrad) {
    if constexpr ((kMode & kGradArray) != 0) grad = grad * load<V>(g + i);
    store(gout + i, grad * vscale);
  }
  return value;
}

// Four vector accumulators of one block.
template <class V>
struct Accumulators {
  V a0, a1, a2, a3;
};

// Runs Loss over n contiguous elements starting at a multiple of 4L from the
// block start; n is a multiple of 4L except for the array's last elements,
// whose loss is returned (in double) rather than accumulated.
template <class Loss, int kMode, class T, class V>
inline double run_contiguous(const T* x, const T* y, const T* w, const T* g, T* lout, T* gout,
                             int64_t n, const Params<T>& p, Accumulators<V>& acc) {
  constexpr int L = kLanes<T>;
  constexpr bool kSum = (kMode & kValueSum) != 0;
  const V vparam = splat<V>(p.param);
  const V vscale = splat<V>(p.scale);
  V a0 = acc.a0, a1 = acc.a1, a2 = acc.a2, a3 = acc.a3;
  int64_t i = 0;
#define FASTLOSS_STEP(k) step<Loss, kMode, V>(x, y, w, g, lout, gout, i + (k) * L, vparam, vscale)
  for (; i + 4 * L <= n; i += 4 * L) {
    const V v0 = FASTLOSS_STEP(0), v1 = FASTLOSS_STEP(1), v2 = FASTLOSS_STEP(2), v3 = FASTLOSS_STEP(3);
    if constexpr (kSum) {
      a0 += v0;
      a1 += v1;
      a2 += v2;
      a3 += v3;
    }
  }
#undef FASTLOSS_STEP
  acc = {a0, a1, a2, a3};
  double tail = 0;
  for (; i < n; ++i) {
    const T value = step<Loss, kMode, T>(x, y, w, g, lout, gout, i, p.param, p.scale);
    if constexpr (kSum) tail += static_cast<double>(value);
  }
  return tail;
}

// Which slots a mode touches.
template <class Loss, int kMode>
constexpr bool uses(int slot) {
  switch (slot) {
    case kInput: return true;
    case kTarget: return Loss::kInputs == 2;
    case kWeight: return (kMode & kWeighted) != 0;
    case kGradOutput: return (kMode & kGradArray) != 0;
    case kLossOut: return (kMode & kValueNone) != 0;
    case kGradOut: return (kMode & kGrad) != 0;
    default: return false;
  }
}

// Position of a walk through the operands: multi-index and element offsets.
struct Walker {
  const Operands& op;
  int64_t idx[kMaxDims];
  int64_t off[kSlots];

  Walker(const Operands& o, int64_t flat) : op(o) {
    for (int d = op.ndim - 1; d >= 0; --d) {
      idx[d] = flat % op.shape[d];
      flat /= op.shape[d];
    }
    for (int s = 0; s < kSlots; ++s) {
      off[s] = 0;
      for (int d = 0; d < op.ndim; ++d) off[s] += idx[d] * op.strides[s][d];
    }
  }
  // Elements left in the current innermost run.
  int64_t run() const { return op.shape[op.ndim - 1] - idx[op.ndim - 1]; }
  // Moves n (<= run()) elements forward.
  void advance(int64_t n) {
    const int inner = op.ndim - 1;
    idx[inner] += n;
    for (int s = 0; s < kSlots; ++s) off[s] += n * op.strides[s][inner];
    for (int d = inner; d > 0 && idx[d] == op.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
      for (int s = 0; s < kSlots; ++s) off[s] += op.strides[s][d - 1] - op.shape[d] * op.strides[s][d];
    }
  }
  // Moves n elements forward, across rows.
  void skip(int64_t n) {
    for (int64_t k = 0; k < n;) {
      const int64_t len = run() < n - k ? run() : n - k;
      advance(len);
      k += len;
    }
  }
  template <class T>
  T* at(int s) const {  // null for an absent operand
    return op.data[s] == nullptr ? nullptr : reinterpret_cast<T*>(op.data[s]) + off[s];
  }
};

// Copies n elements between the operands (from the walker's position on) and
// the chunk buffers: inputs in (kGather), outputs out (!kGather).
template <class Loss, int kMode, bool kGather, class T>
inline void transfer(Walker w, int64_t n, T (*buf)[kChunk]) {
  const int inner = w.op.ndim - 1;
  for (int64_t k = 0; k < n;) {
    const int64_t len = w.run() < n - k ? w.run() : n - k;
    for (int s = kGather ? 0 : kLossOut; s < (kGather ? kLossOut : kSlots); ++s) {
      if (!uses<Loss, kMode>(s)) continue;
      const int64_t st = w.op.strides[s][inner];
      T* base = w.template at<T>(s);
      if (kGather)
        for (int64_t e = 0; e < len; ++e) buf[s][k + e] = base[e * st];
      else
        for (int64_t e = 0; e < len; ++e) base[e * st] = buf[s][k + e];
    }
    w.advance(len);
    k += len;
  }
}

// Processes flat indices [begin, end) of one block (begin is a multiple of
// kBlock); returns its loss sum.
template <class Loss, int kMode, class T>
double run_block(const Operands& op, int64_t begin, int64_t end, const Params<T>& p) {
  using V = typename VecOf<T>::type;
  const int inner = op.ndim - 1;
  bool unit = true;  // every used operand has unit stride along the innermost dimension
  for (int s = 0; s < kSlots; ++s)
    if (uses<Loss, kMode>(s) && op.strides[s][inner] != 1) unit = false;
  Accumulators<V> acc{splat<V>(T(0)), splat<V>(T(0)), splat<V>(T(0)), splat<V>(T(0))};
  double tail = 0;
  Walker w(op, begin);
  alignas(64) T buf[kSlots][kChunk];
  for (int64_t pos = begin; pos < end;) {
    const int64_t left = end - pos;
    int64_t n = unit ? (w.run() < left ? w.run() : left) : 0;
    if (n < left) n -= n % kChunk;  // in-place runs end on a chunk boundary or the block end
    if (n > 0) {
      tail += run_contiguous<Loss, kMode, T, V>(w.at<T>(kInput), w.at<T>(kTarget), w.at<T>(kWeight),
                                                w.at<T>(kGradOutput), w.at<T>(kLossOut),
                                                w.at<T>(kGradOut), n, p, acc);
      w.advance(n);
    } else {  // one chunk through the buffers
      n = left < kChunk ? left : kChunk;
      T* ptr[kSlots];
      for (int s = 0; s < kSlots; ++s) ptr[s] = buf[s];
      transfer<Loss, kMode, true, T>(w, n, buf);
      tail += run_contiguous<Loss, kMode, T, V>(ptr[kInput], ptr[kTarget], ptr[kWeight],
                                                ptr[kGradOutput], ptr[kLossOut], ptr[kGradOut], n,
                                                p, acc);
      transfer<Loss, kMode, false, T>(w, n, buf);
      w.skip(n);
    }
    pos += n;
  }
  if constexpr ((kMode & kValueSum) == 0) return 0.0;
  constexpr int L = kLanes<T>;
  T lanes[L];
  store(lanes, (acc.a0 + acc.a1) + (acc.a2 + acc.a3));
  double sum = 0;
  for (int k = 0; k < L; ++k) sum += static_cast<double>(lanes[k]);
  return sum + tail;
}

// Runs a whole call; returns the total loss sum (0 unless kValueSum).
template <class Loss, int kMode, class T>
double run(const Operands& op, int64_t numel, const Params<T>& p) {
  if (numel <= 0) return 0.0;
  const int64_t nblocks = (numel + kBlock - 1) / kBlock;
  const int nt = nblocks > 1 ? detail::threads_for(numel) : 1;
  double* partial = nt > 1 ? static_cast<double*>(std::malloc(sizeof(double) * nblocks)) : nullptr;
  if (partial == nullptr) {
    double total = 0;
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t end = (b + 1) * kBlock < numel ? (b + 1) * kBlock : numel;
      total += run_block<Loss, kMode, T>(op, b * kBlock, end, p);
    }
    return total;
  }
  // Blocks are handed out dynamically (a descheduled thread does not hold the
  // others up); each block writes its own partial, so the order of work does
  // not touch the result.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t end = (b + 1) * kBlock < numel ? (b + 1) * kBlock : numel;
    partial[b] = run_block<Loss, kMode, T>(op, b * kBlock, end, p);
  }
  double total = 0;
  for (int64_t b = 0; b < nblocks; ++b) total += partial[b];
  std::free(partial);
  return total;
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
