// The C++ API used without Python, for every loss of the table
// (fastloss/losses.h) on every available ISA level: a loss's results do not
// depend on the memory layout of its operands (strided, negative, broadcast,
// transposed), on the thread count or on the ISA level (bitwise), its
// per-element values add up to its sum, and arguments it can check are
// rejected with std::invalid_argument before anything is written. Values
// against torch's formulas are the Python suite's job (tests/, against
// fastloss.reference and torch): this test has no formulas of its own.
// Built with -DFASTLOSS_BUILD_TESTS=ON (and -DFASTLOSS_SANITIZE=ON in CI, so
// ASan/UBSan watch every access). Exit code 0 = pass.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fastloss.h"  // the C ABI
#include "fastloss/ctc.h"
#include "fastloss/fastloss.h"
#include "fastloss/linear_cross_entropy.h"
#include "fastloss/options.h"
#include "fastloss/typed.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  }
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  // (empty vectors may have null data, which memcmp must not be given)
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The logical value of operand k at (r, c): in (0.05, 0.95), which every
// loss of the table accepts (probabilities, variances, targets); operands
// broadcast along rows depend on c only.
double value_of(int k, int64_t r, int64_t c, bool row_broadcast) {
  const uint64_t h = (row_broadcast ? 0 : static_cast<uint64_t>(r) * 2654435761u) + static_cast<uint64_t>(c) * 40503u +
                     static_cast<uint64_t>(k) * 97u;
  return 0.05 + 0.9 * static_cast<double>((h * 2862933555777941757ull) >> 11) / 9007199254740992.0;
}

// One operand stored with row stride rs and column stride cs (elements; 0 or
// negative allowed) in its own buffer.
template <class T>
struct Stored {
  std::vector<T> buf;
  T* origin = nullptr;
  int64_t rs = 0, cs = 0;

  Stored(int64_t rows, int64_t cols, int64_t rs_, int64_t cs_) : rs(rs_), cs(cs_) {
    const int64_t span = (rows - 1) * std::llabs(rs) + (cols - 1) * std::llabs(cs) + 1;
    buf.assign(static_cast<size_t>(span > 0 ? span : 1), T(0));
    origin = buf.data() + (rs < 0 ? (rows - 1) * -rs : 0) + (cs < 0 ? (cols - 1) * -cs : 0);
  }
  T& at(int64_t r, int64_t c) { return origin[r * rs + c * cs]; }
  fastloss::StridedArray view() {
    fastloss::StridedArray a;
    a.data = origin;
    a.strides[0] = rs;
    a.strides[1] = cs;
    return a;
  }
};

struct Layout {
  const char* name;
  bool transposed;      // column-major storage
  int64_t step;         // element step (2: every other element)
  bool negative;        // rows and columns reversed in memory
  bool broadcast_last;  // the last input and weight broadcast along rows (stride 0)
};

// Everything one call produces.
template <class T>
struct Results {
  double total = 0, weight_total = 0;
  std::vector<T> none;
  std::vector<std::vector<T>> grads;
};

template <class T>
Results<T> run(fastloss::Loss loss, int64_t rows, int64_t cols, const Layout& layout, bool weighted) {
  const fastloss::LossInfo& info = fastloss::loss_info(loss);
  const auto dtype = sizeof(T) == 4 ? fastloss::DType::Float32 : fastloss::DType::Float64;
  auto strides = [&](bool bcast, int64_t& rs, int64_t& cs) {
    rs = layout.transposed ? layout.step : cols * layout.step;
    cs = layout.transposed ? rows * layout.step : layout.step;
    if (bcast) rs = 0;
    if (layout.negative) {
      rs = -rs;
      cs = -cs;
    }
  };
  std::vector<Stored<T>> in;
  fastloss::ElementwiseCall c;
  c.ndim = 2;
  c.shape[0] = rows;
  c.shape[1] = cols;
  for (int k = 0; k < info.inputs; ++k) {
    const bool bcast = layout.broadcast_last && k == info.inputs - 1 && k > 0;
    int64_t rs, cs;
    strides(bcast, rs, cs);
    in.emplace_back(rows, cols, rs, cs);
  }
  int64_t rs, cs;
  strides(layout.broadcast_last, rs, cs);
  Stored<T> weight(rows, cols, rs, cs);
  strides(false, rs, cs);
  Stored<T> g(rows, cols, rs, cs), none(rows, cols, rs, cs);
  std::vector<Stored<T>> grads;
  for (int k = 0; k < info.grads; ++k) grads.emplace_back(rows, cols, rs, cs);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < cols; ++col) {
      for (int k = 0; k < info.inputs; ++k) in[k].at(r, col) = static_cast<T>(value_of(k, r, col, in[k].rs == 0));
      weight.at(r, col) = static_cast<T>(0.5 + value_of(7, r, col, weight.rs == 0));
      g.at(r, col) = static_cast<T>(value_of(9, r, col, false) - 0.5);
    }
  for (int k = 0; k < info.inputs; ++k) c.inputs[k] = in[k].view();
  if (weighted) c.weight = weight.view();
  for (int o = 0; o < fastloss::kMaxOptions; ++o) c.options[o] = 0.7;  // valid for every loss
  Results<T> out;
  // Summed value (and weight total).
  c.want_value = true;
  fastloss::Totals t = fastloss::elementwise(loss, dtype, c);
  out.total = t.loss;
  out.weight_total = t.weight;
  expect(t.errors == 0, std::string(info.name) + ": no check fails on valid data");
  if (info.grads > 0) {
    // 'none' values and every gradient in one fused call.
    c.loss_out = none.view();
    c.grad_output = g.view();
    for (int k = 0; k < info.grads; ++k) c.grads[k] = grads[k].view();
    c.want_grad = true;
    c.grad_scale = 0.25;
    fastloss::elementwise(loss, dtype, c);
  } else {
    c.loss_out = none.view();
    fastloss::elementwise(loss, dtype, c);
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < cols; ++col) out.none.push_back(none.at(r, col));
  out.grads.resize(info.grads);
  for (int k = 0; k < info.grads; ++k)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) out.grads[k].push_back(grads[k].at(r, col));
  return out;
}

template <class T>
bool same(const Results<T>& a, const Results<T>& b) {
  bool ok = same_bits(a.total, b.total) && same_bits(a.weight_total, b.weight_total) && same_bits(a.none, b.none);
  for (size_t k = 0; k < a.grads.size(); ++k) ok = ok && same_bits(a.grads[k], b.grads[k]);
  return ok;
}

// The float32 losses whose math uses math.h's loss_* variants (FMA on avx2/avx512).
bool is_fma_math(const char* name) {
  static const char* const kNames[] = {"binary_cross_entropy", "binary_cross_entropy_with_logits",
                                       "soft_margin_loss",     "poisson_nll_loss",
                                       "gaussian_nll_loss",    "kl_div"};
  for (const char* n : kNames)
    if (std::strcmp(n, name) == 0) return true;
  return false;
}

// Every value within rtol relative (plus rtol times the largest magnitude,
// where terms cancel), NaN and inf at the same places.
template <class T>
bool close_values(const std::vector<T>& a, const std::vector<T>& b, double rtol) {
  if (a.size() != b.size()) return false;
  double scale = 0;
  for (T v : b)
    if (std::isfinite(v)) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    if (std::isnan(x) || std::isnan(y) || std::isinf(x) || std::isinf(y)) {
      if (!(std::isnan(x) && std::isnan(y)) && x != y) return false;
      continue;
    }
    if (std::fabs(x - y) > rtol * (std::fabs(y) + scale)) return false;
  }
  return true;
}

template <class T>
bool close(const Results<T>& a, const Results<T>& b, double rtol) {
  bool ok = close_values(std::vector<double>{a.total, a.weight_total}, std::vector<double>{b.total, b.weight_total},
                         rtol) &&
            close_values(a.none, b.none, rtol);
  for (size_t k = 0; k < a.grads.size(); ++k) ok = ok && close_values(a.grads[k], b.grads[k], rtol);
  return ok;
}

