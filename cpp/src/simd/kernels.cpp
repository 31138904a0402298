// The kernel table of one instruction-set level (compiled once per level).
#include "simd/kernel_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

double pointwise_f32(Pointwise loss, const PointwiseArgs& a);  // losses/regression.cpp
double pointwise_f64(Pointwise loss, const PointwiseArgs& a);
void vector_math_f32(int fn, const void* in, void* out, int64_t n);  // simd/math_kernels.cpp
void vector_math_f64(int fn, const void* in, void* out, int64_t n);

#define FASTLOSS_STR2(x) #x
#define FASTLOSS_STR(x) FASTLOSS_STR2(x)
extern const detail::KernelTable kKernels;
const detail::KernelTable kKernels = {FASTLOSS_STR(FASTLOSS_ISA_NS), {pointwise_f32, pointwise_f64},
                                       {vector_math_f32, vector_math_f64}};

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
