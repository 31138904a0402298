// The element-wise driver: walks N-d strided operands, runs a loss functor
// with SIMD, writes per-element losses and/or gradients, and sums losses over
// fixed blocks so results depend neither on the thread count, nor on the
// layout of any operand, nor on the instruction-set level.
//
// Operands are slots: the loss's inputs (up to kMaxInputs), weight,
// grad_output, loss_out and the gradients (up to kMaxGrads). Weight and
// grad_output are ordinary operands; absent, they read as 1.
//
// Structure of one call over the flattened (C-order) index space [0, numel):
//   block  kBlock elements at fixed boundaries -> one double partial sum;
//          partials are added in block order (1 or N threads: same bits)
//   chunk  kChunk elements at fixed offsets inside the block. When a chunk
//          lies inside one row (innermost run), each slot is taken as it is:
//          unit stride in place, stride 0 as a buffer filled with its value,
//          any other stride gathered into (or, for outputs, scattered from) a
//          stack buffer; an absent output writes into a scratch buffer. A
//          chunk that crosses rows goes through the buffers whole.
//   slot   flat position j of a block adds its loss (converted to double) into
//          summation slot j mod kSumSlots. The slot count is fixed (16), not
//          the vector width: an AVX-512 float32 vector fills 16 slots, an SSE2
//          one 4 of them, so every level adds the same numbers in the same
//          order. At the block's end the slots are added as a fixed pairwise
//          tree.
//   group  kGroup = 4 consecutive steps (64 elements, aligned to the block):
//          a slot's 4 terms of a group are added in T as ((t0+t1)+(t2+t3))
//          and the group sum is added in double (a quarter of the float->
//          double conversions, which at ~1 element per cycle are what limits
//          a memory-bound loss on one core); a partial group at the array's
//          end adds each term in double.
// A slot holds at most kBlock / 64 = 128 group sums added in double, so a
// float32 sum is within ~2^-22 relative of the float64 sum of the float32
// per-element losses (two float32 roundings per group, the per-element
// rounding of each loss), whatever the length; and the result is bitwise
// identical under FASTLOSS_ISA=baseline|avx2|avx512 wherever the per-element
// math is (no FMA contraction: -ffp-contract=off).
//
// A loss functor (cpp/src/losses/*.h) gives kInputs, kGrads, kChecks,
// kWeightTotal, a Params<T> built from the call's options, and
//   eval<kValue, kGrad>(const V* in, const Params&, V& value, V* grad)
//   check(const V* in, V* bad)      (kChecks > 0: bad[k] = 1 where check k fails)
// written once for V = a vector or its scalar element type.
#pragma once

#include <algorithm>
#include <cstdint>

#include "fastloss/fastloss.h"
#include "simd/parallel.h"
#include "simd/vec.h"

namespace fastloss {
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp: 1 for small calls, else the thread setting
}

namespace FASTLOSS_ISA_NS {

// Reduction block, summation slots and the unrolled step (elements). They fix
// the summation order of every result. The chunk size does not: it only sets
// the stack buffers' size.
constexpr int64_t kBlock = 8192;
constexpr int64_t kChunk = 256;
constexpr int kSumSlots = 16;
constexpr int kGroup = 4;  // steps whose terms are pre-added in T
constexpr int64_t kUnroll = kGroup * kSumSlots;
// Blocks whose partial sums one parallel round keeps on the stack: the driver
// allocates nothing proportional to the data.
constexpr int64_t kRound = 1024;
static_assert(kBlock % kChunk == 0, "chunks tile blocks");
static_assert(kChunk % kUnroll == 0, "a chunk is whole unrolled steps");
static_assert(kSumSlots % (kVectorBytes / 4) == 0, "a float vector covers whole slots");

enum Slot : int {
  kInput0 = 0,
  kWeight = kMaxInputs,
  kGradOutput,
  kLossOut,
  kGrad0,
  kSlots = kGrad0 + kMaxGrads
};

// Bits of a driver mode.
enum : int {
  kValueNone = 1,  // write the per-element loss to loss_out
  kValueSum = 2,   // sum the loss
  kGrad = 4,       // write the gradients
};

struct Operands {
  char* data[kSlots];  // null: absent
  int64_t strides[kSlots][kMaxDims];
  int64_t shape[kMaxDims];
  int ndim;
};

// Which slots a mode reads and writes.
template <class Loss>
constexpr bool reads(int s) {
  return s < kMaxInputs ? s < Loss::kInputs : s == kWeight || s == kGradOutput;
}
template <class Loss, int kMode>
constexpr bool writes(int s) {
  if (s == kLossOut) return (kMode & kValueNone) != 0;
  if (s >= kGrad0) return (kMode & kGrad) != 0 && s - kGrad0 < Loss::kGrads;
  return false;
}
template <class Loss, int kMode>
constexpr bool uses(int s) {
  if (s == kGradOutput) return (kMode & kGrad) != 0;
  return reads<Loss>(s) || writes<Loss, kMode>(s);
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
    for (int k = 0; k < kSumSlots / kLanes<double>; ++k) store(slot + k * kLanes<double>, a[k]);
    for (int s = 0; s < kSumSlots; ++s) slot[s] += tail[s];
    for (int width = kSumSlots / 2; width > 0; width /= 2)
      for (int s = 0; s < width; ++s) slot[s] += slot[s + width];
    return slot[0];
  }
};