const Layout kContiguous{"contiguous", false, 1, false, false};
const Layout kLayouts[] = {
    {"strided", false, 2, false, false},
    {"transposed", true, 1, false, false},
    {"negative", false, 1, true, false},
};
const Layout kBroadcast{"contiguous+broadcast", false, 1, false, true};
const Layout kBroadcastLayouts[] = {
    {"transposed+broadcast", true, 1, false, true},
    {"negative+broadcast", false, 3, true, true},
};

template <class T>
void check_loss(fastloss::Loss loss, int64_t rows, int64_t cols) {
  const fastloss::LossInfo& info = fastloss::loss_info(loss);
  const std::string what = std::string(info.name) + (sizeof(T) == 4 ? " f32 " : " f64 ") + std::to_string(rows) +
                           "x" + std::to_string(cols) + " isa " + fastloss::current_isa();
  for (bool weighted : {false, true}) {
    const std::string w = weighted ? " weighted" : "";
    fastloss::set_num_threads(1);
    const Results<T> base = run<T>(loss, rows, cols, kContiguous, weighted);
    // The per-element values add up to the sum. Neumaier's compensated sum:
    // a plain running sum of 64000 doubles is itself off by ~1e-12 relative
    // (pinball_loss's values: 1.3e-12), more than the kernel's blocked sum.
    double sum = 0, compensation = 0;
    for (T v : base.none) {
      const double x = static_cast<double>(v), s = sum + x;
      compensation += std::fabs(sum) >= std::fabs(x) ? (sum - s) + x : (x - s) + sum;
      sum = s;
    }
    sum += compensation;
    const double tol = sizeof(T) == 4 ? 1e-5 : 1e-12;
    expect(std::fabs(sum - base.total) <= tol * (1 + std::fabs(base.total)), what + w + ": none adds up to sum");
    for (const Layout& layout : kLayouts)
      expect(same(run<T>(loss, rows, cols, layout, weighted), base), what + w + ": layout " + layout.name);
    const Results<T> bcast = run<T>(loss, rows, cols, kBroadcast, weighted);
    for (const Layout& layout : kBroadcastLayouts)
      expect(same(run<T>(loss, rows, cols, layout, weighted), bcast), what + w + ": layout " + layout.name);
    for (int threads : {2, 3, 8}) {
      fastloss::set_num_threads(threads);
      expect(same(run<T>(loss, rows, cols, kContiguous, weighted), base),
             what + w + ": bitwise with " + std::to_string(threads) + " threads");
    }
  }
}

// Arguments the API can check are rejected with std::invalid_argument before
// anything is read or written (the output buffer keeps its sentinel).
void check_errors() {
  float x[4] = {0.25f, 0.5f, 0.75f, 1}, y[4] = {0, 0, 0, 0}, g[4] = {7, 7, 7, 7};
  auto base = [&] {
    fastloss::ElementwiseCall c;
    c.ndim = 1;
    c.shape[0] = 4;
    c.inputs[0].data = x;
    c.inputs[0].strides[0] = 1;
    c.inputs[1].data = y;
    c.inputs[1].strides[0] = 1;
    c.grads[0].data = g;
    c.grads[0].strides[0] = 1;
    c.want_grad = true;
    return c;
  };
  using Edit = void (*)(fastloss::ElementwiseCall&);
  const auto Mse = fastloss::Loss::Mse;
  const auto F32 = fastloss::DType::Float32;
  struct Bad {
    const char* what;
    fastloss::Loss loss;
    fastloss::DType dtype;
    Edit edit;
  } bad[] = {
      {"null target", Mse, F32, [](fastloss::ElementwiseCall& c) { c.inputs[1].data = nullptr; }},
      {"null input", Mse, F32, [](fastloss::ElementwiseCall& c) { c.inputs[0].data = nullptr; }},
      {"no gradient array", Mse, F32, [](fastloss::ElementwiseCall& c) { c.grads[0].data = nullptr; }},
      {"an input the loss does not read", Mse, F32, [](fastloss::ElementwiseCall& c) { c.inputs[2] = c.inputs[1]; }},
      {"a gradient the loss does not have", Mse, F32, [](fastloss::ElementwiseCall& c) { c.grads[1] = c.grads[0]; }},
      {"ndim 9", Mse, F32, [](fastloss::ElementwiseCall& c) { c.ndim = 9; }},
      {"ndim -1", Mse, F32, [](fastloss::ElementwiseCall& c) { c.ndim = -1; }},
      {"negative shape", Mse, F32, [](fastloss::ElementwiseCall& c) { c.shape[0] = -4; }},
      {"numel overflow", Mse, F32,
       [](fastloss::ElementwiseCall& c) {
         c.ndim = 3;
         c.shape[0] = c.shape[1] = c.shape[2] = int64_t(1) << 22;
       }},
      {"nothing to compute", Mse, F32, [](fastloss::ElementwiseCall& c) { c.want_value = c.want_grad = false; }},
      {"unknown loss", static_cast<fastloss::Loss>(999), F32, [](fastloss::ElementwiseCall&) {}},
      {"unknown dtype", Mse, static_cast<fastloss::DType>(7), [](fastloss::ElementwiseCall&) {}},
      {"negative beta", fastloss::Loss::SmoothL1, F32, [](fastloss::ElementwiseCall& c) { c.options[0] = -1; }},
      {"NaN beta", fastloss::Loss::SmoothL1, F32, [](fastloss::ElementwiseCall& c) { c.options[0] = NAN; }},
      {"negative delta", fastloss::Loss::Huber, F32, [](fastloss::ElementwiseCall& c) { c.options[0] = -1; }},
  };
  for (const Bad& b : bad) {
    fastloss::ElementwiseCall c = base();
    b.edit(c);
    bool threw = false;
    try {
      fastloss::elementwise(b.loss, b.dtype, c);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    expect(threw, std::string("invalid_argument for ") + b.what);
    expect(g[0] == 7 && g[3] == 7, std::string("nothing written for ") + b.what);
  }
  // A failed check (BCE input outside [0, 1]) is reported, not thrown.
  {
    fastloss::ElementwiseCall c = base();
    c.want_grad = false;
    c.grads[0].data = nullptr;
    x[3] = 2;
    const fastloss::Totals t = fastloss::elementwise(fastloss::Loss::BinaryCrossEntropy, F32, c);
    expect(t.errors == 1u, "binary_cross_entropy: input outside [0, 1] sets check bit 0");
    x[3] = 1;
  }
  // Empty arrays read nothing: absent pointers are fine there.
  fastloss::ElementwiseCall empty;
  empty.ndim = 1;
  empty.shape[0] = 0;
  expect(fastloss::elementwise(Mse, F32, empty).loss == 0.0, "empty call without pointers");
  // The first entry point's own checks.
  fastloss::PointwiseArgs p;
  p.ndim = 1;
  p.shape[0] = 4;
  p.input.data = x;
  p.input.strides[0] = 1;
  bool threw = false;
  try {
    fastloss::pointwise(fastloss::Pointwise::Mse, F32, p);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  expect(threw, "pointwise: null target rejected");
}

// Several threads calling at once (one owns the pool, the others run on their
// own thread) get the single-threaded bits; huge thread settings are capped.
void check_concurrent_callers() {
  const int64_t n = 3 * 8192 * 16 + 77;
  std::vector<double> x(n), y(n);
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  for (auto& v : x) v = normal(rng);
  for (auto& v : y) v = normal(rng);
  fastloss::ElementwiseCall c;
  c.ndim = 1;
  c.shape[0] = n;
  c.inputs[0].data = x.data();
  c.inputs[0].strides[0] = 1;
  c.inputs[1].data = y.data();
  c.inputs[1].strides[0] = 1;
  fastloss::set_num_threads(1);
  const double one = fastloss::elementwise(fastloss::Loss::Mse, fastloss::DType::Float64, c).loss;
  fastloss::set_num_threads(2);
  std::vector<double> got(6 * 20);
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t)
    callers.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k)
        got[t * 20 + k] = fastloss::elementwise(fastloss::Loss::Mse, fastloss::DType::Float64, c).loss;
    });
  for (auto& caller : callers) caller.join();
  bool ok = true;
  for (double v : got) ok = ok && same_bits(v, one);
  expect(ok, "concurrent callers: bitwise the one-thread result");
  fastloss::set_num_threads(1 << 30);
  expect(fastloss::get_num_threads() >= 1 && fastloss::get_num_threads() <= 4096, "thread count capped");
  expect(same_bits(fastloss::elementwise(fastloss::Loss::Mse, fastloss::DType::Float64, c).loss, one),
         "capped thread count: same bits");
  fastloss::set_num_threads(2);
}

}  // namespace

