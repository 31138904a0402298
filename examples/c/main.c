/* fastloss from C: mean squared error and its gradient over float32 arrays,
 * then cross entropy (a row-wise loss) with class indices, against the
 * installed package (see examples/c/CMakeLists.txt). */
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

  /* A row-wise loss: cross entropy of (4, 3) float32 logits against int32
   * class indices, label smoothing 0.1 (set by the option's name), the mean
   * and its gradient from one call. */
  static const float logits[4][3] = {{2, 0, -1}, {0.5f, 0.5f, 0}, {-1, 3, 0}, {0, 0, 0}};
  static const int32_t labels[4] = {0, 2, 1, -100}; /* -100: torch's ignore_index, the row does not count */
  static float ce_grad[4][3];
  const int ce = fastloss_rowwise_loss_id("cross_entropy");
  fastloss_rowwise_call rc;
  if (fastloss_rowwise_call_init(ce, &rc) != FASTLOSS_OK) { /* torch's defaults, reduction MEAN */
    fprintf(stderr, "fastloss: %s\n", fastloss_last_error());
    return 1;
  }
  rc.outer = 4; /* (N, C): outer = N, classes = C, inner = 1 */
  rc.classes = 3;
  rc.inputs[0].data = (void*)logits;
  rc.inputs[0].strides[0] = 3;
  rc.inputs[0].strides[1] = 1;
  rc.target.data = (void*)labels;
  rc.target.strides[0] = 1;
  rc.target_type = FASTLOSS_ELEMENT_INT32;
  rc.options[fastloss_rowwise_option(ce, "label_smoothing")] = 0.1;
  rc.want_grad = 1;
  rc.grads[0].data = ce_grad;
  rc.grads[0].strides[0] = 3;
  rc.grads[0].strides[1] = 1;
  double ce_value;
  if (fastloss_rowwise(ce, FASTLOSS_FLOAT32, &rc, &ce_value) != FASTLOSS_OK) {
    fprintf(stderr, "fastloss: %s\n", fastloss_last_error());
    return 1;
  }
  /* By hand: (1 - e) (-log p_y) + (e / C) sum_c (-log p_c) per counted row, mean over 3 rows. */
  double ce_expected = 0;
  for (int r = 0; r < 3; ++r) {
    double m = logits[r][0], z = 0, all = 0;
    for (int c = 1; c < 3; ++c) m = logits[r][c] > m ? logits[r][c] : m;
    for (int c = 0; c < 3; ++c) z += exp(logits[r][c] - m);
    for (int c = 0; c < 3; ++c) all += -(logits[r][c] - m - log(z));
    ce_expected += 0.9 * -(logits[r][labels[r]] - m - log(z)) + 0.1 / 3 * all;
  }
  ce_expected /= 3;
  printf("cross_entropy = %.7g (expected %.7g), grad[3][0] = %g (an ignored row: 0)\n", ce_value, ce_expected,
         ce_grad[3][0]);
  if (fabs(ce_value - ce_expected) > 1e-6 * ce_expected || ce_grad[3][0] != 0) return 1;

  /* A class index out of range: FASTLOSS_ERROR_INDEX, nothing written. */
  static const int32_t bad_labels[4] = {0, 2, 3, 1};
  rc.target.data = (void*)bad_labels;
  if (fastloss_rowwise(ce, FASTLOSS_FLOAT32, &rc, &ce_value) != FASTLOSS_ERROR_INDEX) return 1;
  printf("index error: %s\n", fastloss_last_error());

  /* Errors come back as a status and a message naming the argument. */
  call.ndim = 99;
  if (fastloss_elementwise(mse, FASTLOSS_FLOAT32, &call, NULL) != FASTLOSS_ERROR_INVALID_ARGUMENT ||
      strstr(fastloss_last_error(), "ndim") == NULL) {
    fprintf(stderr, "expected an ndim error, got: %s\n", fastloss_last_error());
    return 1;
  }
  return fabs(value - expected) <= 1e-6 * expected && fabsf(grad[0] - g0) <= 1e-6f * fabsf(g0) ? 0 : 1;
}
