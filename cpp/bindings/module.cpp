// The only place that sees Python: converts NumPy arrays into the C++ API's
// pointer + element-stride form, checks the invariants the Python layer is
// meant to guarantee (so a bug there raises instead of touching bad memory),
// and releases the GIL around every kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <limits>
#include <string>

#include "fastloss/fastloss.h"

namespace py = pybind11;
using fastloss::kMaxDims;

namespace {

struct Reference {
  int ndim;
  const py::ssize_t* shape;
  int type_num;
  py::ssize_t itemsize;
};

// Fills `out` from `obj` (None leaves it absent).
void describe(const py::handle& obj, const char* name, bool writable, Reference& ref,
              fastloss::StridedArray& out) {
  if (obj.is_none()) return;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const auto dtype = arr.dtype();
  const int type_num = dtype.num();
  if (dtype.byteorder() == '>')
    throw py::value_error(std::string(name) + ": byte order is not native");
  if (ref.ndim < 0) {
    if (type_num != py::detail::npy_api::NPY_FLOAT_ && type_num != py::detail::npy_api::NPY_DOUBLE_)
      throw py::type_error(std::string(name) + ": kernels take float32 or float64 arrays");
    if (arr.ndim() > kMaxDims)
      throw py::value_error(std::string(name) + ": more than 8 dimensions reach the kernel");
    ref = {static_cast<int>(arr.ndim()), arr.shape(), type_num, arr.itemsize()};
  } else {
    if (type_num != ref.type_num)
      throw py::type_error(std::string(name) + ": dtype differs from input's");
    if (arr.ndim() != ref.ndim)
      throw py::value_error(std::string(name) + ": shape differs from input's");
    for (int d = 0; d < ref.ndim; ++d)
      if (arr.shape(d) != ref.shape[d])
        throw py::value_error(std::string(name) + ": shape differs from input's");
  }
  if (writable && !arr.writeable())
    throw py::value_error(std::string(name) + ": array is read-only");
  // Only strides that are stepped over (size > 1) and the data of a non-empty
  // array matter; NumPy calls such arrays aligned whatever the rest is.
  bool empty = false;
  for (int d = 0; d < ref.ndim; ++d) empty = empty || arr.shape(d) == 0;
  for (int d = 0; d < ref.ndim; ++d) {
    if (empty || arr.shape(d) <= 1) {
      out.strides[d] = 0;
      continue;
    }
    if (arr.strides(d) % ref.itemsize != 0)
      throw py::value_error(std::string(name) + ": strides are not a multiple of the item size");
    out.strides[d] = arr.strides(d) / ref.itemsize;
  }
  if (!empty && reinterpret_cast<uintptr_t>(arr.data()) % ref.itemsize != 0)
    throw py::value_error(std::string(name) + ": array is not aligned");
  out.data = const_cast<void*>(arr.data());
}

double pointwise(int loss, bool want_value, bool want_grad, double param, double grad_scale,
                 const py::handle& input, const py::handle& target, const py::handle& weight,
                 const py::handle& grad_output, const py::handle& loss_out,
                 const py::handle& grad_out) {
  if (loss < 0 || loss > static_cast<int>(fastloss::Pointwise::Sum))
    throw py::value_error("loss: unknown pointwise loss id");
  fastloss::PointwiseArgs a;
  Reference ref{-1, nullptr, 0, 0};
  if (input.is_none()) throw py::type_error("input: an array is required");
  describe(input, "input", false, ref, a.input);
  describe(target, "target", false, ref, a.target);
  describe(weight, "weight", false, ref, a.weight);
  describe(grad_output, "grad_output", false, ref, a.grad_output);
  describe(loss_out, "loss_out", true, ref, a.loss_out);
  describe(grad_out, "out", true, ref, a.grad_out);
  if (a.target.data == nullptr && loss != static_cast<int>(fastloss::Pointwise::Sum))
    throw py::type_error("target: an array is required");
  if (want_grad && a.grad_out.data == nullptr)
    throw py::value_error("out: a gradient array is required");
  if (!want_value && !want_grad) throw py::value_error("nothing to compute");
  if (want_grad && loss == static_cast<int>(fastloss::Pointwise::Sum))
    throw py::value_error("the Sum kernel has no gradient");
  if (loss == static_cast<int>(fastloss::Pointwise::Sum) &&
      (a.weight.data != nullptr || a.grad_output.data != nullptr))
    throw py::value_error("the Sum kernel takes one array");
  a.ndim = ref.ndim;
  for (int d = 0; d < ref.ndim; ++d) a.shape[d] = ref.shape[d];
  a.want_value = want_value;
  a.want_grad = want_grad;
  a.param = param;
  a.grad_scale = grad_scale;
  const auto dtype = ref.type_num == py::detail::npy_api::NPY_FLOAT_ ? fastloss::DType::Float32
                                                                      : fastloss::DType::Float64;
  py::gil_scoped_release release;
  return fastloss::pointwise(static_cast<fastloss::Pointwise>(loss), dtype, a);
}

// The common call `loss(x, y)` / `loss(x, y, reduction='sum')` on two plain,
// aligned, native float32/float64 arrays of one shape: checked and run without
// the Python layer (a 100-element call costs ~1 us instead of ~5). Returns
// None when the call is anything else; the caller then takes the general path.
py::object reduce_fast(int loss, const py::handle& reduction, double param, const py::handle& input,
                       const py::handle& target) {
  auto& api = py::detail::npy_api::get();
  if (loss < 0 || loss >= static_cast<int>(fastloss::Pointwise::Sum)) return py::none();
  if (!PyUnicode_Check(reduction.ptr())) return py::none();
  bool mean;
  if (PyUnicode_CompareWithASCIIString(reduction.ptr(), "mean") == 0)
    mean = true;
  else if (PyUnicode_CompareWithASCIIString(reduction.ptr(), "sum") == 0)
    mean = false;
  else
    return py::none();
  auto* tp = reinterpret_cast<PyTypeObject*>(api.PyArray_Type_);
  if (Py_TYPE(input.ptr()) != tp || Py_TYPE(target.ptr()) != tp) return py::none();
  auto* x = py::detail::array_proxy(input.ptr());
  auto* y = py::detail::array_proxy(target.ptr());
  auto* dx = py::detail::array_descriptor_proxy(x->descr);
  auto* dy = py::detail::array_descriptor_proxy(y->descr);
  constexpr int kAligned = py::detail::npy_api::NPY_ARRAY_ALIGNED_;
  if (dx->type_num != dy->type_num || dx->byteorder == '>' || dy->byteorder == '>') return py::none();
  if (!(x->flags & kAligned) || !(y->flags & kAligned)) return py::none();
  const bool f32 = dx->type_num == py::detail::npy_api::NPY_FLOAT_;
  if (!f32 && dx->type_num != py::detail::npy_api::NPY_DOUBLE_) return py::none();
  if (x->nd != y->nd || x->nd > kMaxDims) return py::none();
  const py::ssize_t itemsize = f32 ? 4 : 8;
  fastloss::PointwiseArgs a;
  a.ndim = x->nd;
  int64_t numel = 1;
  for (int d = 0; d < x->nd; ++d) {
    if (x->dimensions[d] != y->dimensions[d]) return py::none();
    a.shape[d] = x->dimensions[d];
    numel *= a.shape[d];
    if (a.shape[d] <= 1) continue;  // strides of size-1 dimensions are never used
    if (x->strides[d] % itemsize != 0 || y->strides[d] % itemsize != 0) return py::none();
    a.input.strides[d] = x->strides[d] / itemsize;
    a.target.strides[d] = y->strides[d] / itemsize;
  }
  a.input.data = x->data;
  a.target.data = y->data;
  a.param = param;
  double total;
  {
    py::gil_scoped_release release;
    total = fastloss::pointwise(static_cast<fastloss::Pointwise>(loss),
                                f32 ? fastloss::DType::Float32 : fastloss::DType::Float64, a);
  }
  if (mean)  // the mean of nothing is NaN (a quiet +NaN, as the Python path's)
    total = numel == 0 ? std::numeric_limits<double>::quiet_NaN() : total / static_cast<double>(numel);
  static PyObject* descr_f32 = api.PyArray_DescrFromType_(py::detail::npy_api::NPY_FLOAT_);
  static PyObject* descr_f64 = api.PyArray_DescrFromType_(py::detail::npy_api::NPY_DOUBLE_);
  PyObject* result;
  if (f32) {
    float value = static_cast<float>(total);
    result = api.PyArray_Scalar_(&value, descr_f32, nullptr);
  } else {
    result = api.PyArray_Scalar_(&total, descr_f64, nullptr);
  }
  if (result == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(result);
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

void register_math(py::module_& m);  // register_math.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastloss kernels (internal; use fastloss.functional)";
  m.def("pointwise", &pointwise, py::arg("loss"), py::arg("want_value"), py::arg("want_grad"),
        py::arg("param"), py::arg("grad_scale"), py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("grad_output"), py::arg("loss_out"), py::arg("grad_out"));
  m.def("reduce_fast", &reduce_fast, py::arg("loss"), py::arg("reduction"), py::arg("param"),
        py::arg("input"), py::arg("target"));
  m.def("set_num_threads", &fastloss::set_num_threads);
  m.def("get_num_threads", &fastloss::get_num_threads);
  m.def("current_isa", &fastloss::current_isa);
  m.def("available_isas", [] {
    py::list out;
    std::string s = fastloss::available_isas();
    size_t start = 0;
    while (start <= s.size()) {
      size_t comma = s.find(',', start);
      if (comma == std::string::npos) comma = s.size();
      if (comma > start) out.append(s.substr(start, comma - start));
      start = comma + 1;
    }
    return out;
  });
  m.def("select_isa", [](const std::string& name) {
    if (!fastloss::select_isa(name.c_str()))
      throw py::value_error("isa: '" + name + "' is not available on this CPU/build");
  });
  m.attr("compiler") = compiler();
  m.attr("max_dims") = kMaxDims;
  register_math(m);
#ifdef _OPENMP
  m.attr("openmp") = _OPENMP;
#else
  m.attr("openmp") = 0;
#endif
}