// The C ABI: ids and metadata as the C++ table, status codes and messages
// instead of exceptions, reductions as torch's (weighted L1/MSE mean divides by
// the weights' sum), nothing written on an error.
void check_c_abi() {
  expect(fastloss_abi_version() == FASTLOSS_ABI_VERSION, "C: ABI version");
  expect(fastloss_loss_count() == fastloss::kNumLosses, "C: loss count");
  for (int id = 0; id < fastloss_loss_count(); ++id) {
    const char *name = nullptr, *options = nullptr;
    int inputs = -1, grads = -1;
    expect(fastloss_loss_info(id, &name, &inputs, &grads, &options) == FASTLOSS_OK, "C: loss_info");
    const fastloss::LossInfo& info = fastloss::loss_info(static_cast<fastloss::Loss>(id));
    expect(std::strcmp(name, info.name) == 0 && inputs == info.inputs && grads == info.grads &&
               std::strcmp(options, info.options) == 0 && fastloss_loss_id(name) == id,
           std::string("C: metadata of ") + info.name);
  }
  expect(fastloss_loss_id("no_such_loss") == -1 && fastloss_loss_id(nullptr) == -1, "C: unknown names");
  expect(fastloss_loss_info(-1, nullptr, nullptr, nullptr, nullptr) == FASTLOSS_ERROR_INVALID_ARGUMENT &&
             std::strstr(fastloss_last_error(), "loss") != nullptr,
         "C: bad id");

  std::vector<double> x = {1, -2, 3, 0.5}, y = {0, 0, 1, 1}, w = {1, 2, 3, 4}, out(4, -7.0);
  fastloss_elementwise_call call;
  fastloss_call_init(&call);
  call.ndim = 1;
  call.shape[0] = 4;
  call.inputs[0] = {x.data(), {1}};
  call.inputs[1] = {y.data(), {1}};
  const int l1 = fastloss_loss_id("l1_loss"), huber = fastloss_loss_id("huber_loss");
  double value = 0;
  expect(fastloss_reduce(l1, FASTLOSS_FLOAT64, FASTLOSS_REDUCTION_MEAN, &call, &value) == FASTLOSS_OK &&
             value == (1 + 2 + 2 + 0.5) / 4,
         "C: l1 mean");
  call.weight = {w.data(), {1}};
  expect(fastloss_reduce(l1, FASTLOSS_FLOAT64, FASTLOSS_REDUCTION_MEAN, &call, &value) == FASTLOSS_OK &&
             value == (1 * 1 + 2 * 2 + 3 * 2 + 4 * 0.5) / 10,
         "C: weighted l1 mean divides by the weights' sum");
  call.options[0] = 1.0;  // delta
  expect(fastloss_reduce(huber, FASTLOSS_FLOAT64, FASTLOSS_REDUCTION_MEAN, &call, &value) == FASTLOSS_OK &&
             value == (1 * 0.5 + 2 * 1.5 + 3 * 1.5 + 4 * 0.125) / 4,
         "C: weighted huber mean divides by the count");
  expect(fastloss_reduce(huber, FASTLOSS_FLOAT64, FASTLOSS_REDUCTION_SUM, &call, &value) == FASTLOSS_OK &&
             value == 1 * 0.5 + 2 * 1.5 + 3 * 1.5 + 4 * 0.125,
         "C: huber sum");
  // Errors: status, message naming the argument, nothing written.
  call.loss_out = {out.data(), {1}};
  call.ndim = 9;
  expect(fastloss_elementwise(l1, FASTLOSS_FLOAT64, &call, nullptr) == FASTLOSS_ERROR_INVALID_ARGUMENT &&
             std::strstr(fastloss_last_error(), "ndim") != nullptr && out[0] == -7.0,
         "C: ndim error, nothing written");
  call.ndim = 1;
  expect(fastloss_elementwise(l1, 5, &call, nullptr) ==
                 FASTLOSS_ERROR_INVALID_ARGUMENT && std::strstr(fastloss_last_error(), "dtype") != nullptr,
         "C: dtype error");
  expect(fastloss_elementwise(l1, FASTLOSS_FLOAT64, nullptr, nullptr) == FASTLOSS_ERROR_INVALID_ARGUMENT,
         "C: NULL call");
  expect(fastloss_reduce(l1, FASTLOSS_FLOAT64, FASTLOSS_REDUCTION_NONE, &call, &value) ==
             FASTLOSS_ERROR_INVALID_ARGUMENT, "C: reduce needs mean or sum");
  std::vector<double> p = {0.5, 1.5, 0.25, 0.75};  // BCE input outside [0, 1]: a value error after the call
  call.inputs[0] = {p.data(), {1}};
  call.weight = {};
  call.loss_out = {};
  call.options[0] = 0;
  expect(fastloss_elementwise(fastloss_loss_id("binary_cross_entropy"), FASTLOSS_FLOAT64, &call, nullptr) ==
             FASTLOSS_ERROR_VALUE, "C: BCE range check");
  expect(fastloss_select_isa("no-such-isa") == FASTLOSS_ERROR_INVALID_ARGUMENT &&
             fastloss_select_isa(fastloss_current_isa()) == FASTLOSS_OK, "C: select_isa");
  const int threads = fastloss_get_num_threads();
  fastloss_set_num_threads(-3);
  expect(fastloss_get_num_threads() == 1, "C: thread count clamped");
  fastloss_set_num_threads(threads);
}

// ---- CTC (fastloss/ctc.h): a caller-owned workspace sized by
// ctc_workspace_size; results independent of threads, ISA level, the layout
// of log_probs, the workspace's size and the targets' form (padded or
// concatenated); the exact gradient against central differences of the
// loss itself; torch's gradient = exact + exp(log_probs) inside the input
// lengths; bad arguments rejected before anything is written.
struct CtcProblem {
  int64_t T = 30, N = 5, C = 6, S = 7, blank = 2;
  std::vector<double> lp;  // (T, N, C) log_softmax
  std::vector<int64_t> targets, concatenated, il, tl;

  CtcProblem() {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    lp.resize(static_cast<size_t>(T * N * C));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n) {
        double* row = &lp[static_cast<size_t>((t * N + n) * C)];
        double m = -1e300, sum = 0;
        for (int64_t c = 0; c < C; ++c) m = std::max(m, row[c] = 2 * normal(rng));
        for (int64_t c = 0; c < C; ++c) sum += std::exp(row[c] - m);
        for (int64_t c = 0; c < C; ++c) row[c] -= m + std::log(sum);
      }
    targets.assign(static_cast<size_t>(N * S), 0);
    for (int64_t n = 0; n < N; ++n) {
      il.push_back(n == 0 ? T : 5 + static_cast<int64_t>(rng() % static_cast<uint64_t>(T - 5)));
      tl.push_back(n == 1 ? 0 : static_cast<int64_t>(rng() % static_cast<uint64_t>(S + 1)));
      for (int64_t j = 0; j < S; ++j) {
        int64_t label = static_cast<int64_t>(rng() % static_cast<uint64_t>(C - 1));
        targets[static_cast<size_t>(n * S + j)] = label >= blank ? label + 1 : label;  // never blank
      }
      for (int64_t j = 0; j < tl.back(); ++j) concatenated.push_back(targets[static_cast<size_t>(n * S + j)]);
    }
  }
};

struct CtcResult {
  std::vector<double> losses, grad;
  double total = 0;
};