// Per-block state: the loss sum, the weight sum and the failed checks.
template <class Loss, class T>
struct BlockState {
  using V = typename VecOf<T>::type;
  static constexpr int kChecks = Loss::kChecks > 0 ? Loss::kChecks : 1;
  SumSlots loss, weight;
  V bad[kChecks];
  T bad_tail[kChecks];

  void clear() {
    loss.clear();
    weight.clear();
    for (int k = 0; k < kChecks; ++k) {
      bad[k] = splat<V>(T(0));
      bad_tail[k] = T(0);
    }
  }
  uint32_t errors() const {
    uint32_t bits = 0;
    for (int k = 0; k < Loss::kChecks; ++k) {
      T lanes[kLanes<T>];
      store(lanes, bad[k]);
      bool any = bad_tail[k] != T(0);
      for (int l = 0; l < kLanes<T>; ++l) any = any || lanes[l] != T(0);
      if (any) bits |= 1u << k;
    }
    return bits;
  }
};

// The loss of one vector or scalar position, with weight, grad_output and the
// gradient scale applied; stores what the mode writes, returns the weighted
// value and (through w_out) the weight.
// kOnes: weight and grad_output are absent (1): not read, not multiplied by
// (x * 1 is x: the same bits).
template <class Loss, int kMode, bool kOnes, class V, class T, class P>
inline V step(T* const* ptr, int64_t i, const P& p, V scale, V& w_out, V* bad) {
  constexpr bool kValue = (kMode & (kValueNone | kValueSum)) != 0;
  constexpr bool kWantGrad = (kMode & kGrad) != 0;
  constexpr int kGrads = Loss::kGrads > 0 ? Loss::kGrads : 1;
  V in[Loss::kInputs];
  for (int k = 0; k < Loss::kInputs; ++k) in[k] = load<V>(ptr[kInput0 + k] + i);
  if constexpr (Loss::kChecks > 0) Loss::check(in, bad);
  V value{};
  V grad[kGrads];
  Loss::template eval<kValue, kWantGrad>(in, p, value, grad);
  const V w = kOnes ? splat<V>(T(1)) : load<V>(ptr[kWeight] + i);
  w_out = w;
  if constexpr (kValue && !kOnes) value = value * w;
  if constexpr ((kMode & kValueNone) != 0) store(ptr[kLossOut] + i, value);
  if constexpr (kWantGrad) {
    const V g = kOnes ? splat<V>(T(1)) : load<V>(ptr[kGradOutput] + i);
    for (int k = 0; k < Loss::kGrads; ++k)
      store(ptr[kGrad0 + k] + i, (kOnes ? grad[k] : (grad[k] * w) * g) * scale);
  }
  return value;
}

