// math.h over contiguous arrays for one ISA level (vectors, then the scalar
// tail), for the tests: the losses call math.h inline, not these.
#include <cstdint>

#include "simd/math.h"
#include "simd/math_functions.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {
namespace {

template <class T, class F>
void map(F f, const T* in, T* out, int64_t n) {
  using V = typename VecOf<T>::type;
  int64_t i = 0;
  for (; i + kLanes<T> <= n; i += kLanes<T>) store(out + i, f(load<V>(in + i)));
  for (; i < n; ++i) out[i] = f(in[i]);
}

template <class T>
void vector_math(int fn, const void* in_bytes, void* out_bytes, int64_t n) {
  const T* in = static_cast<const T*>(in_bytes);
  T* out = static_cast<T*>(out_bytes);
  switch (static_cast<detail::MathFn>(fn)) {
    case detail::MathFn::Exp: return map<T>([](auto v) { return exp(v); }, in, out, n);
    case detail::MathFn::Expm1: return map<T>([](auto v) { return expm1(v); }, in, out, n);
    case detail::MathFn::Log: return map<T>([](auto v) { return log(v); }, in, out, n);
    case detail::MathFn::Log1p: return map<T>([](auto v) { return log1p(v); }, in, out, n);
    case detail::MathFn::Softplus: return map<T>([](auto v) { return softplus(v); }, in, out, n);
    case detail::MathFn::LogSigmoid: return map<T>([](auto v) { return log_sigmoid(v); }, in, out, n);
    case detail::MathFn::Sigmoid: return map<T>([](auto v) { return sigmoid(v); }, in, out, n);
    case detail::MathFn::SoftplusFused:
      return map<T>([](auto v) { decltype(v) sp, sg; softplus_and_sigmoid(v, sp, sg); return sp; }, in, out, n);
    case detail::MathFn::SigmoidFused:
      return map<T>([](auto v) { decltype(v) sp, sg; softplus_and_sigmoid(v, sp, sg); return sg; }, in, out, n);
    case detail::MathFn::LossExp: return map<T>([](auto v) { return loss_exp(v); }, in, out, n);
    case detail::MathFn::LossLog: return map<T>([](auto v) { return loss_log(v); }, in, out, n);
    case detail::MathFn::LossLog1p: return map<T>([](auto v) { return loss_log1p(v); }, in, out, n);
    case detail::MathFn::LossSoftplus:
      return map<T>([](auto v) { decltype(v) sp{}, sg{}; loss_logistic<true, 0>(v, sp, sg); return sp; }, in, out, n);
    case detail::MathFn::LossSigmoid:
      return map<T>([](auto v) { decltype(v) sp{}, sg{}; loss_logistic<false, 1>(v, sp, sg); return sg; }, in, out, n);
    case detail::MathFn::LossLogUnit: return map<T>([](auto v) { return loss_log<true>(v); }, in, out, n);
    case detail::MathFn::LossLog1pUnit: return map<T>([](auto v) { return loss_log1p<true>(v); }, in, out, n);
    case detail::MathFn::Tanh: return map<T>([](auto v) { return tanh(v); }, in, out, n);
  }
}

}  // namespace

void vector_math_f32(int fn, const void* in, void* out, int64_t n) { vector_math<float>(fn, in, out, n); }
void vector_math_f64(int fn, const void* in, void* out, int64_t n) { vector_math<double>(fn, in, out, n); }

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
