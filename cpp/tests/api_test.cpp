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
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fastloss/fastloss.h"

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

int main() {
  check_errors();
  check_concurrent_callers();
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
  // identical across levels).
  for (int id = 0; id < fastloss::kNumLosses; ++id) {
    const auto loss = static_cast<fastloss::Loss>(id);
    fastloss::select_isa(levels.front().c_str());
    const Results<float> f = run<float>(loss, 37, 777, kContiguous, true);
    const Results<double> d = run<double>(loss, 37, 777, kContiguous, true);
    for (const std::string& isa : levels) {
      fastloss::select_isa(isa.c_str());
      expect(same(run<float>(loss, 37, 777, kContiguous, true), f),
             std::string(fastloss::loss_info(loss).name) + " f32: " + isa + " vs " + levels.front());
      expect(same(run<double>(loss, 37, 777, kContiguous, true), d),
             std::string(fastloss::loss_info(loss).name) + " f64: " + isa + " vs " + levels.front());
    }
  }
  expect(!fastloss::select_isa("no-such-isa"), "unknown isa rejected");
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures == 0 ? 0 : 1;
}
