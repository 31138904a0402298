// fastloss from C++: binary cross entropy with logits over float64 arrays,
// value and gradient in one pass, then the typed API's cross entropy over
// (N, C, H) float32 logits with int64 class indices, against the installed
// package, and linear_cross_entropy (the logits never formed) against the
// cross entropy of the formed logits.
#include <fastloss/fastloss.h>
#include <fastloss/linear_cross_entropy.h>
#include <fastloss/typed.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

int main() {
  const int64_t n = 4096;
  std::vector<double> x(n), t(n), pos_weight(n, 1.0), grad(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = -4.0 + 8.0 * static_cast<double>(i) / static_cast<double>(n);
    t[i] = i % 2;
  }
  fastloss::ElementwiseCall call;
  call.ndim = 1;
  call.shape[0] = n;
  call.inputs[0] = {x.data(), {1}};
  call.inputs[1] = {t.data(), {1}};
  call.inputs[2] = {pos_weight.data(), {1}};  // read only with the has_pos_weight option
  call.grads[0] = {grad.data(), {1}};
  call.want_value = true;
  call.want_grad = true;
  call.grad_scale = 1.0 / static_cast<double>(n);  // the gradient of the mean
  const fastloss::Totals totals =
      fastloss::elementwise(fastloss::Loss::BinaryCrossEntropyWithLogits, fastloss::DType::Float64, call);
  const double mean = totals.loss / static_cast<double>(n);

  double expected = 0;
  for (int64_t i = 0; i < n; ++i)
    expected += std::max(x[i], 0.0) - x[i] * t[i] + std::log1p(std::exp(-std::fabs(x[i])));
  expected /= static_cast<double>(n);
  const double g0 = (1.0 / (1.0 + std::exp(-x[0])) - t[0]) / static_cast<double>(n);
  std::printf("fastloss (%s): bce_with_logits = %.15g (expected %.15g), grad[0] = %.15g (expected %.15g)\n",
              fastloss::current_isa(), mean, expected, grad[0], g0);

  {  // The typed API: cross entropy with label smoothing and class weights, mean and gradient in one pass.
    const int64_t N = 2, C = 4, H = 3;
    std::vector<float> logits(N * C * H), ce_grad(N * C * H);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(0.7 * static_cast<double>(i)));
    const std::vector<int64_t> labels = {0, 3, 1, 2, -100, 1};  // (N, H); -100 is ignored
    const std::vector<float> weight = {1.0f, 2.0f, 0.5f, 1.0f};
    fastloss::CrossEntropyOptions options;  // torch's defaults
    options.label_smoothing = 0.1;
    fastloss::Outputs<float> out;
    out.grads[0] = ce_grad.data();
    const double ce = fastloss::cross_entropy(logits.data(), {N, C, H}, labels.data(), options, weight.data(), out);
    // By hand: sum over counted rows of w[y] (1 - e) (-lp[y]) + (e / C) sum_c w[c] (-lp[c]), over sum of w[y].
    double num = 0, den = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t y = labels[n * H + h];
        if (y == -100) continue;
        double m = -1e300, z = 0, smooth = 0;
        for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<double>(logits[(n * C + c) * H + h]));
        for (int64_t c = 0; c < C; ++c) z += std::exp(logits[(n * C + c) * H + h] - m);
        auto lp = [&](int64_t c) { return logits[(n * C + c) * H + h] - m - std::log(z); };
        for (int64_t c = 0; c < C; ++c) smooth += weight[c] * -lp(c);
        num += weight[y] * 0.9 * -lp(y) + 0.1 / C * smooth;
        den += weight[y];
      }
    std::printf("typed cross_entropy = %.7g (expected %.7g)\n", ce, num / den);
    if (std::fabs(ce - num / den) > 1e-5 * std::fabs(num / den)) return 1;
    try {  // a class index out of range throws std::out_of_range naming it; nothing is written
      const std::vector<int64_t> bad = {0, 4, 1, 2, 0, 1};
      fastloss::cross_entropy(logits.data(), {N, C, H}, bad.data(), options, weight.data(), out);
      return 1;
    } catch (const std::out_of_range& e) {
      std::printf("out_of_range: %s\n", e.what());
    }
  }

  {  // linear_cross_entropy: x (N, F) times W (V, F)^T without the logits, the built-in GEMM, one workspace.
    const int64_t N = 3, F = 4, V = 5;
    std::vector<float> x(N * F), w(V * F), gx(N * F), gw(V * F), logits(N * V);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::cos(0.3 * static_cast<double>(i)));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(std::sin(0.5 * static_cast<double>(i)));
    const std::vector<int32_t> labels = {4, 0, 2};
    fastloss::LinearCrossEntropyCall c;  // torch's defaults, Mean
    c.rows = N, c.features = F, c.classes = V;
    c.input = {x.data(), {F, 1}};
    c.linear_weight = {w.data(), {F, 1}};
    c.target = {const_cast<int32_t*>(labels.data()), {1, 0, 0}};
    c.target_type = fastloss::ElementType::Int32;
    c.want_grad = true;
    c.grad_input = {gx.data(), {F, 1}};
    c.grad_linear_weight = {gw.data(), {F, 1}};
    std::vector<unsigned char> ws(fastloss::linear_cross_entropy_workspace_size(fastloss::DType::Float32, c, 1));
    const double lce = fastloss::linear_cross_entropy(fastloss::DType::Float32, c, ws.data(), ws.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t v = 0; v < V; ++v)
        for (int64_t f = 0; f < F; ++f) logits[n * V + v] += x[n * F + f] * w[v * F + f];
    const double ce = fastloss::cross_entropy(logits.data(), {N, V}, labels.data());
    std::printf("linear_cross_entropy = %.7g (cross_entropy of the formed logits: %.7g)\n", lce, ce);
    if (std::fabs(lce - ce) > 1e-5 * std::fabs(ce)) return 1;
  }

  try {  // bad arguments throw std::invalid_argument naming the field
    call.ndim = -1;
    fastloss::elementwise(fastloss::Loss::Mse, fastloss::DType::Float64, call);
    return 1;
  } catch (const std::invalid_argument& e) {
    std::printf("invalid_argument: %s\n", e.what());
  }
  return std::fabs(mean - expected) <= 1e-12 * expected && std::fabs(grad[0] - g0) <= 1e-12 * std::fabs(g0) ? 0 : 1;
}
