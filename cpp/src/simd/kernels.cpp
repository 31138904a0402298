// The kernel table of one instruction-set level (compiled once per level),
// filled by each loss family's source file.
#include "simd/kernel_table.h"

namespace fastloss {
namespace FASTLOSS_ISA_NS {

void fill_regression(detail::KernelTable& table);     // losses/regression.cpp
void fill_probabilistic(detail::KernelTable& table);  // losses/probabilistic.cpp
void fill_margin(detail::KernelTable& table);         // losses/margin.cpp
void fill_classification(detail::KernelTable& table);  // losses/classification.cpp
void fill_ctc(detail::KernelTable& table);            // losses/ctc.cpp
void fill_embedding(detail::KernelTable& table);       // losses/embedding.cpp
void fill_gemm(detail::KernelTable& table);            // simd/gemm_kernels.cpp
void vector_math_f32(int fn, const void* in, void* out, int64_t n);  // simd/math_kernels.cpp
void vector_math_f64(int fn, const void* in, void* out, int64_t n);
void half_to_float_kernel(const uint16_t* src, float* dst, int64_t n);  // simd/half_kernels.cpp
void float_to_half_kernel(const float* src, uint16_t* dst, int64_t n);

#define FASTLOSS_STR2(x) #x
#define FASTLOSS_STR(x) FASTLOSS_STR2(x)

const detail::KernelTable& kernels() {
  static const detail::KernelTable table = [] {
    detail::KernelTable t{};
    t.name = FASTLOSS_STR(FASTLOSS_ISA_NS);
    fill_regression(t);
    fill_probabilistic(t);
    fill_margin(t);
    fill_classification(t);
    fill_ctc(t);
    fill_embedding(t);
    fill_gemm(t);
    t.vector_math[0] = vector_math_f32;
    t.vector_math[1] = vector_math_f64;
    t.half_to_float = half_to_float_kernel;
    t.float_to_half = float_to_half_kernel;
    return t;
  }();
  return table;
}

}  // namespace FASTLOSS_ISA_NS
}  // namespace fastloss
