// The vector math functions reachable through the kernel table, by number, so
// tests can run math.h on every ISA level (cpp/src/simd/math_kernels.cpp,
// cpp/bindings/register_math.cpp).
#pragma once

namespace fastloss {
namespace detail {

// SoftplusFused/SigmoidFused: the two outputs of softplus_and_sigmoid; Loss*:
// the losses' variants (loss_exp, loss_log, loss_log1p, loss_logistic);
// *Unit: loss_log<true> on [0, 1] and loss_log1p<true> on [-1, 0] (BCE's).
enum class MathFn : int { Exp, Expm1, Log, Log1p, Softplus, LogSigmoid, Sigmoid, SoftplusFused, SigmoidFused,
                          LossExp, LossLog, LossLog1p, LossSoftplus, LossSigmoid, LossLogUnit, LossLog1pUnit, Tanh };

// Python-facing names, in MathFn order.
constexpr const char* kMathFnNames[] = {"exp", "expm1", "log", "log1p", "softplus", "log_sigmoid", "sigmoid",
                                           "softplus_fused", "sigmoid_fused", "loss_exp", "loss_log",
                                           "loss_log1p", "loss_softplus", "loss_sigmoid", "loss_log_unit",
                                           "loss_log1p_unit", "tanh"};
constexpr int kNumMathFns = sizeof(kMathFnNames) / sizeof(kMathFnNames[0]);
static_assert(kNumMathFns == static_cast<int>(MathFn::Tanh) + 1, "one name per MathFn");

}  // namespace detail
}  // namespace fastloss