// Runs Loss over n elements of unit-stride slot pointers; the first element
// sits at a multiple of kSumSlots from the block start, and n is a multiple
// of kSumSlots except for the array's last elements. The elements go in
// chunks of kChunk; after each, slot s's pointer moves on by advance[s]
// (kChunk for an operand read or written in place, 0 for a chunk buffer
// filled with a constant); advance may be null when n <= kChunk. One call
// per in-row segment keeps the sums in registers across its chunks.
// Not inlined: its unrolled loop is compiled once, not at each of run_block's
// three calls (build time; a call per segment costs nothing measurable).
template <class Loss, int kMode, bool kOnes, class T, class P>
__attribute__((noinline)) void run_contiguous(T* const* ptr0, const int64_t* advance, int64_t n, const P& p,
                                              T scale, BlockState<Loss, T>& state) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr int kVectorsPerStep = kSumSlots / L;
  constexpr bool kSum = (kMode & kValueSum) != 0;
  constexpr bool kWeightSum = kSum && Loss::kWeightTotal;
  const V vscale = splat<V>(scale);
  // Local copies: the accumulators stay in registers (the state could alias
  // the output pointers as far as the compiler knows).
  SumSlots loss = state.loss, weight = state.weight;
  V bad[BlockState<Loss, T>::kChecks];
  for (int k = 0; k < BlockState<Loss, T>::kChecks; ++k) bad[k] = state.bad[k];
  T* ptr[kSlots];
  for (int s = 0; s < kSlots; ++s) ptr[s] = ptr0[s];
  int64_t i = 0;
  // One kSumSlots-element step: vector k adds into slots k*L .. k*L+L-1.
  auto slots_step = [&](int64_t at) {
#pragma GCC unroll 16
    for (int k = 0; k < kVectorsPerStep; ++k) {
      V w;
      const V v = step<Loss, kMode, kOnes, V>(ptr, at + k * L, p, vscale, w, bad);
      if constexpr (kSum) loss.add(k, v);
      if constexpr (kWeightSum) weight.add(k, w);
    }
  };
  // A whole group: each slot's kGroup terms pre-added in T, then in double.
  auto group = [&](int64_t at) {
    V v[kGroup][kVectorsPerStep], w[kGroup][kVectorsPerStep];
#pragma GCC unroll 4
    for (int u = 0; u < kGroup; ++u)
#pragma GCC unroll 16
      for (int k = 0; k < kVectorsPerStep; ++k)
        v[u][k] = step<Loss, kMode, kOnes, V>(ptr, at + u * kSumSlots + k * L, p, vscale, w[u][k], bad);
#pragma GCC unroll 16
    for (int k = 0; k < kVectorsPerStep; ++k) {
      if constexpr (kSum) loss.add(k, (v[0][k] + v[1][k]) + (v[2][k] + v[3][k]));
      if constexpr (kWeightSum) weight.add(k, (w[0][k] + w[1][k]) + (w[2][k] + w[3][k]));
    }
  };
  // Chunk by chunk (one copy of the unrolled group in the code); the last
  // chunk's elements after its whole groups are taken below.
  for (;;) {
    const int64_t m = n < kChunk ? n : kChunk;
    for (i = 0; i + kUnroll <= m; i += kUnroll) group(i);
    if (n <= kChunk) break;
    n -= kChunk;
    for (int s = 0; s < kSlots; ++s) ptr[s] += advance[s];
  }
  // The array's last partial group: step by step, each term in double.
  for (; i + kSumSlots <= n; i += kSumSlots) slots_step(i);
  state.loss = loss;
  state.weight = weight;
  for (int k = 0; k < BlockState<Loss, T>::kChecks; ++k) state.bad[k] = bad[k];
  for (int s = 0; i < n; ++i, ++s) {
    T w;
    const T value = step<Loss, kMode, kOnes, T>(ptr, i, p, scale, w, state.bad_tail);
    if constexpr (kSum) state.loss.tail[s] += static_cast<double>(value);
    if constexpr (kWeightSum) state.weight.tail[s] += static_cast<double>(w);
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

// Copies n elements between the present operands (from the walker's position
// on, across rows) and the chunk buffers: read slots in (kGather), written
// slots out (!kGather).
template <class Loss, int kMode, bool kGather, class T>
inline void transfer(Walker w, int64_t n, T (*buf)[kChunk]) {
  const int inner = w.op.ndim - 1;
  for (int64_t k = 0; k < n;) {
    const int64_t len = w.run() < n - k ? w.run() : n - k;
    for (int s = 0; s < kSlots; ++s) {
      if (!(kGather ? reads<Loss>(s) : writes<Loss, kMode>(s)) || !uses<Loss, kMode>(s)) continue;
      T* base = w.template at<T>(s);
      if (base == nullptr) continue;
      const int64_t st = w.op.strides[s][inner];
      if (kGather)
        for (int64_t e = 0; e < len; ++e) buf[s][k + e] = base[e * st];
      else
        for (int64_t e = 0; e < len; ++e) base[e * st] = buf[s][k + e];
    }
    w.advance(len);
    k += len;
  }
}

template <class T>
inline void fill(T* buf, T value) {
  for (int64_t e = 0; e < kChunk; ++e) buf[e] = value;
}

// Processes flat indices [begin, end) of one block (begin is a multiple of
// kBlock) into `state`.
template <class Loss, int kMode, class T, class P>
void run_block(const Operands& op, int64_t begin, int64_t end, const P& p, T scale,
               BlockState<Loss, T>& state) {
  enum Kind { kInPlace, kFixed, kStrided };
  const int inner = op.ndim - 1;
  state.clear();
  Walker w(op, begin);
  alignas(64) T buf[kSlots][kChunk];
  T* ptr[kSlots];
  for (int s = 0; s < kSlots; ++s) ptr[s] = buf[s];
  for (int64_t pos = begin; pos < end;) {
    const int64_t left = end - pos;
    const int64_t first = left < kChunk ? left : kChunk;
    if (w.run() >= first) {
      // A segment of whole chunks inside one row: each slot as it is.
      int64_t seg = w.run() < left ? w.run() : left;
      if (seg < left) seg -= seg % kChunk;
      Kind kind[kSlots];
      T* base[kSlots];
      int64_t stride[kSlots];
      for (int s = 0; s < kSlots; ++s) {
        kind[s] = kFixed;
        base[s] = nullptr;
        stride[s] = 0;
        if (!uses<Loss, kMode>(s)) continue;
        T* at = w.at<T>(s);
        if (at == nullptr) {  // absent: weight/grad_output read as 1, outputs into scratch
          ptr[s] = buf[s];
          if (reads<Loss>(s)) fill(buf[s], T(1));
          continue;
        }
        stride[s] = op.strides[s][inner];
        base[s] = at;
        if (stride[s] == 1) {
          kind[s] = kInPlace;
          ptr[s] = at;
        } else if (stride[s] == 0 && reads<Loss>(s)) {
          ptr[s] = buf[s];
          fill(buf[s], *at);
        } else {
          kind[s] = kStrided;
          ptr[s] = buf[s];
        }
      }
      bool strided = false;
      int64_t advance[kSlots];
      for (int s = 0; s < kSlots; ++s) {
        strided = strided || kind[s] == kStrided;
        advance[s] = kind[s] == kInPlace ? kChunk : 0;
      }
      if (!strided) {  // the whole segment in one call
        // The ones variant for the reduced forward only: each variant is
        // another copy of the unrolled loop to compile (build time).
        bool done = false;
        if constexpr (kMode == kValueSum) {
          const bool no_grad_output = !uses<Loss, kMode>(kGradOutput) || w.at<T>(kGradOutput) == nullptr;
          if (w.at<T>(kWeight) == nullptr && no_grad_output) {
            run_contiguous<Loss, kMode, true, T>(ptr, advance, seg, p, scale, state);
            done = true;
          }
        }
        if (!done) run_contiguous<Loss, kMode, false, T>(ptr, advance, seg, p, scale, state);
        w.advance(seg);
        pos += seg;
        continue;
      }
      for (int64_t k = 0; k < seg; k += kChunk) {
        const int64_t m = seg - k < kChunk ? seg - k : kChunk;
        for (int s = 0; s < kSlots; ++s)
          if (kind[s] == kStrided && reads<Loss>(s))
            for (int64_t e = 0; e < m; ++e) buf[s][e] = base[s][e * stride[s]];
        run_contiguous<Loss, kMode, false, T>(ptr, nullptr, m, p, scale, state);
        for (int s = 0; s < kSlots; ++s) {
          if (kind[s] == kStrided) {
            if (writes<Loss, kMode>(s))
              for (int64_t e = 0; e < m; ++e) base[s][e * stride[s]] = buf[s][e];
            base[s] += m * stride[s];
          } else if (kind[s] == kInPlace) {
            ptr[s] += m;
          }
        }
      }
      w.advance(seg);
      pos += seg;
    } else {  // one chunk across rows, through the buffers
      const int64_t n = first;
      for (int s = 0; s < kSlots; ++s) {
        ptr[s] = buf[s];
        if (uses<Loss, kMode>(s) && reads<Loss>(s) && w.at<T>(s) == nullptr) fill(buf[s], T(1));
      }
      transfer<Loss, kMode, true, T>(w, n, buf);
      run_contiguous<Loss, kMode, false, T>(ptr, nullptr, n, p, scale, state);
      transfer<Loss, kMode, false, T>(w, n, buf);
      w.skip(n);
      pos += n;
    }
  }
}

// One parallel round: blocks [first, first + count) into the partial arrays.
template <class Loss, int kMode, class T, class P>
struct Round {
  const Operands* op;
  const P* p;
  T scale;
  int64_t numel;
  int64_t first;
  double* loss;
  double* weight;
  uint32_t* errors;

  static void blocks(void* context, int64_t begin, int64_t end) {
    const Round& r = *static_cast<const Round*>(context);
    BlockState<Loss, T> state;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = r.first + k;
      const int64_t stop = (b + 1) * kBlock < r.numel ? (b + 1) * kBlock : r.numel;
      run_block<Loss, kMode, T>(*r.op, b * kBlock, stop, *r.p, r.scale, state);
      r.loss[k] = state.loss.total();
      r.weight[k] = state.weight.total();
      r.errors[k] = state.errors();
    }
  }
};

