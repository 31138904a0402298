// libFuzzer target over the C ABI (cpp/include/fastloss.h): the fuzzer's
// bytes become one call of fastloss_elementwise / fastloss_reduce,
// fastloss_rowwise or fastloss_ctc_loss with arbitrary loss ids, dtypes,
// shapes, strides (zero, negative, huge), options, reductions, lengths, class
// indices, struct sizes, thread counts and ISA levels.
//
// Every array lives in its own heap block of exactly the elements its shape
// and strides reach, so under AddressSanitizer a read or write of any element
// outside that reach is a heap-buffer-overflow. What a call must do:
// - return one of the fastloss_status values, with a message when it fails;
// - refuse (never run) an array whose reach no buffer can hold (its byte
//   offsets overflow int64): such an array gets a one-element block here;
// - not crash, not trip ASan or UBSan.
// A call whose arrays reach further than kMaxElements (but could exist) is
// not made: this harness cannot allocate it, and the ABI cannot tell.
//
// Build: fuzz/run.sh (clang + libFuzzer from pip-installed wheels), or any
// clang: cmake -DFASTLOSS_FUZZ=ON -DFASTLOSS_SANITIZE=ON -DCMAKE_CXX_COMPILER=clang++.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "fastloss.h"

namespace {

constexpr int64_t kMaxElements = 1 << 12;  // per array
constexpr int64_t kMaxBytes = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxWork = 1 << 18;      // logical elements per call

// Whether a call over these extents is valid but too long to run here: no
// negative extent, and the product (the elements or rows the kernel visits;
// zero strides make a tiny buffer look huge) between kMaxWork and INT64_MAX.
// Such calls are not made (a 2^40-element broadcast is correct and slow, a
// libFuzzer timeout). Products beyond int64 are still made: the library must
// refuse them, quickly. `empty_is_free`: an extent 0 means no work at all
// (element-wise); else it counts as 1 (a row-wise call still visits its
// 2^40 rows of no classes, CTC its samples with no time steps).
bool too_much_work(const int64_t* extents, int n, bool empty_is_free) {
  __int128 product = 1;
  for (int d = 0; d < n; ++d) {
    if (extents[d] < 0 || (extents[d] == 0 && empty_is_free)) return false;
    product *= extents[d] == 0 ? 1 : extents[d];
    if (product > std::numeric_limits<int64_t>::max()) return false;
  }
  return n > 0 && product > kMaxWork;
}

// a + b as the two's complement hardware does it (the fuzzer picks extremes).
int64_t wrapping_add(int64_t a, int64_t b) { return int64_t(uint64_t(a) + uint64_t(b)); }

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fastloss C ABI fuzz: %s (last error: %s)\n", what, fastloss_last_error());
  std::abort();
}