CtcResult run_ctc(const CtcProblem& p, fastloss::Reduction reduction, bool exact, bool concatenated, bool batch_major,
                  size_t workspace_bytes = 0, const std::vector<double>* lp_override = nullptr) {
  const std::vector<double>& lp = lp_override ? *lp_override : p.lp;
  std::vector<double> stored(lp.size());
  fastloss::CtcCall call;
  call.max_time = p.T;
  call.batch = p.N;
  call.classes = p.C;
  if (batch_major) {  // stored as (N, T, C): strides (C, T * C, 1)
    for (int64_t t = 0; t < p.T; ++t)
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t c = 0; c < p.C; ++c)
          stored[static_cast<size_t>((n * p.T + t) * p.C + c)] = lp[static_cast<size_t>((t * p.N + n) * p.C + c)];
    call.log_probs_strides[0] = p.C;
    call.log_probs_strides[1] = p.T * p.C;
  } else {
    stored = lp;
    call.log_probs_strides[0] = p.N * p.C;
    call.log_probs_strides[1] = p.C;
  }
  call.log_probs_strides[2] = 1;
  call.log_probs = stored.data();
  call.targets = concatenated ? p.concatenated.data() : p.targets.data();
  call.target_count = static_cast<int64_t>(concatenated ? p.concatenated.size() : p.targets.size());
  call.padded_length = concatenated ? -1 : p.S;
  call.input_lengths = p.il.data();
  call.target_lengths = p.tl.data();
  call.blank = p.blank;
  call.reduction = reduction;
  CtcResult r;
  r.losses.assign(static_cast<size_t>(p.N), -1.0);
  r.grad.assign(lp.size(), 1e300);
  call.losses = r.losses.data();
  call.grad = r.grad.data();
  call.grad_strides[0] = p.N * p.C;
  call.grad_strides[1] = p.C;
  call.grad_strides[2] = 1;
  call.exact = exact;
  const size_t size = workspace_bytes ? workspace_bytes : fastloss::ctc_workspace_size(p.T, p.N, p.S, true, 8);
  std::vector<unsigned char> workspace(size);
  r.total = fastloss::ctc_loss(fastloss::DType::Float64, call, workspace.data(), workspace.size());
  return r;
}

bool same(const CtcResult& a, const CtcResult& b) {
  return same_bits(a.losses, b.losses) && same_bits(a.grad, b.grad) && same_bits(a.total, b.total);
}