// Runs a whole call. Blocks go to threads in rounds of at most kRound, whose
// partial sums live on the stack and are added in block order after each
// round.
template <class Loss, int kMode, class T, class P>
Totals run(const Operands& op, int64_t numel, const P& p, T scale) {
  Totals totals;
  if (numel <= 0) return totals;
  const int64_t nblocks = (numel + kBlock - 1) / kBlock;
  const int threads = nblocks > 1 ? detail::threads_for(numel) : 1;
  double loss[kRound], weight[kRound];
  uint32_t errors[kRound];
  for (int64_t first = 0; first < nblocks; first += kRound) {
    const int64_t count = nblocks - first < kRound ? nblocks - first : kRound;
    Round<Loss, kMode, T, P> round{&op, &p, scale, numel, first, loss, weight, errors};
    // Tasks of up to 8 blocks (a task's 8 partial sums span 64 bytes: far
    // fewer cache lines of them written by both threads than with 2-block
    // tasks, and fewer trips to the shared counter), at least 4 tasks per
    // thread for the balance, at least 2 blocks each.
    const int64_t grain = std::max<int64_t>(2, std::min<int64_t>(8, count / (4 * threads)));
    if (threads > 1)
      detail::parallel_for(count, threads, grain, &Round<Loss, kMode, T, P>::blocks, &round);
    else
      Round<Loss, kMode, T, P>::blocks(&round, 0, count);
    for (int64_t k = 0; k < count; ++k) {
      totals.loss += loss[k];
      totals.weight += weight[k];
      totals.errors |= errors[k];
    }
  }
  return totals;
}