// Reads the fuzzer's bytes; past the end every read is 0.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t bits64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = v << 8 | byte();
    return v;
  }
  // Mostly small sizes, sometimes a value at an edge.
  int64_t extent() {
    uint8_t b = byte();
    if (b < 240) return b % 6;
    static const int64_t edge[] = {-1, 7, 64, 1000, int64_t(1) << 31, int64_t(1) << 40, int64_t(1) << 62,
                                   std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                   -(int64_t(1) << 62), 33, 8192, 17, 255, 256, 0};
    return edge[b - 240];
  }
  int64_t stride() {
    uint8_t b = byte();
    if (b < 236) return int64_t(b % 11) - 5;
    static const int64_t edge[] = {int64_t(1) << 61, -(int64_t(1) << 61), int64_t(1) << 62, -(int64_t(1) << 62),
                                   std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                   int64_t(1) << 32, -(int64_t(1) << 32), int64_t(1) << 40, 4611686018427387903,
                                   1000, -1000, 100000, 3, 16, 64, 1024, -2, 6, 9};
    return edge[b - 236];
  }
  double option() {
    static const double table[] = {0.0,     1.0,   -1.0, 0.5,    2.0,       0.1,    -100.0,   3.0,
                                   1e-12,   1e300, -1e300, NAN,  INFINITY, -INFINITY, 1e-320, 0.9999999,
                                   100.0,   -0.5,  1e-6,   7.0,  -3.0,     64.0,   1.5,      4294967296.0};
    uint8_t b = byte();
    if (b < 240) return table[b % (sizeof table / sizeof *table)];
    double d;
    uint64_t raw = bits64();
    std::memcpy(&d, &raw, sizeof d);
    return d;
  }
  // A class index or label: mostly near [0, classes), sometimes any integer.
  int64_t index(int64_t classes) {
    uint8_t b = byte();
    if (b < 224) return wrapping_add(int64_t(b % 8) - 2, b & 0x80 ? wrapping_add(classes, -3) : 0);
    static const int64_t edge[] = {-100,
                                   std::numeric_limits<int64_t>::min(),
                                   std::numeric_limits<int64_t>::max(),
                                   255,
                                   256,
                                   int64_t(1) << 31,
                                   -(int64_t(1) << 31),
                                   int64_t(1) << 32,
                                   65535,
                                   65536,
                                   -129,
                                   128,
                                   classes,
                                   wrapping_add(classes, -1),
                                   -1,
                                   -2,
                                   32767,
                                   32768,
                                   -32769,
                                   4294967295,
                                   127,
                                   -128,
                                   wrapping_add(classes, 1),
                                   0,
                                   1,
                                   2,
                                   3,
                                   -3,
                                   4,
                                   5,
                                   6,
                                   7};
    return edge[b - 224];
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// The element offsets an array of `shape` and `strides` reaches.
struct Reach {
  bool empty = false;        // some extent <= 0: no element is reached
  bool unaddressable = false;  // the byte offsets overflow int64: no buffer holds it
  int64_t lo = 0, hi = 0;    // lowest and highest element offset
  int64_t count() const { return empty ? 1 : hi - lo + 1; }
};

Reach reach(int ndim, const int64_t* shape, const int64_t* strides, int64_t itemsize) {
  Reach r;
  __int128 lo = 0, hi = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] <= 0) r.empty = true;
  }
  if (r.empty) return r;
  const __int128 limit = __int128(kMaxBytes) / itemsize;  // in elements
  for (int d = 0; d < ndim; ++d) {
    __int128 far = __int128(shape[d] - 1) * strides[d];  // |far| < 2^126
    (far < 0 ? lo : hi) += far;
    if (hi - lo >= limit) {  // checked after each term, so the sums never overflow
      r.unaddressable = true;
      return r;
    }
  }
  r.lo = int64_t(lo);
  r.hi = int64_t(hi);
  return r;
}

// The heap blocks of one call: each exactly as large as its array's reach.
class Arena {
 public:
  ~Arena() {
    for (void* p : blocks_) std::free(p);
  }
  // A block of `count` elements of `itemsize` bytes filled from `in`; NULL if too large.
  char* block(int64_t count, int64_t itemsize, Input& in, int kind) {
    if (count > kMaxElements) return nullptr;
    char* p = static_cast<char*>(std::malloc(size_t(count * itemsize) + (count == 0)));
    blocks_.push_back(p);
    fill(p, count, itemsize, in, kind);
    return p;
  }
  // Memory for an array: a pointer to its element (0, ..., 0), or NULL when
  // the call cannot be made (too large); `refuse` is set when no buffer
  // could hold the array (the library must refuse the call).
  void* array(int ndim, const int64_t* shape, const int64_t* strides, int64_t itemsize, Input& in, int kind,
              bool& too_large, bool& refuse) {
    Reach r = reach(ndim, shape, strides, itemsize);
    if (r.unaddressable) {
      refuse = true;
      return block(1, itemsize, in, kind);
    }
    if (r.count() > kMaxElements) {
      too_large = true;
      return nullptr;
    }
    char* p = block(r.count(), itemsize, in, kind);
    return p - r.lo * itemsize;  // r.lo <= 0: the origin lies inside the block
  }

 private:
  // kind 0: float32, 1: float64, else an integer element of `itemsize` bytes.
  static void fill(char* p, int64_t count, int64_t itemsize, Input& in, int kind) {
    uint8_t style = in.byte();
    uint32_t state = 0x9e3779b9u * (uint32_t(in.byte()) + 1);
    for (int64_t i = 0; i < count; ++i) {
      state = state * 1664525u + 1013904223u;
      double u = (state >> 8) * (1.0 / 16777216.0);
      double v;
      switch (style % 6) {
        case 0: v = 0.05 + 0.9 * u; break;
        case 1: v = 6.0 * u - 3.0; break;
        case 2: v = (state >> 29) == 0 ? NAN : (state >> 29) == 1 ? INFINITY : (state >> 29) == 2 ? -1e30 : u; break;
        case 3: v = style >> 3; break;
        case 4: v = u < 0.5 ? 0.0 : 1.0; break;
        default: v = u < 0.5 ? -1.0 : 1.0; break;
      }
      if (kind == 0) {
        float f = float(v);
        std::memcpy(p + i * 4, &f, 4);
      } else if (kind == 1) {
        std::memcpy(p + i * 8, &v, 8);
      } else {
        int64_t k = int64_t(state >> 29) - 2;  // indices fill() makes: -2 .. 5
        std::memcpy(p + i * itemsize, &k, size_t(itemsize));  // little-endian: the low bytes
      }
    }
  }
  std::vector<void*> blocks_;
};