void check_ctc(const std::vector<std::string>& levels) {
  const CtcProblem p;
  using R = fastloss::Reduction;
  const int threads_before = fastloss::get_num_threads();
  fastloss::select_isa(levels.front().c_str());
  fastloss::set_num_threads(1);
  const CtcResult base = run_ctc(p, R::Sum, false, false, false);
  double sum = 0;
  for (double l : base.losses) sum += l;
  expect(same_bits(sum, base.total), "ctc: Sum adds the per-sample losses in sample order");
  for (double l : base.losses) expect(std::isfinite(l) && l >= 0, "ctc: finite losses");
  for (const std::string& isa : levels)
    for (int threads : {1, 2, 3, 8}) {
      fastloss::select_isa(isa.c_str());
      fastloss::set_num_threads(threads);
      const std::string at = " (" + isa + ", " + std::to_string(threads) + " threads)";
      expect(same(run_ctc(p, R::Sum, false, false, false), base), "ctc: same bits" + at);
      expect(same(run_ctc(p, R::Sum, false, true, false), base), "ctc: concatenated targets" + at);
      expect(same(run_ctc(p, R::Sum, false, false, true), base), "ctc: batch-major log_probs" + at);
    }
  fastloss::select_isa(levels.back().c_str());
  fastloss::set_num_threads(8);
  // A workspace for one thread only: fewer threads, same bits.
  expect(same(run_ctc(p, R::Sum, false, false, false, fastloss::ctc_workspace_size(p.T, p.N, p.S, true, 1)), base),
         "ctc: one-thread workspace");

  // exact gradient vs central differences of the Mean loss; torch's = exact + exp(lp) * scale inside the lengths.
  const CtcResult exact = run_ctc(p, R::Mean, true, false, false);
  const CtcResult torch_style = run_ctc(p, R::Mean, false, false, false);
  double worst = 0;
  for (size_t i = 0; i < p.lp.size(); i += 7) {
    std::vector<double> up = p.lp, down = p.lp;
    const double h = 1e-6;
    up[i] += h;
    down[i] -= h;
    const double numeric = (run_ctc(p, R::Mean, true, false, false, 0, &up).total -
                            run_ctc(p, R::Mean, true, false, false, 0, &down).total) / (2 * h);
    worst = std::max(worst, std::fabs(numeric - exact.grad[i]));
  }
  expect(worst < 1e-7, "ctc: exact gradient vs central differences (worst " + std::to_string(worst) + ")");
  bool convention = true;
  for (int64_t t = 0; t < p.T; ++t)
    for (int64_t n = 0; n < p.N; ++n)
      for (int64_t c = 0; c < p.C; ++c) {
        const size_t i = static_cast<size_t>((t * p.N + n) * p.C + c);
        const double scale = 1.0 / static_cast<double>(std::max<int64_t>(p.tl[static_cast<size_t>(n)], 1)) / p.N;
        const double want = t < p.il[static_cast<size_t>(n)] ? std::exp(p.lp[i]) * scale : 0.0;
        convention = convention && std::fabs(torch_style.grad[i] - exact.grad[i] - want) < 1e-12;
      }
  expect(convention, "ctc: torch's gradient = exact + exp(log_probs) inside the input lengths, 0 beyond");

  // Errors: thrown before anything is written.
  auto rejects = [&](const char* what, bool out_of_range, auto change) {
    CtcProblem bad;
    change(bad);
    bool threw = false, right_type = false;
    try {
      run_ctc(bad, R::Sum, false, false, false);
    } catch (const std::out_of_range&) {
      threw = true;
      right_type = out_of_range;
    } catch (const std::invalid_argument&) {
      threw = true;
      right_type = !out_of_range;
    }
    expect(threw && right_type, std::string("ctc rejects ") + what);
  };
  // (the first label of sample 0, whose target length is made >= 1: padding past a length is not read)
  auto first_label = [](CtcProblem& b) -> int64_t& {
    b.tl[0] = std::max<int64_t>(b.tl[0], 1);
    return b.targets[0];
  };
  rejects("a label == C", true, [&](CtcProblem& b) { first_label(b) = b.C; });
  rejects("a label == blank", true, [&](CtcProblem& b) { first_label(b) = b.blank; });
  rejects("a negative label", true, [&](CtcProblem& b) { first_label(b) = -1; });
  rejects("input length > T", false, [](CtcProblem& b) { b.il[2] = b.T + 1; });
  rejects("negative target length", false, [](CtcProblem& b) { b.tl[2] = -1; });
  rejects("target length > S", false, [](CtcProblem& b) { b.tl[2] = b.S + 1; });
  rejects("blank >= C", false, [](CtcProblem& b) { b.blank = b.C; });
  {
    bool threw = false;
    try {
      run_ctc(p, R::Sum, false, false, false, 64);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    expect(threw, "ctc rejects a workspace that is too small");
  }
  fastloss::set_num_threads(threads_before);
}


// ---- Row-wise losses through the checked entry points (fastloss::row_loss,
// fastloss/typed.h, the C ABI's fastloss_rowwise): for every loss of the
// table, the same bits whatever the operands' layout (class axis reversed,
// rows spaced out), the thread count or the door (typed C++, RowwiseCall,
// C); options and class indices checked before anything is written.
template <class T>
struct RowResult {
  double mean = 0, sum = 0;
  std::vector<T> none;
  std::vector<std::vector<T>> grads;
};

template <class T>
bool same_row(const RowResult<T>& a, const RowResult<T>& b) {
  bool ok = same_bits(a.mean, b.mean) && same_bits(a.sum, b.sum) && same_bits(a.none, b.none);
  for (size_t k = 0; k < a.grads.size(); ++k) ok = ok && same_bits(a.grads[k], b.grads[k]);
  return ok;
}

// Operand k of a row-wise problem at (n, c, s), and a valid target.
double row_value(int k, int64_t n, int64_t c, int64_t s) { return 4 * value_of(k, n * 131 + s, c, false) - 2; }
int64_t row_index(int64_t n, int64_t s, int64_t classes) { return (n * 7 + s * 3 + 1) % classes; }

// Runs loss `id` on (outer, classes, inner) operands stored contiguously
// (spread = false) or with the class axis reversed and every other row
// (spread = true), through fastloss::row_loss (c_abi = false) or the C ABI.
template <class T>
RowResult<T> run_row(int id, int64_t outer, int64_t classes, int64_t inner, bool spread, bool c_abi) {
  const auto loss = static_cast<fastloss::RowLoss>(id);
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(loss);
  const auto dtype = sizeof(T) == 4 ? fastloss::DType::Float32 : fastloss::DType::Float64;
  const int64_t C = classes, S = inner;
  // Element (n, c, s) at origin + n * s0 + c * s1 + s * s2.
  const int64_t s2 = 1, s1 = spread ? -S : S, s0 = spread ? 2 * C * S : C * S;
  const size_t span = static_cast<size_t>(std::max<int64_t>(1, (spread ? 2 : 1) * outer * C * S));
  const int64_t origin = spread ? (C - 1) * S : 0;
  auto cube = [&](std::vector<T>& buf) {
    buf.assign(span, T(0));
    fastloss::RowArray a;
    a.data = buf.data() + origin;
    a.strides[0] = s0;
    a.strides[1] = s1;
    a.strides[2] = s2;
    return a;
  };
  auto at = [&](int64_t n, int64_t c, int64_t s) { return static_cast<size_t>(origin + n * s0 + c * s1 + s * s2); };
  const bool feature = info.inputs > 1 || info.target == fastloss::RowTarget::None;
  std::vector<T> in[fastloss::kMaxRowInputs], grads[fastloss::kMaxRowInputs], ftarget, weight(static_cast<size_t>(C));
  std::vector<int64_t> itarget(static_cast<size_t>(std::max<int64_t>(1, outer * C * S)), -1);
  fastloss::RowwiseCall call;
  call.outer = outer;
  call.classes = C;
  call.inner = S;
  for (int k = 0; k < info.inputs; ++k) {
    call.inputs[k] = cube(in[k]);
    call.grads[k] = cube(grads[k]);
    for (int64_t n = 0; n < outer; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t s = 0; s < S; ++s) in[k][at(n, c, s)] = static_cast<T>(row_value(k, n, c, s));
  }
  switch (info.target) {
    case fastloss::RowTarget::Index:
    case fastloss::RowTarget::IndexOrFloat:  // class indices, per row (n, s) at n * S + s
      for (int64_t r = 0; r < outer * S; ++r) itarget[static_cast<size_t>(r)] = row_index(r / S, r % S, C);
      call.target.data = itarget.data();
      call.target.strides[0] = S;
      call.target.strides[2] = 1;
      break;
    case fastloss::RowTarget::IndexRows:  // up to three classes a row, then -1
      for (int64_t n = 0; n < outer; ++n)
        for (int64_t j = 0; j < std::min<int64_t>(C, 1 + n % 3); ++j)
          itarget[static_cast<size_t>(n * C + j)] = row_index(n, j, C);
      call.target.data = itarget.data();
      call.target.strides[0] = C;
      call.target.strides[1] = 1;
      break;
    case fastloss::RowTarget::Float:
      if (feature) {  // one +-1 per row
        ftarget.resize(static_cast<size_t>(std::max<int64_t>(1, outer)));
        for (int64_t n = 0; n < outer; ++n) ftarget[static_cast<size_t>(n)] = n % 3 == 0 ? T(-1) : T(1);
        call.target.data = ftarget.data();
        call.target.strides[0] = 1;
      } else {
        call.target = cube(ftarget);
        for (int64_t n = 0; n < outer; ++n)
          for (int64_t c = 0; c < C; ++c)
            for (int64_t s = 0; s < S; ++s) ftarget[at(n, c, s)] = static_cast<T>(value_of(5, n, c * S + s, false));
      }
      call.target_type = fastloss::ElementType::Float;
      break;
    default:
      break;
  }
  if (!feature && info.target != fastloss::RowTarget::IndexRows) {
    for (int64_t c = 0; c < C; ++c) weight[static_cast<size_t>(c)] = static_cast<T>(0.5 + value_of(6, 0, c, false));
    call.weight.data = weight.data();
    call.weight.strides[1] = 1;
  }
  fastloss::row_option_defaults(loss, call.options);
  RowResult<T> r;
  std::vector<T> none(static_cast<size_t>(std::max<int64_t>(1, outer * S)), T(-7));
  auto go = [&](fastloss::Reduction reduction, bool grad) {
    fastloss::RowwiseCall c = call;
    c.reduction = reduction;
    c.want_grad = grad;
    if (!grad)
      for (auto& g : c.grads) g = fastloss::RowArray{};
    if (reduction == fastloss::Reduction::None) {
      c.loss_out.data = none.data();
      c.loss_out.strides[0] = S;
      c.loss_out.strides[2] = 1;
    }
    if (!c_abi) return fastloss::row_loss(loss, dtype, c);
    fastloss_rowwise_call cc;
    fastloss_rowwise_call_init(id, &cc);
    cc.outer = c.outer;
    cc.classes = c.classes;
    cc.inner = c.inner;
    auto copy = [](const fastloss::RowArray& a, fastloss_row_array& b) {
      b.data = a.data;
      std::memcpy(b.strides, a.strides, sizeof b.strides);
    };
    for (int k = 0; k < fastloss::kMaxRowInputs; ++k) {
      copy(c.inputs[k], cc.inputs[k]);
      copy(c.grads[k], cc.grads[k]);
    }
    copy(c.target, cc.target);
    cc.target_type = static_cast<int>(c.target_type);
    copy(c.weight, cc.weight);
    copy(c.loss_out, cc.loss_out);
    cc.reduction = static_cast<int>(reduction);
    cc.want_grad = grad;
    double value = 0;
    const fastloss_status status = fastloss_rowwise(id, static_cast<int>(dtype), &cc, &value);
    expect(status == FASTLOSS_OK, std::string("C: fastloss_rowwise ") + info.name + ": " + fastloss_last_error());
    return value;
  };
  r.mean = go(fastloss::Reduction::Mean, true);
  r.sum = go(fastloss::Reduction::Sum, false);
  go(fastloss::Reduction::None, false);
  r.none = none;
  for (int k = 0; k < info.inputs; ++k) {
    std::vector<T> g;
    for (int64_t n = 0; n < outer; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t s = 0; s < S; ++s) g.push_back(grads[k][at(n, c, s)]);
    r.grads.push_back(g);
  }
  return r;
}

template <class T>
void check_row_loss(int id) {
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(id));
  const bool feature = info.inputs > 1 || info.target == fastloss::RowTarget::None;
  const struct {
    int64_t outer, classes, inner;
  } shapes[] = {{1, 1, 1}, {3, 7, 1}, {5, 33, 4}, {2, 1500, 1}, {600, 40, 1}, {0, 5, 1}, {4, 0, 1}};
  for (const auto& sh : shapes) {
    const int64_t inner = feature ? 1 : sh.inner;
    if (sh.classes == 0 && info.target != fastloss::RowTarget::None && info.target != fastloss::RowTarget::Float)
      continue;  // no class index fits zero classes
    const std::string what = std::string(info.name) + (sizeof(T) == 4 ? " f32 " : " f64 ") +
                             std::to_string(sh.outer) + "x" + std::to_string(sh.classes) + "x" +
                             std::to_string(inner);
    fastloss::set_num_threads(1);
    const RowResult<T> base = run_row<T>(id, sh.outer, sh.classes, inner, false, false);
    if (sh.outer * inner > 0 && sh.classes > 0) {  // (a mean over no classes is NaN, as torch)
      expect(std::isfinite(base.sum), what + ": finite sum");
      double sum = 0;
      for (T v : base.none) sum += static_cast<double>(v);
      expect(std::fabs(sum - base.sum) <= (sizeof(T) == 4 ? 1e-4 : 1e-10) * (1 + std::fabs(base.sum)),
             what + ": none adds up to sum");
    }
    expect(same_row(run_row<T>(id, sh.outer, sh.classes, inner, true, false), base), what + ": strided layout");
    expect(same_row(run_row<T>(id, sh.outer, sh.classes, inner, false, true), base), what + ": through the C ABI");
    fastloss::set_num_threads(3);
    expect(same_row(run_row<T>(id, sh.outer, sh.classes, inner, true, true), base), what + ": 3 threads, C, strided");
  }
  fastloss::set_num_threads(2);
}

