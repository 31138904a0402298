// The C++ API used without Python: every pointwise loss on every available
// ISA level, contiguous, strided, broadcast and negative-stride layouts,
// against a plain double-precision loop; bitwise equality across thread
// counts. Built with -DFASTLOSS_BUILD_TESTS=ON (and -DFASTLOSS_SANITIZE=ON in
// CI, so ASan/UBSan watch every access). Exit code 0 = pass.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <thread>
#include <string>
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

double loss_of(fastloss::Pointwise loss, double x, double y, double p) {
  const double d = x - y, z = std::fabs(d);
  switch (loss) {
    case fastloss::Pointwise::L1: return z;
    case fastloss::Pointwise::Mse: return d * d;
    case fastloss::Pointwise::SmoothL1: return p == 0 ? z : (z < p ? 0.5 * z * z / p : z - 0.5 * p);
    case fastloss::Pointwise::Huber: return z < p ? 0.5 * z * z : p * (z - 0.5 * p);
    case fastloss::Pointwise::Sum: return x;
  }
  return 0;
}

double grad_of(fastloss::Pointwise loss, double x, double y, double p) {
  const double d = x - y;
  const double s = d > 0 ? 1 : (d < 0 ? -1 : 0);
  switch (loss) {
    case fastloss::Pointwise::L1: return s;
    case fastloss::Pointwise::Mse: return 2 * d;
    case fastloss::Pointwise::SmoothL1: return p == 0 ? s : (std::fabs(d) < p ? d / p : s);
    case fastloss::Pointwise::Huber: return std::fabs(d) < p ? d : p * s;
    case fastloss::Pointwise::Sum: return 1;
  }
  return 0;
}

// A rows x cols view of `x` (row stride `rs`, column stride `cs`, elements),
// against a target row broadcast over rows (stride 0).
template <class T>
void check_layout(fastloss::Pointwise loss, const char* name, int64_t rows, int64_t cols, int64_t rs,
                  int64_t cs, double tol) {
  std::mt19937 rng(42);
  std::normal_distribution<double> normal;
  const int64_t span = (rows - 1) * std::abs(rs) + (cols - 1) * std::abs(cs) + 1;
  std::vector<T> xbuf(span), ybuf(cols), grad(rows * cols), loss_out(rows * cols);
  for (auto& v : xbuf) v = static_cast<T>(normal(rng));
  for (auto& v : ybuf) v = static_cast<T>(normal(rng));
  // Start so that negative strides stay inside the buffer.
  T* x0 = xbuf.data() + (rs < 0 ? (rows - 1) * -rs : 0) + (cs < 0 ? (cols - 1) * -cs : 0);
  const double param = 0.7;
  fastloss::PointwiseArgs a;
  a.ndim = 2;
  a.shape[0] = rows;
  a.shape[1] = cols;
  a.input.data = x0;
  a.input.strides[0] = rs;
  a.input.strides[1] = cs;
  a.target.data = ybuf.data();
  a.target.strides[0] = 0;
  a.target.strides[1] = 1;
  a.param = param;
  a.grad_scale = 0.5;
  const auto dtype = sizeof(T) == 4 ? fastloss::DType::Float32 : fastloss::DType::Float64;

  double expect_sum = 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) expect_sum += loss_of(loss, x0[r * rs + c * cs], ybuf[c], param);

  fastloss::set_num_threads(1);
  const double sum1 = fastloss::pointwise(loss, dtype, a);
  std::string what = std::string(name) + " " + std::to_string(rows) + "x" + std::to_string(cols) +
                     " strides " + std::to_string(rs) + "," + std::to_string(cs) + " isa " +
                     fastloss::current_isa();
  expect(std::fabs(sum1 - expect_sum) <= tol * (1 + std::fabs(expect_sum)), what + ": sum");
  for (int threads : {2, 3, 8}) {
    fastloss::set_num_threads(threads);
    const double sum_n = fastloss::pointwise(loss, dtype, a);
    expect(std::memcmp(&sum_n, &sum1, sizeof(double)) == 0, what + ": bitwise across threads");
  }
  if (loss == fastloss::Pointwise::Sum) return;
  // Fused value ('none') + gradient into contiguous outputs.
  a.loss_out.data = loss_out.data();
  a.loss_out.strides[0] = cols;
  a.loss_out.strides[1] = 1;
  a.grad_out.data = grad.data();
  a.grad_out.strides[0] = cols;
  a.grad_out.strides[1] = 1;
  a.want_grad = true;
  fastloss::pointwise(loss, dtype, a);
  bool ok = true;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double xv = x0[r * rs + c * cs], yv = ybuf[c];
      const double l = loss_of(loss, xv, yv, param), g = 0.5 * grad_of(loss, xv, yv, param);
      ok = ok && std::fabs(loss_out[r * cols + c] - l) <= tol * (1 + std::fabs(l));
      ok = ok && std::fabs(grad[r * cols + c] - g) <= tol * (1 + std::fabs(g));
    }
  expect(ok, what + ": none + grad");
}