int64_t float_size(int dtype) { return dtype == FASTLOSS_FLOAT64 ? 8 : 4; }
int fill_kind(int dtype) { return dtype == FASTLOSS_FLOAT64 ? 1 : 0; }

int pick_dtype(Input& in) {
  uint8_t b = in.byte();
  return b < 250 ? b % 2 : int(b) - 252;  // sometimes -2 .. 3: not a dtype
}

void check_status(fastloss_status status) {
  if (status < FASTLOSS_OK || status > FASTLOSS_ERROR_INDEX) fail("not a fastloss_status");
  if (status != FASTLOSS_OK && (fastloss_last_error() == nullptr || !*fastloss_last_error()))
    fail("a failed call left no message");
}

// ---- element-wise: fastloss_elementwise and fastloss_reduce
void elementwise(Input& in) {
  int count = fastloss_loss_count();
  uint8_t pick = in.byte();
  int loss = pick < 250 ? pick % count : int(pick) - 253 + (pick & 1 ? count : 0);
  int inputs = 4, grads = 3;
  const char* name = nullptr;
  const char* option_names = nullptr;
  if (fastloss_loss_info(loss, &name, &inputs, &grads, &option_names) != FASTLOSS_OK) {
    inputs = 1 + in.byte() % 4;
    grads = 3;
  }
  int dtype = pick_dtype(in);
  int64_t item = float_size(dtype);
  fastloss_elementwise_call call;
  fastloss_call_init(&call);
  uint8_t nd = in.byte();
  call.ndim = nd < 250 ? nd % 5 : int(nd) - 250 + (nd & 1 ? 7 : -3);  // sometimes -3 .. 12
  int dims = call.ndim < 0 ? 0 : call.ndim > FASTLOSS_MAX_DIMS ? FASTLOSS_MAX_DIMS : call.ndim;
  for (int d = 0; d < dims; ++d) call.shape[d] = in.extent();
  if (too_much_work(call.shape, dims, true)) return;
  Arena arena;
  bool too_large = false, refuse = false;
  auto set = [&](fastloss_array& a, bool present) {
    if (!present) return;
    for (int d = 0; d < dims; ++d) a.strides[d] = in.stride();
    a.data = arena.array(dims, call.shape, a.strides, item, in, fill_kind(dtype), too_large, refuse);
  };
  uint8_t layout = in.byte();
  for (int k = 0; k < FASTLOSS_MAX_INPUTS; ++k) set(call.inputs[k], k < inputs ? (layout & 0x80) == 0 || k : (layout & 1));
  set(call.weight, layout & 2);
  set(call.grad_output, layout & 4);
  call.want_value = in.byte() % 4 != 0;
  call.want_grad = in.byte() % 2;
  set(call.loss_out, layout & 8);
  for (int k = 0; k < FASTLOSS_MAX_GRADS; ++k) set(call.grads[k], call.want_grad && (k < grads) != ((layout & 0x40) != 0));
  call.grad_scale = in.byte() % 8 ? 1.0 : in.option();
  uint8_t options = in.byte();
  for (int k = 0; k < FASTLOSS_MAX_OPTIONS; ++k) {
    if (options >> k & 1) call.options[k] = in.option();
  }
  if (too_large) return;
  fastloss_status status;
  if (in.byte() % 4 == 0) {
    double value = 0;
    uint8_t r = in.byte();
    status = fastloss_reduce(loss, dtype, r < 250 ? r % 3 : int(r) - 253, &call, in.byte() % 16 ? &value : nullptr);
  } else {
    fastloss_totals totals;
    status = fastloss_elementwise(loss, dtype, &call, in.byte() % 16 ? &totals : nullptr);
  }
  check_status(status);
  if (refuse && status == FASTLOSS_OK) fail("fastloss_elementwise ran an array whose reach overflows int64 bytes");
}

