// The strided driver of the float16 <-> float32 kernels (simd/convert.h).
//
// The dimensions are put in the order of dst's strides (the innermost has the
// smallest), size-1 dimensions dropped and dimensions that both arrays step
// over as one run merged, so a contiguous or transposed-alike pair becomes
// one run. The flattened index space is cut into tasks of kTask elements for
// the pool; within a task each innermost run goes to the level's contiguous
// kernel directly when both strides are 1, else through stack buffers of
// kStage elements (gather, convert, scatter).
#include "simd/convert.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "simd/kernel_table.h"
#include "simd/parallel.h"

namespace fastloss {
namespace detail {

int threads_for(int64_t numel);  // dispatch.cpp: 1 for small calls, else the thread setting

namespace {

constexpr int64_t kTask = 1 << 14;  // elements of one pool task (32-64 KiB in, 64 KiB out)
constexpr int64_t kStage = 512;     // elements of the stack buffers for strided runs

struct Layout {
  int ndim = 0;  // >= 1 once built; innermost last
  int64_t shape[kMaxConvertDims];
  int64_t src[kMaxConvertDims];
  int64_t dst[kMaxConvertDims];
};

inline int64_t magnitude(int64_t v) { return v < 0 ? -v : v; }

Layout normalise(int ndim, const int64_t* shape, const int64_t* src, const int64_t* dst) {
  int order[kMaxConvertDims];
  int n = 0;
  for (int d = 0; d < ndim; ++d)
    if (shape[d] != 1) order[n++] = d;
  std::stable_sort(order, order + n, [&](int a, int b) {
    if (magnitude(dst[a]) != magnitude(dst[b])) return magnitude(dst[a]) > magnitude(dst[b]);
    return magnitude(src[a]) > magnitude(src[b]);
  });
  Layout l;
  for (int k = 0; k < n; ++k) {
    const int d = order[k];
    const int last = l.ndim - 1;
    if (last >= 0 && l.src[last] == src[d] * shape[d] && l.dst[last] == dst[d] * shape[d]) {
      l.shape[last] *= shape[d];
      l.src[last] = src[d];
      l.dst[last] = dst[d];
    } else {
      l.shape[l.ndim] = shape[d];
      l.src[l.ndim] = src[d];
      l.dst[l.ndim] = dst[d];
      ++l.ndim;
    }
  }
  if (l.ndim == 0) {  // a scalar (or all sizes 1)
    l.ndim = 1;
    l.shape[0] = 1;
    l.src[0] = l.dst[0] = 0;
  }
  return l;
}

template <class Src, class Dst>
struct Job {
  void (*kernel)(const Src*, Dst*, int64_t);
  const Src* src;
  Dst* dst;
  Layout layout;
  int64_t numel;

  // One innermost run of n elements.
  void run(const Src* s, int64_t ss, Dst* d, int64_t ds, int64_t n) const {
    if (ss == 1 && ds == 1) {
      kernel(s, d, n);
      return;
    }
    Src in[kStage];
    Dst out[kStage];
    for (int64_t i = 0; i < n; i += kStage) {
      const int64_t m = std::min(kStage, n - i);
      const Src* from = s + i * ss;
      if (ss != 1) {
        for (int64_t j = 0; j < m; ++j) in[j] = from[j * ss];
        from = in;
      }
      Dst* to = ds == 1 ? d + i : out;
      kernel(from, to, m);
      if (ds != 1)
        for (int64_t j = 0; j < m; ++j) d[(i + j) * ds] = out[j];
    }
  }

  // Flat elements [first, last) in C order of the layout.
  void range(int64_t first, int64_t last) const {
    const Layout& l = layout;
    const int inner = l.ndim - 1;
    int64_t index[kMaxConvertDims];
    int64_t row = first / l.shape[inner], col = first % l.shape[inner];
    const Src* s = src;
    Dst* d = dst;
    for (int k = inner - 1; k >= 0; --k) {
      index[k] = row % l.shape[k];
      row /= l.shape[k];
      s += index[k] * l.src[k];
      d += index[k] * l.dst[k];
    }
    for (int64_t pos = first;;) {
      const int64_t n = std::min(l.shape[inner] - col, last - pos);
      run(s + col * l.src[inner], l.src[inner], d + col * l.dst[inner], l.dst[inner], n);
      pos += n;
      if (pos >= last) return;
      col = 0;
      for (int k = inner - 1; k >= 0; --k) {  // next row
        if (++index[k] < l.shape[k]) {
          s += l.src[k];
          d += l.dst[k];
          break;
        }
        index[k] = 0;
        s -= (l.shape[k] - 1) * l.src[k];
        d -= (l.shape[k] - 1) * l.dst[k];
      }
    }
  }

  static void tasks(void* context, int64_t begin, int64_t end) {
    const Job& job = *static_cast<const Job*>(context);
    job.range(begin * kTask, std::min(job.numel, end * kTask));
  }
};

int64_t checked_numel(const char* function, int ndim, const int64_t* shape) {
  if (ndim < 0 || ndim > kMaxConvertDims)
    throw std::invalid_argument(std::string(function) + ": ndim " + std::to_string(ndim) + " is outside [0, " +
                                std::to_string(kMaxConvertDims) + "]");
  int64_t numel = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0) throw std::invalid_argument(std::string(function) + ": negative extent");
    if (__builtin_mul_overflow(numel, shape[d], &numel))
      throw std::invalid_argument(std::string(function) + ": the element count overflows int64");
  }
  return numel;
}

template <class Src, class Dst>
void convert(const char* function, void (*kernel)(const Src*, Dst*, int64_t), int ndim, const int64_t* shape,
             const Src* src, const int64_t* src_strides, Dst* dst, const int64_t* dst_strides) {
  const int64_t numel = checked_numel(function, ndim, shape);
  if (numel == 0) return;
  Job<Src, Dst> job{kernel, src, dst, normalise(ndim, shape, src_strides, dst_strides), numel};
  const int64_t ntasks = (numel + kTask - 1) / kTask;
  const int threads = ntasks > 1 ? threads_for(numel) : 1;
  if (threads > 1)
    parallel_for(ntasks, threads, 1, &Job<Src, Dst>::tasks, &job);
  else
    job.range(0, numel);
}

}  // namespace

void half_to_float(int ndim, const int64_t* shape, const uint16_t* src, const int64_t* src_strides, float* dst,
                   const int64_t* dst_strides) {
  convert("half_to_float", current_table().half_to_float, ndim, shape, src, src_strides, dst, dst_strides);
}

void float_to_half(int ndim, const int64_t* shape, const float* src, const int64_t* src_strides, uint16_t* dst,
                   const int64_t* dst_strides) {
  convert("float_to_half", current_table().float_to_half, ndim, shape, src, src_strides, dst, dst_strides);
}

}  // namespace detail
}  // namespace fastloss