// Arguments the API can check are rejected with std::invalid_argument before
// anything is read or written (the output buffer keeps its sentinel).
void check_errors() {
  float x[4] = {1, 2, 3, 4}, y[4] = {0, 0, 0, 0}, g[4] = {7, 7, 7, 7};
  auto base = [&] {
    fastloss::PointwiseArgs a;
    a.ndim = 1;
    a.shape[0] = 4;
    a.input.data = x;
    a.input.strides[0] = 1;
    a.target.data = y;
    a.target.strides[0] = 1;
    a.grad_out.data = g;
    a.grad_out.strides[0] = 1;
    a.want_grad = true;
    return a;
  };
  const auto Mse = fastloss::Pointwise::Mse;
  const auto F32 = fastloss::DType::Float32;
  struct Bad {
    const char* what;
    fastloss::Pointwise loss;
    fastloss::DType dtype;
    void (*edit)(fastloss::PointwiseArgs&);
  } bad[] = {
      {"null target", Mse, F32, [](fastloss::PointwiseArgs& a) { a.target.data = nullptr; }},
      {"null input", Mse, F32, [](fastloss::PointwiseArgs& a) { a.input.data = nullptr; }},
      {"null grad_out", Mse, F32, [](fastloss::PointwiseArgs& a) { a.grad_out.data = nullptr; }},
      {"ndim 9", Mse, F32, [](fastloss::PointwiseArgs& a) { a.ndim = 9; }},
      {"ndim -1", Mse, F32, [](fastloss::PointwiseArgs& a) { a.ndim = -1; }},
      {"negative shape", Mse, F32, [](fastloss::PointwiseArgs& a) { a.shape[0] = -4; }},
      {"numel overflow", Mse, F32,
       [](fastloss::PointwiseArgs& a) {
         a.ndim = 3;
         a.shape[0] = a.shape[1] = a.shape[2] = int64_t(1) << 22;
       }},
      {"nothing to compute", Mse, F32,
       [](fastloss::PointwiseArgs& a) { a.want_value = a.want_grad = false; }},
      {"unknown loss", static_cast<fastloss::Pointwise>(99), F32, [](fastloss::PointwiseArgs&) {}},
      {"unknown dtype", Mse, static_cast<fastloss::DType>(7), [](fastloss::PointwiseArgs&) {}},
      {"negative beta", fastloss::Pointwise::SmoothL1, F32, [](fastloss::PointwiseArgs& a) { a.param = -1; }},
      {"NaN beta", fastloss::Pointwise::SmoothL1, F32, [](fastloss::PointwiseArgs& a) { a.param = NAN; }},
      {"negative delta", fastloss::Pointwise::Huber, F32, [](fastloss::PointwiseArgs& a) { a.param = -1; }},
      {"Sum with a gradient", fastloss::Pointwise::Sum, F32, [](fastloss::PointwiseArgs&) {}},
  };
  for (const Bad& b : bad) {
    fastloss::PointwiseArgs a = base();
    b.edit(a);
    bool threw = false;
    try {
      fastloss::pointwise(b.loss, b.dtype, a);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    expect(threw, std::string("invalid_argument for ") + b.what);
    expect(g[0] == 7 && g[3] == 7, std::string("nothing written for ") + b.what);
    if (a.ndim > 8) continue;
    threw = false;
    try {
      fastloss::coalesce(a);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (a.ndim < 0 || a.shape[0] < 0 || a.shape[0] == int64_t(1) << 22) expect(threw, std::string("coalesce: ") + b.what);
  }
  // Empty arrays read nothing: absent pointers are fine there.
  fastloss::PointwiseArgs empty;
  empty.ndim = 1;
  empty.shape[0] = 0;
  expect(fastloss::pointwise(Mse, F32, empty) == 0.0, "empty call without pointers");
}

// Several threads calling at once (one owns the pool, the others run on their
// own thread) get the single-threaded bits.
void check_concurrent_callers() {
  const int64_t n = 3 * 8192 * 16 + 77;
  std::vector<double> x(n), y(n);
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  for (auto& v : x) v = normal(rng);
  for (auto& v : y) v = normal(rng);
  fastloss::PointwiseArgs a;
  a.ndim = 1;
  a.shape[0] = n;
  a.input.data = x.data();
  a.input.strides[0] = 1;
  a.target.data = y.data();
  a.target.strides[0] = 1;
  fastloss::set_num_threads(1);
  const double one = fastloss::pointwise(fastloss::Pointwise::Mse, fastloss::DType::Float64, a);
  fastloss::set_num_threads(2);
  std::vector<double> got(6 * 20);
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t)
    callers.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k)
        got[t * 20 + k] = fastloss::pointwise(fastloss::Pointwise::Mse, fastloss::DType::Float64, a);
    });
  for (auto& c : callers) c.join();
  bool same = true;
  for (double v : got) same = same && std::memcmp(&v, &one, sizeof v) == 0;
  expect(same, "concurrent callers: bitwise the one-thread result");
  // Huge settings are capped, never a crash.
  fastloss::set_num_threads(1 << 30);
  expect(fastloss::get_num_threads() >= 1 && fastloss::get_num_threads() <= 4096, "thread count capped");
  const double capped = fastloss::pointwise(fastloss::Pointwise::Mse, fastloss::DType::Float64, a);
  expect(std::memcmp(&capped, &one, sizeof one) == 0, "capped thread count: same bits");
  fastloss::set_num_threads(2);
}

}  // namespace