// ---- row-wise: fastloss_rowwise
const fastloss_element_type kIndexTypes[] = {FASTLOSS_ELEMENT_INT8,   FASTLOSS_ELEMENT_INT16,  FASTLOSS_ELEMENT_INT32,
                                             FASTLOSS_ELEMENT_INT64,  FASTLOSS_ELEMENT_UINT8,  FASTLOSS_ELEMENT_UINT16,
                                             FASTLOSS_ELEMENT_UINT32, FASTLOSS_ELEMENT_UINT64};
const int64_t kIndexSizes[] = {1, 2, 4, 8, 1, 2, 4, 8};

void rowwise(Input& in) {
  int count = fastloss_rowwise_loss_count();
  uint8_t pick = in.byte();
  int loss = pick < 250 ? pick % count : int(pick) - 253 + (pick & 1 ? count : 0);
  int inputs = 3, grads = 3, target_kind = FASTLOSS_TARGET_INDEX;
  const char* name = nullptr;
  const char* option_names = nullptr;
  fastloss_rowwise_call call;
  std::memset(&call, 0, sizeof call);
  if (fastloss_rowwise_loss_info(loss, &name, &inputs, &grads, &target_kind, &option_names) == FASTLOSS_OK) {
    if (fastloss_rowwise_call_init(loss, &call) != FASTLOSS_OK) fail("fastloss_rowwise_call_init refused a listed id");
  } else {
    call.struct_size = sizeof call;
    target_kind = in.byte() % 5;
  }
  int dtype = pick_dtype(in);
  int64_t item = float_size(dtype);
  call.outer = in.extent();
  call.classes = in.extent();
  call.inner = in.byte() % 3 ? 1 : in.extent();
  const int64_t cube[3] = {call.outer, call.classes, call.inner};
  if (too_much_work(cube, 3, false)) return;
  const int64_t rows[3] = {call.outer, 1, call.inner};
  const int64_t classes_only[3] = {1, call.classes, 1};
  Arena arena;
  bool too_large = false, refuse = false;
  auto set = [&](fastloss_row_array& a, const int64_t* shape, int64_t itemsize, int kind) {
    for (int d = 0; d < 3; ++d) a.strides[d] = in.stride();
    a.data = arena.array(3, shape, a.strides, itemsize, in, kind, too_large, refuse);
  };
  uint8_t layout = in.byte();
  for (int k = 0; k < FASTLOSS_MAX_ROW_INPUTS; ++k) {
    if (k < inputs ? (layout & 0x80) == 0 || k : (layout & 1)) set(call.inputs[k], cube, item, fill_kind(dtype));
  }
  // The target: class indices of any integer width (one per row, or a row of
  // them), or floats; its values come from the fuzzer.
  uint8_t t = in.byte();
  bool index = target_kind == FASTLOSS_TARGET_INDEX || target_kind == FASTLOSS_TARGET_INDEX_ROWS ||
               (target_kind == FASTLOSS_TARGET_INDEX_OR_FLOAT && (t & 1));
  call.target_type = index ? kIndexTypes[(t >> 1) % 8] : FASTLOSS_ELEMENT_FLOAT;
  if (t >= 248) call.target_type = int(t) - 250;  // sometimes -2 .. 5 regardless of the kind
  if (target_kind != FASTLOSS_TARGET_NONE || (layout & 2)) {
    bool per_row = target_kind == FASTLOSS_TARGET_INDEX ||
                   (target_kind == FASTLOSS_TARGET_INDEX_OR_FLOAT && index) ||
                   (target_kind == FASTLOSS_TARGET_FLOAT && name && !std::strcmp(name, "cosine_embedding_loss"));
    const int64_t* shape = per_row ? rows : cube;
    bool integer = call.target_type >= FASTLOSS_ELEMENT_INT8 && call.target_type <= FASTLOSS_ELEMENT_UINT64;
    int64_t tsize = integer ? kIndexSizes[call.target_type - 1] : item;
    set(call.target, shape, tsize, integer ? 2 : fill_kind(dtype));
    if (integer && call.target.data && !refuse) {
      // Overwrite a few elements with fuzzer-chosen indices.
      Reach r = reach(3, shape, call.target.strides, tsize);
      int n = in.byte() % 8;
      for (int i = 0; i < n && !r.empty; ++i) {
        int64_t at = r.lo + int64_t(in.byte()) % r.count();
        int64_t v = in.index(call.classes);
        std::memcpy(static_cast<char*>(call.target.data) + at * tsize, &v, size_t(tsize));
      }
    }
  }
  if (layout & 4) set(call.weight, classes_only, item, fill_kind(dtype));
  if (layout & 8) set(call.grad_output, rows, item, fill_kind(dtype));
  uint8_t r = in.byte();
  call.reduction = r < 250 ? r % 3 : int(r) - 252;
  call.want_value = in.byte() % 4 != 0;
  call.want_grad = in.byte() % 2;
  if (call.reduction == FASTLOSS_REDUCTION_NONE ? (layout & 0x10) == 0 : (layout & 0x10) != 0)
    set(call.loss_out, rows, item, fill_kind(dtype));
  for (int k = 0; k < FASTLOSS_MAX_ROW_INPUTS; ++k) {
    if (call.want_grad && (k < grads) != ((layout & 0x40) != 0)) set(call.grads[k], cube, item, fill_kind(dtype));
  }
  call.grad_scale = in.byte() % 8 ? 1.0 : in.option();
  uint8_t options = in.byte();
  for (int k = 0; k < FASTLOSS_MAX_ROW_OPTIONS; ++k) {
    if (options >> k & 1) call.options[k] = in.option();
  }
  // struct_size: the caller's struct may be this header's or (a future
  // caller's) larger one; a smaller one is refused. The block is exactly
  // struct_size bytes, so a read past the caller's struct is an overflow.
  uint8_t s = in.byte();
  int64_t struct_size = s < 240 ? int64_t(sizeof call) : s < 248 ? int64_t(sizeof call) + 8 * (s - 239)
                                                                 : int64_t(sizeof call) - 8 * (s - 247);
  if (too_large) return;
  call.struct_size = struct_size;
  size_t bytes = size_t(std::max<int64_t>(struct_size, sizeof call));
  char* block = static_cast<char*>(std::malloc(bytes));
  std::memset(block, 0, bytes);
  std::memcpy(block, &call, sizeof call);
  double value = 0;
  fastloss_status status =
      fastloss_rowwise(loss, dtype, reinterpret_cast<const fastloss_rowwise_call*>(block), in.byte() % 16 ? &value : nullptr);
  std::free(block);
  check_status(status);
  if (refuse && status == FASTLOSS_OK) fail("fastloss_rowwise ran an array whose reach overflows int64 bytes");
}

