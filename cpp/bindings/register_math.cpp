// _core._vector_math: math.h's functions over a contiguous float32/float64
// array on the selected ISA level, for tests and the vector-math benchmark
// (the losses call math.h inline).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

#include "simd/kernel_table.h"
#include "simd/math_functions.h"

namespace py = pybind11;

namespace {

template <class T>
py::array_t<T> run(int fn, const py::array& x) {
  auto in = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(x);
  py::array_t<T> out(in.request().shape);
  const int dtype = sizeof(T) == sizeof(float) ? 0 : 1;  // fastloss::DType order
  const auto kernel = fastloss::detail::current_table().vector_math[dtype];
  const T* src = in.data();
  T* dst = out.mutable_data();
  const int64_t n = in.size();
  {
    py::gil_scoped_release release;
    kernel(fn, src, dst, n);
  }
  return out;
}

}  // namespace

void register_math(py::module_& m) {
  m.def(
      "_vector_math",
      [](const std::string& name, const py::array& x) -> py::array {
        int fn = -1;
        for (int i = 0; i < fastloss::detail::kNumMathFns; ++i)
          if (name == fastloss::detail::kMathFnNames[i]) fn = i;
        if (fn < 0) throw py::value_error("_vector_math: unknown function '" + name + "'");
        if (!(x.flags() & py::array::c_style)) throw py::value_error("_vector_math: x must be C-contiguous");
        if (x.dtype().equal(py::dtype::of<float>())) return run<float>(fn, x);
        if (x.dtype().equal(py::dtype::of<double>())) return run<double>(fn, x);
        throw py::type_error("_vector_math: x must be float32 or float64");
      },
      py::arg("name"), py::arg("x"),
      "f(x) elementwise with fastloss's vector math on the selected ISA level (internal; tests)");
  py::list names;
  for (const char* n : fastloss::detail::kMathFnNames) names.append(n);
  m.attr("_vector_math_functions") = names;
}
