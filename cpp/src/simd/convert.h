// float16 <-> float32 conversion of whole N-d strided arrays on the selected
// ISA level, bitwise equal to NumPy's astype (simd/half_kernels.cpp says how).
// Large arrays are split over the thread pool in fixed tasks; every element is
// converted on its own, so no result depends on the thread count, the layout
// or the level.
#pragma once

#include <cstdint>

namespace fastloss {
namespace detail {

constexpr int kMaxConvertDims = 64;  // NumPy's NPY_MAXDIMS

// Converts src into dst, both of `shape` (ndim in [0, kMaxConvertDims]) with
// strides in elements (any sign, 0 for a broadcast src). dst must not overlap
// src nor itself. std::invalid_argument for a bad ndim or a negative extent.
void half_to_float(int ndim, const int64_t* shape, const uint16_t* src, const int64_t* src_strides, float* dst,
                   const int64_t* dst_strides);
void float_to_half(int ndim, const int64_t* shape, const float* src, const int64_t* src_strides, uint16_t* dst,
                   const int64_t* dst_strides);

}  // namespace detail
}  // namespace fastloss