// The typed API: the same bits as the RowwiseCall it builds, torch's
// defaults, and its checks (std::invalid_argument / std::out_of_range,
// nothing written).
void check_typed_api() {
  const fastloss::CrossEntropyOptions ce;
  const fastloss::TripletMarginOptions tm;
  const fastloss::CtcOptions ctc;
  expect(ce.ignore_index == -100 && ce.label_smoothing == 0 && ce.reduction == fastloss::Reduction::Mean &&
             tm.margin == 1 && tm.p == 2 && tm.eps == 1e-6 && !tm.swap && ctc.blank == 0 && !ctc.zero_infinity,
         "typed: torch's defaults");
  const int64_t N = 6, C = 5, H = 3;
  std::vector<double> x(static_cast<size_t>(N * C * H)), w(static_cast<size_t>(C), 1.5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = row_value(0, 0, static_cast<int64_t>(i), 0);
  std::vector<int8_t> y(static_cast<size_t>(N * H));
  for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int8_t>(i % C);
  y[4] = -100;
  fastloss::CrossEntropyOptions o;
  o.label_smoothing = 0.25;
  std::vector<double> g(x.size()), g2(x.size());
  fastloss::Outputs<double> out;
  out.grads[0] = g.data();
  const double typed = fastloss::cross_entropy(x.data(), {N, C, H}, y.data(), o, w.data(), out);
  fastloss::RowwiseCall call;
  call.outer = N;
  call.classes = C;
  call.inner = H;
  call.inputs[0] = {x.data(), {C * H, H, 1}};
  call.grads[0] = {g2.data(), {C * H, H, 1}};
  call.target = {y.data(), {H, 0, 1}};
  call.target_type = fastloss::ElementType::Int8;
  call.weight = {w.data(), {0, 1, 0}};
  call.want_grad = true;
  o.store(call.options);
  const double raw = fastloss::row_loss(fastloss::RowLoss::CrossEntropy, fastloss::DType::Float64, call);
  expect(same_bits(typed, raw) && same_bits(g, g2), "typed cross_entropy: the bits of its RowwiseCall");
  expect(std::isfinite(typed) && typed > 0, "typed cross_entropy: a finite loss");

  struct Bad {
    const char* what;
    bool index;  // std::out_of_range (else std::invalid_argument)
    void (*call)(double* grad);
  } bad[] = {
      {"class index out of range", true,
       [](double* grad) {
         const double x[6] = {0};
         const int32_t y[2] = {1, 3};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::cross_entropy(x, {2, 3}, y, {}, nullptr, out);
       }},
      {"negative class index (no ignore_index)", true,
       [](double* grad) {
         const double x[6] = {0};
         const int64_t y[2] = {1, -100};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::multi_margin_loss(x, {2, 3}, y, {}, nullptr, out);
       }},
      {"label_smoothing > 1", false,
       [](double* grad) {
         const double x[6] = {0};
         const int64_t y[2] = {1, 2};
         fastloss::CrossEntropyOptions o;
         o.label_smoothing = 1.5;
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::cross_entropy(x, {2, 3}, y, o, nullptr, out);
       }},
      {"multi_margin p = 3", false,
       [](double* grad) {
         const double x[6] = {0};
         const int64_t y[2] = {1, 2};
         fastloss::MultiMarginOptions o;
         o.p = 3;
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::multi_margin_loss(x, {2, 3}, y, o, nullptr, out);
       }},
      {"triplet margin 0", false,
       [](double* grad) {
         const double a[6] = {0};
         fastloss::TripletMarginOptions o;
         o.margin = 0;
         fastloss::Outputs<double> out;
         out.grads[0] = out.grads[1] = out.grads[2] = grad;
         fastloss::triplet_margin_loss(a, a, a, {2, 3}, o, out);
       }},
      {"cosine_embedding target 0", false,
       [](double* grad) {
         const double a[6] = {1, 1, 1, 1, 1, 1}, t[2] = {1, 0};
         fastloss::Outputs<double> out;
         out.grads[0] = out.grads[1] = grad;
         fastloss::cosine_embedding_loss(a, a, {2, 3}, t, {}, out);
       }},
      {"a weight for multilabel_margin_loss's row (none)", false,
       [](double* grad) {
         const double x[6] = {0}, w[3] = {1, 1, 1};
         const int64_t y[6] = {0, -1, -1, 1, -1, -1};
         fastloss::RowwiseCall c;
         c.outer = 2;
         c.classes = 3;
         c.inputs[0] = {const_cast<double*>(x), {3, 1, 0}};
         c.grads[0] = {grad, {3, 1, 0}};
         c.want_grad = true;
         c.target = {const_cast<int64_t*>(y), {3, 1, 0}};
         c.weight = {const_cast<double*>(w), {0, 1, 0}};
         fastloss::row_loss(fastloss::RowLoss::MultilabelMargin, fastloss::DType::Float64, c);
       }},
      {"a row of indices with 3 of 3 classes", true,
       [](double* grad) {
         const double x[6] = {0};
         const int64_t y[6] = {0, -1, -1, 1, 3, -1};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::multilabel_margin_loss(x, {2, 3}, y, {}, out);
       }},
      {"a negative dimension", false,
       [](double* grad) {
         const double x[6] = {0};
         const int64_t y[2] = {0, 1};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::nll_loss(x, {2, -3}, y, {}, nullptr, out);
       }},
      {"only some gradients", false,
       [](double* grad) {
         const double a[6] = {0};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::triplet_margin_loss(a, a, a, {2, 3}, {}, out);
       }},
      {"a CTC label equal to blank", true,
       [](double* grad) {
         const double lp[12] = {0};
         const int64_t targets[2] = {1, 0}, il[1] = {4}, tl[1] = {2};
         fastloss::Outputs<double> out;
         out.grads[0] = grad;
         fastloss::ctc_loss(lp, 4, 1, 3, targets, 2, il, tl, {}, out);
       }},
  };
  for (const Bad& b : bad) {
    double grad[12];
    for (double& v : grad) v = -7;
    bool threw = false;
    try {
      b.call(grad);
    } catch (const std::out_of_range&) {
      threw = b.index;
    } catch (const std::invalid_argument&) {
      threw = !b.index;
    }
    bool untouched = true;
    for (double v : grad) untouched = untouched && v == -7;
    expect(threw, std::string("typed: the right exception for ") + b.what);
    expect(untouched, std::string("typed: nothing written for ") + b.what);
  }
  // The typed CTC equals the CtcCall it builds (workspace allocated inside).
  const CtcProblem p;
  std::vector<double> losses(static_cast<size_t>(p.N)), grad(p.lp.size());
  fastloss::Outputs<double> co;
  co.losses = losses.data();
  co.grads[0] = grad.data();
  fastloss::CtcOptions copt;
  copt.blank = p.blank;
  copt.reduction = fastloss::Reduction::Sum;
  const double total = fastloss::ctc_loss(p.lp.data(), p.T, p.N, p.C, p.targets.data(), p.S, p.il.data(),
                                          p.tl.data(), copt, co);
  const CtcResult ref = run_ctc(p, fastloss::Reduction::Sum, false, false, false);
  expect(same_bits(total, ref.total) && same_bits(losses, ref.losses) && same_bits(grad, ref.grad),
         "typed ctc_loss: the bits of its CtcCall");
  // The C ABI's CTC: the same bits, and its status codes.
  fastloss_ctc_call cc;
  fastloss_ctc_call_init(&cc);
  cc.max_time = p.T;
  cc.batch = p.N;
  cc.classes = p.C;
  cc.log_probs = p.lp.data();
  cc.log_probs_strides[0] = p.N * p.C;
  cc.log_probs_strides[1] = p.C;
  cc.log_probs_strides[2] = 1;
  cc.targets = p.targets.data();
  cc.target_count = static_cast<int64_t>(p.targets.size());
  cc.padded_length = p.S;
  cc.input_lengths = p.il.data();
  cc.target_lengths = p.tl.data();
  cc.blank = p.blank;
  cc.reduction = FASTLOSS_REDUCTION_SUM;
  std::vector<double> closses(static_cast<size_t>(p.N)), cgrad(p.lp.size());
  cc.losses = closses.data();
  cc.grad = cgrad.data();
  cc.grad_strides[0] = p.N * p.C;
  cc.grad_strides[1] = p.C;
  cc.grad_strides[2] = 1;
  size_t bytes = 0;
  expect(fastloss_ctc_workspace_size(p.T, p.N, p.S, 1, 4, &bytes) == FASTLOSS_OK && bytes > 0, "C: ctc workspace size");
  std::vector<unsigned char> ws(bytes);
  double value = 0;
  expect(fastloss_ctc_loss(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value) == FASTLOSS_OK &&
             same_bits(value, ref.total) && same_bits(closses, ref.losses) && same_bits(cgrad, ref.grad),
         "C: fastloss_ctc_loss, the C++ bits");
  std::vector<int64_t> wrong = p.targets;
  wrong[0] = p.C;
  cc.targets = wrong.data();
  expect(fastloss_ctc_loss(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value) == FASTLOSS_ERROR_INDEX &&
             std::strstr(fastloss_last_error(), "label") != nullptr,
         "C: a CTC label out of range is FASTLOSS_ERROR_INDEX");
  cc.targets = p.targets.data();
  expect(fastloss_ctc_loss(FASTLOSS_FLOAT64, &cc, ws.data(), 16, &value) == FASTLOSS_ERROR_INVALID_ARGUMENT &&
             std::strstr(fastloss_last_error(), "workspace") != nullptr,
         "C: a short CTC workspace");
  cc.struct_size = 8;
  expect(fastloss_ctc_loss(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value) == FASTLOSS_ERROR_INVALID_ARGUMENT,
         "C: a CTC struct from another version");
}

// ---- linear_cross_entropy: equals row_loss's cross_entropy of the logits
// formed explicitly (and the gradients the chain rule gives from its G), the
// built-in GEMM is bitwise independent of threads and ISA level, a caller's
// GEMM (naive loops with cblas_dgemm's argument list) gives the same to
// rounding through the C ABI, chunk sizes agree, errors write nothing.

// C = alpha op(A) op(B) + beta C, row-major, as cblas_dgemm.
void naive_dgemm(int layout, int ta, int tb, int m, int n, int k, double alpha, const double* a, int lda,
                 const double* b, int ldb, double beta, double* c, int ldc) {
  if (layout != 101) std::abort();
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int p = 0; p < k; ++p)
        s += (ta == 111 ? a[i * lda + p] : a[p * lda + i]) * (tb == 111 ? b[p * ldb + j] : b[j * ldb + p]);
      c[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * c[i * ldc + j]);
    }
}

