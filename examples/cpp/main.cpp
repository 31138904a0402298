// fastloss from C++: binary cross entropy with logits over float64 arrays,
// value and gradient in one pass, against the installed package.
#include <fastloss/fastloss.h>

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

  try {  // bad arguments throw std::invalid_argument naming the field
    call.ndim = -1;
    fastloss::elementwise(fastloss::Loss::Mse, fastloss::DType::Float64, call);
    return 1;
  } catch (const std::invalid_argument& e) {
    std::printf("invalid_argument: %s\n", e.what());
  }
  return std::fabs(mean - expected) <= 1e-12 * expected && std::fabs(grad[0] - g0) <= 1e-12 * std::fabs(g0) ? 0 : 1;
}
