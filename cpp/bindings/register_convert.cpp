// _core.half_to_float / _core.float_to_half: NumPy's float16 <-> float32
// astype, bitwise, as fast SIMD kernels on the selected ISA level (the Python
// layer's conversions for and from the kernels, python/fastloss/_validate.py).
// Any strides and shapes; the GIL is released while converting.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "simd/convert.h"

namespace py = pybind11;

namespace {

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kSwapped = '<';
#else
constexpr char kSwapped = '>';
#endif

// `obj` as a native, aligned float array of `itemsize` bytes; its strides in
// elements into `strides`.
py::array float_array(const py::handle& obj, const char* function, const char* name, py::ssize_t itemsize,
                      bool writable, std::vector<int64_t>& strides) {
  const std::string what = std::string(function) + ": " + name;
  if (!py::isinstance<py::array>(obj)) throw py::type_error(what + ": expected a numpy.ndarray");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dtype = arr.dtype();
  if (dtype.kind() != 'f' || dtype.itemsize() != itemsize)
    throw py::type_error(what + (itemsize == 2 ? ": expected float16" : ": expected float32"));
  if (dtype.byteorder() == kSwapped) throw py::value_error(what + ": byte order is not native");
  if (writable && !arr.writeable()) throw py::value_error(what + ": array is read-only");
  bool empty = false;
  for (py::ssize_t d = 0; d < arr.ndim(); ++d) empty = empty || arr.shape(d) == 0;
  strides.assign(arr.ndim(), 0);
  if (empty) return arr;
  if (reinterpret_cast<uintptr_t>(arr.data()) % itemsize != 0) throw py::value_error(what + ": array is not aligned");
  for (py::ssize_t d = 0; d < arr.ndim(); ++d) {
    if (arr.shape(d) == 1) continue;  // never stepped over
    if (arr.strides(d) % itemsize != 0) throw py::value_error(what + ": strides are not a multiple of the item size");
    strides[d] = arr.strides(d) / itemsize;
  }
  return arr;
}

template <class Src, class Dst>
void convert(const char* function, const py::handle& src_obj, const py::handle& dst_obj,
             void (*fn)(int, const int64_t*, const Src*, const int64_t*, Dst*, const int64_t*)) {
  std::vector<int64_t> src_strides, dst_strides;
  const py::array src = float_array(src_obj, function, "src", sizeof(Src), false, src_strides);
  const py::array dst = float_array(dst_obj, function, "dst", sizeof(Dst), true, dst_strides);
  if (src.ndim() != dst.ndim()) throw py::value_error(std::string(function) + ": src and dst differ in shape");
  std::vector<int64_t> shape(src.ndim());
  for (py::ssize_t d = 0; d < src.ndim(); ++d) {
    if (src.shape(d) != dst.shape(d)) throw py::value_error(std::string(function) + ": src and dst differ in shape");
    shape[d] = src.shape(d);
  }
  const auto* from = static_cast<const Src*>(src.data());
  auto* to = static_cast<Dst*>(const_cast<void*>(dst.data()));
  py::gil_scoped_release release;
  fn(static_cast<int>(shape.size()), shape.data(), from, src_strides.data(), to, dst_strides.data());
}

}  // namespace

void register_convert(py::module_& m) {
  m.def(
      "half_to_float",
      [](const py::handle& src, const py::handle& dst) {
        convert<uint16_t, float>("half_to_float", src, dst, &fastloss::detail::half_to_float);
      },
      py::arg("src"), py::arg("dst"),
      "dst[...] = src.astype(float32), bitwise, for a float16 src and a float32 dst of src's shape "
      "(any strides; native byte order, aligned; dst overlaps neither src nor itself)");
  m.def(
      "float_to_half",
      [](const py::handle& src, const py::handle& dst) {
        convert<float, uint16_t>("float_to_half", src, dst, &fastloss::detail::float_to_half);
      },
      py::arg("src"), py::arg("dst"),
      "dst[...] = src.astype(float16), bitwise (round to nearest even, overflow to inf), for a float32 src "
      "and a float16 dst of src's shape (any strides; native byte order, aligned; dst overlaps neither src "
      "nor itself)");
}