struct LceResult {
  double value = 0;
  std::vector<double> gx, gw, gb;
};

LceResult run_lce(int64_t N, int64_t F, int64_t C, const std::vector<double>& x, const std::vector<double>& w,
                  const std::vector<double>& b, const std::vector<int64_t>& y, const std::vector<double>& cw,
                  int64_t chunk, bool transposed_weight) {
  fastloss::LinearCrossEntropyCall c;
  c.rows = N;
  c.features = F;
  c.classes = C;
  c.input = {const_cast<double*>(x.data()), {F, 1}};
  // the weight stored transposed (F, C): strides (1, C)
  std::vector<double> wt(w.size());
  for (int64_t v = 0; v < C; ++v)
    for (int64_t f = 0; f < F; ++f) wt[static_cast<size_t>(f * C + v)] = w[static_cast<size_t>(v * F + f)];
  c.linear_weight = transposed_weight ? fastloss::Matrix{wt.data(), {1, C}} : fastloss::Matrix{const_cast<double*>(w.data()), {F, 1}};
  c.linear_bias = b.data();
  c.target = {const_cast<int64_t*>(y.data()), {1, 0, 0}};
  c.weight = {const_cast<double*>(cw.data()), {0, 1, 0}};
  c.label_smoothing = 0.1;
  c.want_grad = true;
  c.chunk_size = chunk;
  LceResult r;
  r.gx.assign(static_cast<size_t>(N * F), -7);
  r.gw.assign(static_cast<size_t>(C * F), -7);
  r.gb.assign(static_cast<size_t>(C), -7);
  c.grad_input = {r.gx.data(), {F, 1}};
  c.grad_linear_weight = {r.gw.data(), {F, 1}};
  c.grad_linear_bias = r.gb.data();
  std::vector<unsigned char> ws(fastloss::linear_cross_entropy_workspace_size(fastloss::DType::Float64, c, 4));
  r.value = fastloss::linear_cross_entropy(fastloss::DType::Float64, c, ws.data(), ws.size());
  return r;
}

bool close_to(const std::vector<double>& a, const std::vector<double>& b, double rtol) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= rtol * (std::fabs(b[i]) + 1e-3))) return false;
  return true;
}