int main() {
  check_errors();
  check_concurrent_callers();
  const struct {
    fastloss::Pointwise loss;
    const char* name;
  } losses[] = {{fastloss::Pointwise::L1, "l1"},
                {fastloss::Pointwise::Mse, "mse"},
                {fastloss::Pointwise::SmoothL1, "smooth_l1"},
                {fastloss::Pointwise::Huber, "huber"},
                {fastloss::Pointwise::Sum, "sum"}};
  const struct {
    int64_t rows, cols, rs, cs;
  } layouts[] = {{1, 1, 1, 1},      {1, 17, 17, 1},    {3, 8193, 8193, 1}, {64, 1000, 1000, 1},
                 {50, 999, 2000, 2}, {40, 777, -777, -1}, {200, 300, 1, 200}, {7, 0, 1, 1}};
  std::string isas = fastloss::available_isas();
  size_t start = 0;
  while (start < isas.size()) {
    size_t comma = isas.find(',', start);
    if (comma == std::string::npos) comma = isas.size();
    const std::string isa = isas.substr(start, comma - start);
    start = comma + 1;
    expect(fastloss::select_isa(isa.c_str()), "select " + isa);
    for (const auto& l : losses)
      for (const auto& s : layouts) {
        check_layout<float>(l.loss, l.name, s.rows, s.cols, s.rs, s.cs, 2e-5);
        check_layout<double>(l.loss, l.name, s.rows, s.cols, s.rs, s.cs, 1e-12);
      }
  }
  expect(!fastloss::select_isa("no-such-isa"), "unknown isa rejected");
  std::printf("%s: %d failures\n", failures ? "FAIL" : "ok", failures);
  return failures == 0 ? 0 : 1;
}