// ---- CTC: fastloss_ctc_workspace_size and fastloss_ctc_loss
void ctc(Input& in) {
  fastloss_ctc_call call;
  fastloss_ctc_call_init(&call);
  int dtype = pick_dtype(in);
  int64_t item = float_size(dtype);
  call.max_time = in.extent();
  call.batch = in.extent();
  call.classes = in.extent();
  const int64_t tnc[3] = {call.max_time, call.batch, call.classes};
  if (too_much_work(tnc, 3, false)) return;
  Arena arena;
  bool too_large = false, refuse = false;
  for (int d = 0; d < 3; ++d) call.log_probs_strides[d] = in.stride();
  call.log_probs = arena.array(3, tnc, call.log_probs_strides, item, in, fill_kind(dtype), too_large, refuse);
  // Labels: target_count int64 values (exactly that many readable).
  int64_t labels = in.byte() % 24;
  int64_t* targets = reinterpret_cast<int64_t*>(arena.block(labels, 8, in, 2));
  for (int64_t i = 0; i < labels; ++i) targets[i] = in.index(call.classes);
  call.targets = targets;
  call.target_count = labels;
  uint8_t p = in.byte();
  call.padded_length = p % 2 ? -1 : p < 240 ? (p >> 1) % 6 : in.extent();
  // The lengths: batch values each (a batch too large to allocate: no call).
  if (call.batch > 64) too_large = true;
  int64_t batch = call.batch >= 0 && call.batch <= 64 ? call.batch : 0;
  auto lengths = [&](int64_t limit) {
    int64_t* v = reinterpret_cast<int64_t*>(arena.block(batch, 8, in, 2));
    for (int64_t n = 0; n < batch; ++n) {
      uint8_t b = in.byte();
      v[n] = b < 240 ? (limit > 0 && limit < 256 ? int64_t(b) % (limit + 1) : b % 8) : in.extent();
    }
    return v;
  };
  call.input_lengths = lengths(call.max_time);
  call.target_lengths = lengths(call.padded_length >= 0 ? call.padded_length : 5);
  uint8_t b = in.byte();
  call.blank = b < 240 ? 0 : in.index(call.classes);
  uint8_t r = in.byte();
  call.reduction = r < 250 ? r % 3 : int(r) - 252;
  call.zero_infinity = in.byte() % 2;
  call.exact = in.byte() % 2;
  uint8_t layout = in.byte();
  const int64_t n_only[1] = {call.batch};
  if (layout & 1) {
    call.losses_stride = in.stride();
    call.losses = arena.array(1, n_only, &call.losses_stride, item, in, fill_kind(dtype), too_large, refuse);
  }
  bool want_grad = layout & 2;
  if (want_grad) {
    for (int d = 0; d < 3; ++d) call.grad_strides[d] = in.stride();
    call.grad = arena.array(3, tnc, call.grad_strides, item, in, fill_kind(dtype), too_large, refuse);
  }
  if (layout & 4) {
    call.grad_output_stride = in.stride();
    if (call.reduction == FASTLOSS_REDUCTION_NONE) {
      call.grad_output = static_cast<const double*>(
          arena.array(1, n_only, &call.grad_output_stride, 8, in, 1, too_large, refuse));
    } else {
      call.grad_output = reinterpret_cast<const double*>(arena.block(1, 8, in, 1));
    }
  }
  uint8_t s = in.byte();
  int64_t struct_size = s < 240 ? int64_t(sizeof call) : s < 248 ? int64_t(sizeof call) + 8 * (s - 239)
                                                                 : int64_t(sizeof call) - 8 * (s - 247);
  // The workspace: what fastloss_ctc_workspace_size says for the longest
  // target, or less (refused), in a block of exactly that many bytes.
  int64_t longest = call.padded_length >= 0 ? call.padded_length : 0;
  for (int64_t n = 0; n < batch && call.padded_length < 0; ++n)
    longest = std::max(longest, call.target_lengths[n] <= labels ? call.target_lengths[n] : 0);
  int threads = in.byte() % 4;
  size_t bytes = 0;
  fastloss_status ws = fastloss_ctc_workspace_size(call.max_time, call.batch, longest, want_grad, threads, &bytes);
  check_status(ws);
  uint8_t w = in.byte();
  if (ws == FASTLOSS_OK && w >= 224) bytes = w >= 240 ? bytes / 2 : bytes - (bytes > 0);
  if (ws != FASTLOSS_OK || bytes > (size_t(1) << 26) || too_large) return;
  void* workspace = std::malloc(bytes + (bytes == 0));
  call.struct_size = struct_size;
  size_t call_bytes = size_t(std::max<int64_t>(struct_size, sizeof call));
  char* block = static_cast<char*>(std::malloc(call_bytes));
  std::memset(block, 0, call_bytes);
  std::memcpy(block, &call, sizeof call);
  fastloss_set_num_threads(threads + 1);
  double value = 0;
  fastloss_status status = fastloss_ctc_loss(dtype, reinterpret_cast<const fastloss_ctc_call*>(block), workspace,
                                             bytes, in.byte() % 16 ? &value : nullptr);
  std::free(block);
  std::free(workspace);
  check_status(status);
  if (refuse && status == FASTLOSS_OK) fail("fastloss_ctc_loss ran an array whose reach overflows int64 bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (fastloss_abi_version() != FASTLOSS_ABI_VERSION) fail("header and library ABI versions differ");
  Input in(data, size);
  uint8_t head = in.byte();
  // Threads (1 or 2: blocks of 8192 elements, so small calls use one) and
  // the ISA level (an unavailable one is refused and changes nothing).
  fastloss_set_num_threads(1 + (head >> 2) % 2);
  static const char* const levels[] = {"baseline", "avx2", "avx512", "baseline"};
  if (fastloss_select_isa(levels[(head >> 3) % 4]) != FASTLOSS_OK) fastloss_select_isa("baseline");
  switch (head % 3) {
    case 0: elementwise(in); break;
    case 1: rowwise(in); break;
    default: ctc(in); break;
  }
  return 0;
}
