// The element-wise driver: walks N-d strided operands, runs a loss functor
// with SIMD, writes per-element losses and/or gradients, and sums losses over
// fixed blocks so results depend neither on the thread count, nor on the
// layout of any operand, nor on the instruction-set level.
//
// Structure of one call over the flattened (C-order) index space [0, numel):
//   block  kBlock elements at fixed boundaries -> one double partial sum;
//          partials are added in block order (1 or N threads: same bits)
//   chunk  kChunk elements at fixed offsets inside the block. A run of chunks
//          that every operand walks with unit stride is processed in place;
//          any other chunk (row ends, strides, broadcast, negative strides) is
//          gathered into stack buffers first and its outputs scattered after.
//   slot   flat position j of a block adds its loss (converted to double) into
//          summation slot j mod kSumSlots. The slot count is fixed (16), not
//          the vector width: an AVX-512 float32 vector fills 16 slots, an SSE2
//          one 4 of them, so every level adds the same numbers in the same
//          order. At the block's end the slots are added as a fixed pairwise
//          tree.
//   group  kGroup = 4 consecutive steps (64 elements, aligned to the block):
//          a slot's 4 terms of a group are added in T as ((t0+t1)+(t2+t3))
//          and the group sum is added in double (a quarter of the float->
//          double conversions); a partial group at the array's end adds each
//          term in double.
// A slot holds at most kBlock / 64 = 128 group sums added in double, so a
// float32 sum is within ~2^-22 relative of the float64 sum of the float32
// per-element losses (two float32 roundings per group, the per-element
// rounding of each loss), whatever the length; and the result is bitwise
// identical under FASTLOSS_ISA=baseline|avx2|avx512 wherever the per-element
// math is (no FMA contraction: -ffp-contract=off).
#pragma once

#include <cstdint>

#include "fastloss/fastloss.h"
#include "simd/parallel.h"
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
// Summation slots (see above) and the elements of one unrolled loop step.
constexpr int kSumSlots = 16;
constexpr int kGroup = 4;  // steps whose terms are pre-added in T (see run_contiguous)
constexpr int64_t kUnroll = kGroup * kSumSlots;
// Blocks whose partial sums one parallel round keeps on the stack: the driver
// allocates nothing proportional to the data.
constexpr int64_t kRound = 1024;
static_assert(kBlock % kChunk == 0, "chunks tile blocks");
static_assert(kChunk % kUnroll == 0, "a chunk is whole unrolled steps");
static_assert(kSumSlots % (kVectorBytes / 4) == 0, "a float vector covers whole slots");

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

// The kSumSlots double sums of one block: vector accumulators (slot s is lane
// s % LD of a[s / LD]) and, for the array's last < kSumSlots elements, one
// scalar per slot.
struct SumSlots {
  VecD a[kSumSlots / kLanes<double>];
  double tail[kSumSlots];

  void clear() {
    for (VecD& v : a) v = splat<VecD>(0.0);
    for (double& t : tail) t = 0.0;
  }
  // Adds vector `k` of one kSumSlots-element step (lanes k*L .. k*L+L-1).
  void add(int k, VecD v) { a[k] += v; }
  void add(int k, VecF v) {
    a[2 * k] += widen(v, 0);
    a[2 * k + 1] += widen(v, 1);
  }
  // The block's sum: slots in order, then a fixed pairwise tree.
  double total() const {
    double slot[kSumSlots];
    store(slot, a[0]);
    for (int k = 1; k < kSumSlots / kLanes<double>; ++k) store(slot + k * kLanes<double>, a[k]);
    for (int s = 0; s < kSumSlots; ++s) slot[s] += tail[s];
    for (int width = kSumSlots / 2; width > 0; width /= 2)
      for (int s = 0; s < width; ++s) slot[s] += slot[s + width];
    return slot[0];
  }
};

