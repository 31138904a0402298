// The element-wise driver: walks N-d strided operands, runs a loss functor over
// contiguous chunks with SIMD (scalar tail), writes per-element losses and/or
// gradients, and sums losses over fixed blocks so results do not depend on the
// thread count.
//
// Structure of one call over the flattened index space [0, numel):
//   block (kBlock elements, fixed boundaries)  -> one double partial sum
//     segment (a run along the innermost dimension, cut at block edges)
//       chunk (<= kChunk elements)  -> contiguous pointers: an operand with unit
//                                      stride is read in place, any other stride
//                                      (incl. 0 = broadcast, negative) is
//                                      gathered into a stack buffer first
// Block partials are added in block order, so 1 or N threads give the same bits.
// float32 losses are summed per chunk in float32 lanes (<= kChunk / lanes terms
// each) and then in double, which keeps float32 sums within ~1e-7 relative.
#pragma once

#include <omp.h>

#include <cstdint>
#include <cstdlib>

#include "fastloss/fastloss.h"
#include "simd/vec.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

constexpr int64_t kBlock = 8192;  // reduction block (elements); never change lightly:
                                  // it fixes the summation order of every result
constexpr int64_t kChunk = 512;   // SIMD work unit / gather buffer (elements)

}  // namespace FASTLOSS_ISA_NS
namespace detail {
int threads_for(int64_t numel);  // dispatch.cpp: 1 below kMinParallel, else the thread setting
}
namespace FASTLOSS_ISA_NS {

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

// Runs Loss over n contiguous elements. Returns their loss sum (kValueSum):
// four vector accumulators (<= kBlock / (4 lanes) terms each, in T), then the
// lanes in double, then the scalar tail in double.
template <class Loss, int kMode, class T>
inline double run_chunk(const T* x, const T* y, const T* w, const T* g, T* lout, T* gout,
                        int64_t n, const Params<T>& p) {
  using V = typename VecOf<T>::type;
  constexpr int L = kLanes<T>;
  constexpr bool kSum = (kMode & kValueSum) != 0;
  const V vparam = splat<V>(p.param);
  const V vscale = splat<V>(p.scale);
  V acc0 = splat<V>(T(0)), acc1 = acc0, acc2 = acc0, acc3 = acc0;
  int64_t i = 0;
#define FASTLOSS_STEP(k) step<Loss, kMode, V>(x, y, w, g, lout, gout, i + (k) * L, vparam, vscale)
  for (; i + 4 * L <= n; i += 4 * L) {
    const V v0 = FASTLOSS_STEP(0), v1 = FASTLOSS_STEP(1), v2 = FASTLOSS_STEP(2), v3 = FASTLOSS_STEP(3);
    if constexpr (kSum) {
      acc0 += v0;
      acc1 += v1;
      acc2 += v2;
      acc3 += v3;
    }
  }
  for (; i + L <= n; i += L) {
    const V v0 = FASTLOSS_STEP(0);
    if constexpr (kSum) acc0 += v0;
  }
#undef FASTLOSS_STEP
  double sum = 0;
  if constexpr (kSum) {
    T lanes[L];
    store(lanes, (acc0 + acc1) + (acc2 + acc3));
    for (int k = 0; k < L; ++k) sum += static_cast<double>(lanes[k]);
  }
  for (; i < n; ++i) {
    const T value = step<Loss, kMode, T>(x, y, w, g, lout, gout, i, p.param, p.scale);
    if constexpr (kSum) sum += static_cast<double>(value);
  }
  return sum;
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

// Processes flat indices [begin, end) of one block; returns its loss sum.
template <class Loss, int kMode, class T>
double run_block(const Operands& op, int64_t begin, int64_t end, const Params<T>& p) {
  const int nd = op.ndim;
  const int inner = nd - 1;
  int64_t idx[kMaxDims];
  int64_t off[kSlots];
  // Multi-index and per-operand element offsets of `begin`.
  {
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; --d) {
      idx[d] = rem % op.shape[d];
      rem /= op.shape[d];
    }
    for (int s = 0; s < kSlots; ++s) {
      off[s] = 0;
      for (int d = 0; d < nd; ++d) off[s] += idx[d] * op.strides[s][d];
    }
  }
  alignas(64) T buf[kSlots][kChunk];
  double sum = 0;
  int64_t pos = begin;
  while (pos < end) {
    const int64_t seg = (op.shape[inner] - idx[inner] < end - pos) ? op.shape[inner] - idx[inner]
                                                                   : end - pos;
    bool contiguous = true;
    for (int s = 0; s < kSlots; ++s)
      if (uses<Loss, kMode>(s) && op.strides[s][inner] != 1) contiguous = false;
    // Contiguous operands run the whole segment in place; others go by chunks.
    const int64_t chunk = contiguous ? seg : kChunk;
    for (int64_t c = 0; c < seg; c += chunk) {
      const int64_t n = (seg - c < chunk) ? seg - c : chunk;
      T* ptr[kSlots];
      for (int s = 0; s < kSlots; ++s) {
        if (!uses<Loss, kMode>(s)) {
          ptr[s] = nullptr;
          continue;
        }
        const int64_t st = op.strides[s][inner];
        T* base = reinterpret_cast<T*>(op.data[s]) + off[s] + c * st;
        if (st == 1) {
          ptr[s] = base;
        } else {
          ptr[s] = buf[s];
          if (s < kLossOut) {  // gather an input
            for (int64_t k = 0; k < n; ++k) buf[s][k] = base[k * st];
          }
        }
      }
      sum += run_chunk<Loss, kMode, T>(ptr[kInput], ptr[kTarget], ptr[kWeight], ptr[kGradOutput],
                                       ptr[kLossOut], ptr[kGradOut], n, p);
      for (int s = kLossOut; s < kSlots; ++s) {  // scatter strided outputs
        const int64_t st = op.strides[s][inner];
        if (uses<Loss, kMode>(s) && st != 1) {
          T* base = reinterpret_cast<T*>(op.data[s]) + off[s] + c * st;
          for (int64_t k = 0; k < n; ++k) base[k * st] = buf[s][k];
        }
      }
    }
    pos += seg;
    // Advance the multi-index by `seg` along the innermost dimension.
    idx[inner] += seg;
    for (int s = 0; s < kSlots; ++s) off[s] += seg * op.strides[s][inner];
    for (int d = inner; d > 0 && idx[d] == op.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
      for (int s = 0; s < kSlots; ++s)
        off[s] += op.strides[s][d - 1] - op.shape[d] * op.strides[s][d];
    }
  }
  return sum;
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
#pragma omp parallel for num_threads(nt) schedule(static)
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
