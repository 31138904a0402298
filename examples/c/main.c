/* fastloss from C: mean squared error and its gradient over float32 arrays,
 * against the installed package (see examples/c/CMakeLists.txt). */
#include <fastloss.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  if (fastloss_abi_version() != FASTLOSS_ABI_VERSION) {
    fprintf(stderr, "fastloss: header ABI %d, library ABI %d\n", FASTLOSS_ABI_VERSION, fastloss_abi_version());
    return 1;
  }
  enum { N = 1000 };
  static float x[N], y[N], grad[N];
  for (int i = 0; i < N; ++i) {
    x[i] = (float)i / N;
    y[i] = 0.5f;
  }
  const int mse = fastloss_loss_id("mse_loss");
  fastloss_elementwise_call call;
  fastloss_call_init(&call);
  call.ndim = 1;
  call.shape[0] = N;
  call.inputs[0].data = x;
  call.inputs[0].strides[0] = 1;
  call.inputs[1].data = y;
  call.inputs[1].strides[0] = 1;

  double value;
  if (fastloss_reduce(mse, FASTLOSS_FLOAT32, FASTLOSS_REDUCTION_MEAN, &call, &value) != FASTLOSS_OK) {
    fprintf(stderr, "fastloss: %s\n", fastloss_last_error());
    return 1;
  }
  /* The gradient of the mean: d/dx = 2 (x - y) / N. */
  call.want_value = 0;
  call.want_grad = 1;
  call.grad_scale = 1.0 / N;
  call.grads[0].data = grad;
  call.grads[0].strides[0] = 1;
  if (fastloss_elementwise(mse, FASTLOSS_FLOAT32, &call, NULL) != FASTLOSS_OK) {
    fprintf(stderr, "fastloss: %s\n", fastloss_last_error());
    return 1;
  }
  double expected = 0;
  for (int i = 0; i < N; ++i) expected += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
  expected /= N;
  const float g0 = 2.0f * (x[0] - y[0]) / N;
  printf("fastloss %s (%s): mse_loss = %.9g (expected %.9g), grad[0] = %.9g (expected %.9g)\n", fastloss_version(),
         fastloss_current_isa(), value, expected, grad[0], g0);

  /* Errors come back as a status and a message naming the argument. */
  call.ndim = 99;
  if (fastloss_elementwise(mse, FASTLOSS_FLOAT32, &call, NULL) != FASTLOSS_ERROR_INVALID_ARGUMENT ||
      strstr(fastloss_last_error(), "ndim") == NULL) {
    fprintf(stderr, "expected an ndim error, got: %s\n", fastloss_last_error());
    return 1;
  }
  return fabs(value - expected) <= 1e-6 * expected && fabsf(grad[0] - g0) <= 1e-6f * fabsf(g0) ? 0 : 1;
}