// The entry of one loss for one element type: the call's operands, options
// and mode into the matching instantiation (five modes per loss and type).
template <class Loss, class T>
Totals run_loss(const ElementwiseCall& c) {
  Operands op;
  op.ndim = c.ndim;
  int64_t numel = 1;
  for (int d = 0; d < c.ndim; ++d) {
    op.shape[d] = c.shape[d];
    numel *= c.shape[d];
  }
  const StridedArray* arrays[kSlots];
  for (int k = 0; k < kMaxInputs; ++k) arrays[kInput0 + k] = &c.inputs[k];
  arrays[kWeight] = &c.weight;
  arrays[kGradOutput] = &c.grad_output;
  arrays[kLossOut] = &c.loss_out;
  for (int k = 0; k < kMaxGrads; ++k) arrays[kGrad0 + k] = &c.grads[k];
  for (int s = 0; s < kSlots; ++s) {
    op.data[s] = static_cast<char*>(arrays[s]->data);
    for (int d = 0; d < kMaxDims; ++d) op.strides[s][d] = arrays[s]->strides[d];
  }
  const typename Loss::template Params<T> p(c.options);
  const T scale = static_cast<T>(c.grad_scale);
  if constexpr (Loss::kRedirect) {  // an option value that makes it another loss (smooth_l1 with beta 0)
    if (p.redirect()) return run_loss<typename Loss::Redirect, T>(c);
  }
  const int value = c.want_value ? (c.loss_out.data != nullptr ? kValueNone : kValueSum) : 0;
  const int grad = c.want_grad && Loss::kGrads > 0 ? kGrad : 0;
  switch (value | grad) {
    case kValueSum: return run<Loss, kValueSum, T>(op, numel, p, scale);
    case kValueNone: return run<Loss, kValueNone, T>(op, numel, p, scale);
    case kGrad: return run<Loss, kGrad, T>(op, numel, p, scale);
    case kValueSum | kGrad: return run<Loss, kValueSum | kGrad, T>(op, numel, p, scale);
    case kValueNone | kGrad: return run<Loss, kValueNone | kGrad, T>(op, numel, p, scale);
    default: return Totals{};  // nothing to compute (rejected by the caller)
  }
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