// Runs Loss over n contiguous elements whose first one sits at a multiple of
// kSumSlots from the block start; n is a multiple of kSumSlots except for the
// array's last elements.
template <class Loss, int kMode, class T>
inline void run_contiguous(const T* x, const T* y, const T* w, const T* g, T* lout, T* gout, int64_t n,
                           const Params<T>& p, SumSlots& sums) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr int kVectorsPerStep = kSumSlots / L;
  constexpr bool kSum = (kMode & kValueSum) != 0;
  const V vparam = splat<V>(p.param);
  const V vscale = splat<V>(p.scale);
  int64_t i = 0;
  // A local copy: the accumulators stay in registers (the caller's could
  // alias the output pointers as far as the compiler knows).
  SumSlots acc = sums;
  // One kSumSlots-element step: vector k adds into slots k*L .. k*L+L-1.
  auto slots_step = [&](int64_t at) {
#pragma GCC unroll 16
    for (int k = 0; k < kVectorsPerStep; ++k) {
      const V v = step<Loss, kMode, V>(x, y, w, g, lout, gout, at + k * L, vparam, vscale);
      if constexpr (kSum) acc.add(k, v);
    }
  };
  // A whole group of kGroup steps: each slot's kGroup terms are first added
  // in T as a fixed pairwise tree ((t0 + t1) + (t2 + t3)), then once in
  // double: a quarter of the conversions, which at ~1 element per cycle are
  // what limits a memory-bound loss on one core. The extra T roundings are
  // below 2^-23 relative, and the tree is a function of the positions alone.
  for (; i + kUnroll <= n; i += kUnroll) {
    V v[kGroup][kVectorsPerStep];
#pragma GCC unroll 4
    for (int u = 0; u < kGroup; ++u)
#pragma GCC unroll 16
      for (int k = 0; k < kVectorsPerStep; ++k)
        v[u][k] = step<Loss, kMode, V>(x, y, w, g, lout, gout, i + u * kSumSlots + k * L, vparam, vscale);
    if constexpr (kSum) {
#pragma GCC unroll 16
      for (int k = 0; k < kVectorsPerStep; ++k) acc.add(k, (v[0][k] + v[1][k]) + (v[2][k] + v[3][k]));
    }
  }
  // The array's last partial group: step by step, each term in double.
  for (; i + kSumSlots <= n; i += kSumSlots) slots_step(i);
  sums = acc;
  for (int s = 0; i < n; ++i, ++s) {
    const T value = step<Loss, kMode, T>(x, y, w, g, lout, gout, i, p.param, p.scale);
    if constexpr (kSum) sums.tail[s] += static_cast<double>(value);
  }
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
  const int inner = op.ndim - 1;
  bool unit = true;  // every used operand has unit stride along the innermost dimension
  for (int s = 0; s < kSlots; ++s)
    if (uses<Loss, kMode>(s) && op.strides[s][inner] != 1) unit = false;
  SumSlots sums;
  sums.clear();
  Walker w(op, begin);
  alignas(64) T buf[kSlots][kChunk];
  for (int64_t pos = begin; pos < end;) {
    const int64_t left = end - pos;
    int64_t n = unit ? (w.run() < left ? w.run() : left) : 0;
    if (n < left) n -= n % kChunk;  // in-place runs end on a chunk boundary or the block end
    if (n > 0) {
      run_contiguous<Loss, kMode, T>(w.at<T>(kInput), w.at<T>(kTarget), w.at<T>(kWeight),
                                     w.at<T>(kGradOutput), w.at<T>(kLossOut), w.at<T>(kGradOut), n, p,
                                     sums);
      w.advance(n);
    } else {  // one chunk through the buffers
      n = left < kChunk ? left : kChunk;
      T* ptr[kSlots];
      for (int s = 0; s < kSlots; ++s) ptr[s] = buf[s];
      transfer<Loss, kMode, true, T>(w, n, buf);
      run_contiguous<Loss, kMode, T>(ptr[kInput], ptr[kTarget], ptr[kWeight], ptr[kGradOutput],
                                     ptr[kLossOut], ptr[kGradOut], n, p, sums);
      transfer<Loss, kMode, false, T>(w, n, buf);
      w.skip(n);
    }
    pos += n;
  }
  if constexpr ((kMode & kValueSum) == 0) return 0.0;
  return sums.total();
}

// One parallel round: blocks [first, first + count) into partial[0, count).
template <class Loss, int kMode, class T>
struct Round {
  const Operands* op;
  const Params<T>* p;
  int64_t numel;
  int64_t first;
  double* partial;

  static void blocks(void* context, int64_t begin, int64_t end) {
    const Round& r = *static_cast<const Round*>(context);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = r.first + k;
      const int64_t stop = (b + 1) * kBlock < r.numel ? (b + 1) * kBlock : r.numel;
      r.partial[k] = run_block<Loss, kMode, T>(*r.op, b * kBlock, stop, *r.p);
    }
  }
};

// Runs a whole call; returns the total loss sum (0 unless kValueSum).
// Blocks go to threads in rounds of at most kRound, whose partial sums live on
// the stack and are added to the total in block order after each round.
template <class Loss, int kMode, class T>
double run(const Operands& op, int64_t numel, const Params<T>& p) {
  if (numel <= 0) return 0.0;
  const int64_t nblocks = (numel + kBlock - 1) / kBlock;
  const int threads = nblocks > 1 ? detail::threads_for(numel) : 1;
  double total = 0;
  if (threads <= 1) {
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t stop = (b + 1) * kBlock < numel ? (b + 1) * kBlock : numel;
      total += run_block<Loss, kMode, T>(op, b * kBlock, stop, p);
    }
    return total;
  }
  double partial[kRound];
  for (int64_t first = 0; first < nblocks; first += kRound) {
    const int64_t count = nblocks - first < kRound ? nblocks - first : kRound;
    Round<Loss, kMode, T> round{&op, &p, numel, first, partial};
    detail::parallel_for(count, threads, 2, &Round<Loss, kMode, T>::blocks, &round);
    for (int64_t k = 0; k < count; ++k) total += partial[k];
  }
  return total;
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
