// The vector math functions reachable through the kernel table, by number, so
// tests can run math.h on every ISA level (cpp/src/simd/math_kernels.cpp,
// cpp/bindings/register_math.cpp).
#pragma once

namespace fastloss {
namespace detail {

// SoftplusFused/SigmoidFused: the two outputs of softplus_and_sigmoid.
enum class MathFn : int { Exp, Expm1, Log, Log1p, Softplus, LogSigmoid, Sigmoid, SoftplusFused, SigmoidFused };

// Python-facing names, in MathFn order.
constexpr const char* kMathFnNames[] = {"exp", "expm1", "log", "log1p", "softplus", "log_sigmoid", "sigmoid",
                                           "softplus_fused", "sigmoid_fused"};
constexpr int kNumMathFns = sizeof(kMathFnNames) / sizeof(kMathFnNames[0]);
static_assert(kNumMathFns == static_cast<int>(MathFn::SigmoidFused) + 1, "one name per MathFn");

}  // namespace detail
}  // namespace fastloss
