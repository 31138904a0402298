// Checks shared by the C++ entry points and the C ABI (not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fastloss/fastloss.h"

namespace fastloss {
namespace detail {

// Every class index of c.target (per row at strides [0] and [2], or rows of
// indices over the cube), in row order: std::out_of_range
// "fastloss::<function>: target: class index <as stored> (row r) is out of
// bounds ..." naming the first outside [0, classes) other than ignore
// (has_ignore), or outside [-1, classes) for rows of indices.
void check_class_indices(const RowwiseCall& c, bool rows_of_indices, int64_t ignore, bool has_ignore,
                         const char* function);  // api/row_loss.cpp

// Whether every element an array reaches lies in the address range: the
// array at `data` with strides[d] (elements) over extents[d] (d < n) of
// `elem`-byte elements spans sum_d |strides[d]| * (extents[d] - 1) elements
// on either side of data; that sum (plus one element) must not overflow
// int64 in bytes, and data minus the negative part and plus the positive part
// must not wrap around the address space. An empty axis counts as extent 1:
// an empty array reads nothing, but the drivers still form the addresses of
// its rows along the other axes (a row-wise call with no classes, CTC with no
// time steps), so those strides must fit too (found by fuzz/run.sh).
// Negative extents are other checks' business (true).
inline bool reach_fits(const void* data, const int64_t* strides, const int64_t* extents, int n, size_t elem) {
  for (int d = 0; d < n; ++d)
    if (extents[d] < 0) return true;
  int64_t below = 0, above = 0;
  for (int d = 0; d < n; ++d) {
    if (extents[d] <= 1) continue;
    const int64_t s = strides[d];
    if (s == INT64_MIN) return false;
    int64_t step;
    if (__builtin_mul_overflow(s < 0 ? -s : s, extents[d] - 1, &step)) return false;
    if (__builtin_add_overflow(s < 0 ? below : above, step, s < 0 ? &below : &above)) return false;
  }
  int64_t span, below_bytes, above_bytes;
  if (__builtin_add_overflow(below, above, &span) || __builtin_add_overflow(span, int64_t(1), &span) ||
      __builtin_mul_overflow(span, static_cast<int64_t>(elem), &span) ||
      __builtin_mul_overflow(below, static_cast<int64_t>(elem), &below_bytes) ||
      __builtin_mul_overflow(above, static_cast<int64_t>(elem), &above_bytes))
    return false;
  const uintptr_t base = reinterpret_cast<uintptr_t>(data);
  const uintptr_t top = static_cast<uintptr_t>(above_bytes) + (elem - 1);
  return static_cast<uintptr_t>(below_bytes) <= base && top <= UINTPTR_MAX - base;
}

// The message of a failed reach_fits for argument `name`.
inline std::string reach_message(const std::string& name) {
  return name + ": its strides reach beyond the address range (|stride| x (extent - 1), summed over the axes, "
                "times the element size must fit int64 and not wrap around the pointer)";
}

}  // namespace detail
}  // namespace fastloss