void check_linear_cross_entropy(const std::vector<std::string>& levels) {
  const int64_t N = 131, F = 300, C = 270;  // several GEMM tiles, two K blocks
  std::vector<double> x(static_cast<size_t>(N * F)), w(static_cast<size_t>(C * F)), b(static_cast<size_t>(C)),
      cw(static_cast<size_t>(C));
  for (size_t i = 0; i < x.size(); ++i) x[i] = row_value(0, 0, static_cast<int64_t>(i), 0);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1 * row_value(1, 0, static_cast<int64_t>(i), 0);
  for (size_t i = 0; i < b.size(); ++i) b[i] = row_value(2, 0, static_cast<int64_t>(i), 0);
  for (size_t i = 0; i < cw.size(); ++i) cw[i] = 1 + value_of(3, 0, static_cast<int64_t>(i), false);
  std::vector<int64_t> y(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) y[static_cast<size_t>(n)] = row_index(n, 0, C);
  y[5] = -100;
  // The explicit route: logits by loops, row_loss's value and G, the gradients by loops.
  std::vector<double> z(static_cast<size_t>(N * C)), g(z.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t v = 0; v < C; ++v) {
      double s = 0;
      for (int64_t f = 0; f < F; ++f) s += x[static_cast<size_t>(n * F + f)] * w[static_cast<size_t>(v * F + f)];
      z[static_cast<size_t>(n * C + v)] = s + b[static_cast<size_t>(v)];
    }
  fastloss::RowwiseCall rc;
  rc.outer = N;
  rc.classes = C;
  rc.inputs[0] = {z.data(), {C, 1, 0}};
  rc.grads[0] = {g.data(), {C, 1, 0}};
  rc.target = {y.data(), {1, 0, 0}};
  rc.weight = {cw.data(), {0, 1, 0}};
  rc.want_grad = true;
  fastloss::CrossEntropyOptions o;
  o.label_smoothing = 0.1;
  o.store(rc.options);
  LceResult want;
  want.value = fastloss::row_loss(fastloss::RowLoss::CrossEntropy, fastloss::DType::Float64, rc);
  want.gx.assign(static_cast<size_t>(N * F), 0);
  want.gw.assign(static_cast<size_t>(C * F), 0);
  want.gb.assign(static_cast<size_t>(C), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t v = 0; v < C; ++v) {
      const double gv = g[static_cast<size_t>(n * C + v)];
      want.gb[static_cast<size_t>(v)] += gv;
      for (int64_t f = 0; f < F; ++f) {
        want.gx[static_cast<size_t>(n * F + f)] += gv * w[static_cast<size_t>(v * F + f)];
        want.gw[static_cast<size_t>(v * F + f)] += gv * x[static_cast<size_t>(n * F + f)];
      }
    }
  const LceResult got = run_lce(N, F, C, x, w, b, y, cw, 0, false);
  expect(std::fabs(got.value - want.value) <= 1e-12 * std::fabs(want.value) && close_to(got.gx, want.gx, 1e-10) &&
             close_to(got.gw, want.gw, 1e-10) && close_to(got.gb, want.gb, 1e-10),
         "linear_cross_entropy: cross_entropy of the explicit logits, and the chain rule's gradients");
  for (int64_t chunk : {int64_t(1), int64_t(7), int64_t(1000)}) {
    const LceResult r = run_lce(N, F, C, x, w, b, y, cw, chunk, chunk == 7);
    expect(std::fabs(r.value - want.value) <= 1e-12 * std::fabs(want.value) && close_to(r.gw, want.gw, 1e-10) &&
               close_to(r.gx, want.gx, 1e-10) && close_to(r.gb, want.gb, 1e-10),
           "linear_cross_entropy: chunk " + std::to_string(chunk));
  }
  // The built-in GEMM: the same bits on 1 and 4 threads and on every ISA level.
  const int before = fastloss::get_num_threads();
  for (const std::string& isa : levels) {
    fastloss::select_isa(isa.c_str());
    for (int threads : {1, 4}) {
      fastloss::set_num_threads(threads);
      const LceResult r = run_lce(N, F, C, x, w, b, y, cw, 0, false);
      expect(same_bits(r.value, got.value) && same_bits(r.gx, got.gx) && same_bits(r.gw, got.gw) &&
                 same_bits(r.gb, got.gb),
             "linear_cross_entropy: the same bits on " + isa + " with " + std::to_string(threads) + " threads");
    }
  }
  fastloss::set_num_threads(before);
  fastloss::select_isa(levels.back().c_str());
  // The C ABI with a caller's GEMM (and a column-major grad_input).
  fastloss_linear_cross_entropy_call cc;
  fastloss_linear_cross_entropy_call_init(&cc);
  cc.rows = N;
  cc.features = F;
  cc.classes = C;
  cc.input = {x.data(), {F, 1}};
  cc.linear_weight = {w.data(), {F, 1}};
  cc.linear_bias = b.data();
  cc.target = {y.data(), {1, 0, 0}};
  cc.weight = {cw.data(), {0, 1, 0}};
  cc.label_smoothing = 0.1;
  cc.want_grad = 1;
  cc.chunk_size = 50;
  cc.dgemm = &naive_dgemm;
  std::vector<double> gx_t(static_cast<size_t>(N * F), -7), gw(static_cast<size_t>(C * F), -7),
      gb(static_cast<size_t>(C), -7);
  cc.grad_input = {gx_t.data(), {1, N}};
  cc.grad_linear_weight = {gw.data(), {F, 1}};
  cc.grad_linear_bias = gb.data();
  size_t bytes = 0;
  expect(fastloss_linear_cross_entropy_workspace_size(FASTLOSS_FLOAT64, &cc, 1, &bytes) == FASTLOSS_OK,
         "C: linear_cross_entropy workspace size");
  std::vector<unsigned char> ws(bytes);
  double value = 0;
  const fastloss_status s = fastloss_linear_cross_entropy(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value);
  std::vector<double> gx(gx_t.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t f = 0; f < F; ++f) gx[static_cast<size_t>(n * F + f)] = gx_t[static_cast<size_t>(f * N + n)];
  expect(s == FASTLOSS_OK && std::fabs(value - want.value) <= 1e-12 * std::fabs(want.value) &&
             close_to(gx, want.gx, 1e-10) && close_to(gw, want.gw, 1e-10) && close_to(gb, want.gb, 1e-10),
         std::string("C: linear_cross_entropy with a caller's dgemm: ") + fastloss_last_error());
  // Errors: a class index out of range, a short workspace, a stride beyond the address range; nothing written.
  std::fill(gw.begin(), gw.end(), -7.0);
  y[7] = C;
  expect(fastloss_linear_cross_entropy(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value) == FASTLOSS_ERROR_INDEX &&
             std::strstr(fastloss_last_error(), "class index 270") != nullptr,
         "C: linear_cross_entropy index error");
  y[7] = 0;
  expect(fastloss_linear_cross_entropy(FASTLOSS_FLOAT64, &cc, ws.data(), 100, &value) ==
             FASTLOSS_ERROR_INVALID_ARGUMENT && std::strstr(fastloss_last_error(), "workspace") != nullptr,
         "C: linear_cross_entropy short workspace");
  cc.linear_weight.strides[1] = INT64_MAX / 3;
  expect(fastloss_linear_cross_entropy(FASTLOSS_FLOAT64, &cc, ws.data(), ws.size(), &value) ==
             FASTLOSS_ERROR_INVALID_ARGUMENT && std::strstr(fastloss_last_error(), "linear_weight.strides") != nullptr,
         "C: linear_cross_entropy stride beyond the address range");
  bool untouched = true;
  for (double v : gw) untouched = untouched && v == -7;
  expect(untouched, "C: linear_cross_entropy errors write nothing");
}

int main() {
  check_errors();
  check_concurrent_callers();
  check_c_abi();
  const struct {
    int64_t rows, cols;
  } shapes[] = {{1, 1}, {1, 17}, {3, 8193}, {64, 1000}, {37, 777}, {7, 0}};
  std::string isas = fastloss::available_isas();
  std::vector<std::string> levels;
  for (size_t start = 0; start < isas.size();) {
    size_t comma = isas.find(',', start);
    if (comma == std::string::npos) comma = isas.size();
    levels.push_back(isas.substr(start, comma - start));
    start = comma + 1;
  }
  for (const std::string& isa : levels) {
    expect(fastloss::select_isa(isa.c_str()), "select " + isa);
    for (int id = 0; id < fastloss::kNumLosses; ++id)
      for (const auto& s : shapes) {
        check_loss<float>(static_cast<fastloss::Loss>(id), s.rows, s.cols);
        check_loss<double>(static_cast<fastloss::Loss>(id), s.rows, s.cols);
      }
  }
  // Every level gives the same bits (no FMA contraction; the summation order
  // does not depend on the vector width; the vector math is exact-rounding
  // identical across levels) — except the float32 transcendental losses,
  // whose loss_* math (math.h) fuses multiply-adds on avx2/avx512: those agree
  // bitwise between avx2 and avx512 and to a few ulp with baseline
  // (tests/cases.py marks them fma_math; docs/api.md, Accuracy and determinism).
  for (int id = 0; id < fastloss::kNumLosses; ++id) {
    const auto loss = static_cast<fastloss::Loss>(id);
    const bool fma_math = is_fma_math(fastloss::loss_info(loss).name);
    fastloss::select_isa(levels.front().c_str());
    const Results<float> f = run<float>(loss, 37, 777, kContiguous, true);
    const Results<double> d = run<double>(loss, 37, 777, kContiguous, true);
    std::vector<Results<float>> fma_levels;
    for (const std::string& isa : levels) {
      fastloss::select_isa(isa.c_str());
      const Results<float> fi = run<float>(loss, 37, 777, kContiguous, true);
      if (fma_math && isa != "baseline") {
        expect(close(fi, f, 2e-5), std::string(fastloss::loss_info(loss).name) + " f32: " + isa + " near " +
                                       levels.front());
        if (!fma_levels.empty())
          expect(same(fi, fma_levels.front()), std::string(fastloss::loss_info(loss).name) + " f32: " + isa +
                                                   " vs the other FMA level");
        fma_levels.push_back(fi);
        continue;
      }
      expect(same(fi, f),
             std::string(fastloss::loss_info(loss).name) + " f32: " + isa + " vs " + levels.front());
      expect(same(run<double>(loss, 37, 777, kContiguous, true), d),
             std::string(fastloss::loss_info(loss).name) + " f64: " + isa + " vs " + levels.front());
    }
  }
  check_ctc(levels);
  check_typed_api();
  check_linear_cross_entropy(levels);
  for (const std::string& isa : levels) {
    fastloss::select_isa(isa.c_str());
    for (int id = 0; id < fastloss::kNumRowLosses; ++id) {
      check_row_loss<float>(id);
      check_row_loss<double>(id);
    }
  }
  expect(!fastloss::select_isa("no-such-isa"), "unknown isa rejected");
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures == 0 ? 0 : 1;
}
