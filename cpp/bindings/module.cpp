// The only place that sees Python: converts NumPy arrays into the C++ API's
// pointer + element-stride form, checks the invariants the Python layer is
// meant to guarantee (so a bug there raises instead of touching bad memory),
// and releases the GIL around every kernel. Two entries:
//   pointwise    the general path's kernel call (python/fastloss/_elementwise.py
//                has checked and converted everything);
//   elementwise  the fast path: a whole plain call (checks, allocation,
//                reduction) in C++, or None to send it down the general path;
//   table_plain  the same for a table loss's plain call, after its Python
//                function has validated the arguments.
// Loss options reach the kernels through kernel_option() on both.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "fastloss/fastloss.h"
#include "operands.h"

namespace py = pybind11;
using fastloss::kMaxDims;
using namespace fastloss_bindings;  // NOLINT - the fast path's operand views

namespace {

static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "IEEE float/double: narrowing overflows to inf, underflows to 0 or a subnormal");

// A loss option (beta, delta) in the compute dtype, the one place where it is
// converted: every branch and the kernel then see the value the arithmetic
// uses (beta = 1e-50 is 0 in float32, so smooth_l1 is L1 there, as torch's
// float kernel; delta = 1e300 is inf). float16/bfloat16 are computed in
// float32, so their options are float32 too.
double kernel_option(double value, fastloss::DType dtype) {
  return dtype == fastloss::DType::Float32 ? static_cast<double>(static_cast<float>(value)) : value;
}

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
  if (dtype.byteorder() == kSwappedByteOrder)
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
  const auto dtype = ref.type_num == py::detail::npy_api::NPY_FLOAT_ ? fastloss::DType::Float32
                                                                      : fastloss::DType::Float64;
  a.param = kernel_option(param, dtype);
  a.grad_scale = grad_scale;
  py::gil_scoped_release release;
  return fastloss::pointwise(static_cast<fastloss::Pointwise>(loss), dtype, a);
}

// The general element-wise call (fastloss/losses.h's table): the Python
// layer has broadcast every array to the loss's shape and converted it to
// the kernel dtype; this checks what would otherwise touch bad memory.
// Returns (loss sum, weight sum, failed-check bits).
py::tuple elementwise_call(int loss, bool want_value, bool want_grad, double grad_scale,
                           const py::tuple& inputs, const py::handle& weight, const py::handle& grad_output,
                           const py::handle& loss_out, const py::tuple& grads, const py::tuple& options) {
  if (loss < 0 || loss >= fastloss::kNumLosses) throw py::value_error("loss: unknown loss id");
  const fastloss::LossInfo& info = fastloss::loss_info(static_cast<fastloss::Loss>(loss));
  if (static_cast<int>(inputs.size()) != info.inputs)
    throw py::value_error(std::string("inputs: ") + info.name + " reads " + std::to_string(info.inputs) + " arrays");
  if (static_cast<int>(grads.size()) > info.grads)
    throw py::value_error(std::string("grads: ") + info.name + " has " + std::to_string(info.grads) + " gradients");
  if (static_cast<int>(options.size()) > fastloss::kMaxOptions) throw py::value_error("options: too many");
  fastloss::ElementwiseCall c;
  Reference ref{-1, nullptr, 0, 0};
  static const char* const kInputNames[] = {"inputs[0]", "inputs[1]", "inputs[2]", "inputs[3]"};
  static const char* const kGradNames[] = {"grads[0]", "grads[1]", "grads[2]"};
  for (int k = 0; k < info.inputs; ++k) {
    if (inputs[k].is_none()) throw py::type_error(std::string(kInputNames[k]) + ": an array is required");
    describe(inputs[k], kInputNames[k], false, ref, c.inputs[k]);
  }
  describe(weight, "weight", false, ref, c.weight);
  describe(grad_output, "grad_output", false, ref, c.grad_output);
  describe(loss_out, "loss_out", true, ref, c.loss_out);
  for (size_t k = 0; k < grads.size(); ++k) describe(grads[k], kGradNames[k], true, ref, c.grads[k]);
  for (size_t k = 0; k < options.size(); ++k) c.options[k] = options[k].cast<double>();
  c.ndim = ref.ndim;
  for (int d = 0; d < ref.ndim; ++d) c.shape[d] = ref.shape[d];
  c.want_value = want_value;
  c.want_grad = want_grad;
  c.grad_scale = grad_scale;
  const auto dtype = ref.type_num == py::detail::npy_api::NPY_FLOAT_ ? fastloss::DType::Float32
                                                                      : fastloss::DType::Float64;
  fastloss::Totals t;
  {
    py::gil_scoped_release release;
    t = fastloss::elementwise(static_cast<fastloss::Loss>(loss), dtype, c);
  }
  return py::make_tuple(t.loss, t.weight, t.errors);
}

// The loss table (fastloss/losses.h) as (name, id, inputs, grads, options).
py::list losses() {
  py::list out;
  for (int id = 0; id < fastloss::kNumLosses; ++id) {
    const fastloss::LossInfo& info = fastloss::loss_info(static_cast<fastloss::Loss>(id));
    py::list names;
    std::string all = info.options;
    size_t start = 0;
    while (start < all.size()) {
      size_t space = all.find(' ', start);
      if (space == std::string::npos) space = all.size();
      if (space > start) names.append(all.substr(start, space - start));
      start = space + 1;
    }
    out.append(py::make_tuple(info.name, id, info.inputs, info.grads, py::tuple(names)));
  }
  return out;
}

// ---------------------------------------------------------------- fast path
//
// `fastloss.<elementwise loss>(...)` on plain operands, checked and run here
// without the Python layer: a 100-element call costs ~1 us instead of ~5.
// The fast path takes a call only when every operand is one it can read as
// it is, and every check the Python layer makes is sure to pass:
//   input, target (and weight): float32 or float64 of one dtype and one
//     shape, native byte order, aligned: exact numpy.ndarray, CPU torch
//     tensors (through torch's own DLPack export) or buffer-protocol objects
//     (JAX CPU arrays, memoryview);
//   grad_output: None, a Python float/int, a 0-d array of the compute dtype
//     or (reduction='none') an array of the loss's shape and dtype;
//   out: a writeable, aligned, exact ndarray of input's shape and dtype
//     whose elements do not overlap each other or any input.
// Anything else (broadcasting, conversions, lists, half types, odd layouts,
// any error) returns None and the caller takes the general path, which then
// raises the error. Both paths make the same kernel call with the same
// arguments, so their results are bitwise identical.

// _validate.divide: IEEE num / den, also for a zero denominator.
double divide(double num, double den) {
  if (den != 0) return num / den;
  if (std::isnan(num) || num == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::copysign(std::numeric_limits<double>::infinity(), num) * std::copysign(1.0, den);
}

PyObject* new_array(const View& like) {
  auto& api = py::detail::npy_api::get();
  PyObject* descr = api.PyArray_DescrFromType_(like.type == 0 ? py::detail::npy_api::NPY_FLOAT_
                                                              : py::detail::npy_api::NPY_DOUBLE_);
  Py_intptr_t dims[kMaxDims];
  for (int d = 0; d < like.ndim; ++d) dims[d] = static_cast<Py_intptr_t>(like.shape[d]);
  return api.PyArray_NewFromDescr_(reinterpret_cast<PyTypeObject*>(api.PyArray_Type_), descr, like.ndim,
                                   dims, nullptr, nullptr, 0, nullptr);  // steals descr
}

PyObject* new_scalar(double value, int type) {
  auto& api = py::detail::npy_api::get();
  static PyObject* descr_f32 = api.PyArray_DescrFromType_(py::detail::npy_api::NPY_FLOAT_);
  static PyObject* descr_f64 = api.PyArray_DescrFromType_(py::detail::npy_api::NPY_DOUBLE_);
  if (type == 0) {
    float narrow = static_cast<float>(value);  // IEEE: overflow is inf, as np.float32(value)
    return api.PyArray_Scalar_(&narrow, descr_f32, nullptr);
  }
  return api.PyArray_Scalar_(&value, descr_f64, nullptr);
}

enum Mode { kForward = 0, kBackward = 1, kValueAndGrad = 2 };

// elementwise(loss, mode, reduction, param, weight_divides_mean, input,
//             target, weight, grad_output, out) -> result, or None.
PyObject* elementwise_impl(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 10) {
    PyErr_SetString(PyExc_TypeError, "elementwise: expected 10 arguments");
    return nullptr;
  }
  const long loss = PyLong_AsLong(args[0]);
  const long mode = PyLong_AsLong(args[1]);
  const double param = PyFloat_AsDouble(args[3]);
  const int divides = PyObject_IsTrue(args[4]);
  if (PyErr_Occurred()) return nullptr;
  if (loss < 0 || loss >= static_cast<long>(fastloss::Pointwise::Sum) || mode < kForward ||
      mode > kValueAndGrad)
    Py_RETURN_NONE;
  PyObject* reduction = args[2];
  if (!PyUnicode_CheckExact(reduction)) Py_RETURN_NONE;
  int red;
  if (PyUnicode_CompareWithASCIIString(reduction, "mean") == 0)
    red = 1;
  else if (PyUnicode_CompareWithASCIIString(reduction, "sum") == 0)
    red = 2;
  else if (PyUnicode_CompareWithASCIIString(reduction, "none") == 0)
    red = 0;
  else
    Py_RETURN_NONE;

  View x, t, w, g, out;
  if (!view_of(args[5], x) || !x.aligned) Py_RETURN_NONE;
  if (!view_of(args[6], t) || !t.aligned || t.type != x.type || !t.same_shape(x)) Py_RETURN_NONE;
  const bool weighted = args[7] != Py_None;
  if (weighted && (!view_of(args[7], w) || !w.aligned || w.type != x.type || !w.same_shape(x)))
    Py_RETURN_NONE;

  const bool want_grad = mode != kForward;
  const bool want_value = mode != kBackward;
  double scale = 1.0;
  bool grad_array = false, grad_source = false;
  if (want_grad) {
    PyObject* go = args[8];
    if (go == Py_None) {
    } else if (PyFloat_CheckExact(go)) {
      scale = PyFloat_AS_DOUBLE(go);
    } else if (PyLong_CheckExact(go)) {
      scale = PyLong_AsDouble(go);
      if (scale == -1.0 && PyErr_Occurred()) {  // beyond float's range: the general path explains
        PyErr_Clear();
        Py_RETURN_NONE;
      }
    } else {
      if (!view_of(go, g) || !g.aligned || g.type != x.type) Py_RETURN_NONE;
      grad_source = true;
      if (g.ndim == 0 || (red == 0 && g.same_shape(x) && g.numel() == 1)) {
        // A one-element grad_output is a scale (as the general path takes it).
        scale = g.type == 0 ? static_cast<double>(*reinterpret_cast<float*>(g.data))
                            : *reinterpret_cast<double*>(g.data);
      } else if (red == 0 && g.same_shape(x)) {
        grad_array = true;
      } else {
        Py_RETURN_NONE;
      }
    }
    PyObject* o = args[9];
    if (o != Py_None) {
      auto& api = py::detail::npy_api::get();
      if (Py_TYPE(o) != reinterpret_cast<PyTypeObject*>(api.PyArray_Type_) || !view_ndarray(o, out) ||
          out.type != x.type || !out.same_shape(x) || !out.writeable || !out.aligned ||
          self_overlapping(out) || may_overlap(out, x) || may_overlap(out, t) ||
          (weighted && may_overlap(out, w)) || (grad_source && may_overlap(out, g)))
        Py_RETURN_NONE;
    }
  }

  fastloss::PointwiseArgs a;
  a.ndim = x.ndim;
  for (int d = 0; d < x.ndim; ++d) a.shape[d] = x.shape[d];
  if (!x.describe(a.input) || !t.describe(a.target) || (weighted && !w.describe(a.weight)) ||
      (grad_array && !g.describe(a.grad_output)))
    Py_RETURN_NONE;
  const auto dtype = x.type == 0 ? fastloss::DType::Float32 : fastloss::DType::Float64;
  const int64_t numel = x.numel();

  double denom = 1.0;
  if (red == 1) {
    if (weighted && divides == 1) {
      fastloss::PointwiseArgs s;
      s.ndim = w.ndim;
      for (int d = 0; d < w.ndim; ++d) s.shape[d] = w.shape[d];
      w.describe(s.input);
      s.param = 0.0;
      py::gil_scoped_release release;
      denom = fastloss::pointwise(fastloss::Pointwise::Sum, dtype, s);
    } else {
      denom = static_cast<double>(numel);
    }
  }

  py::object loss_out, grad_out;
  if (want_value && red == 0) {
    loss_out = py::reinterpret_steal<py::object>(new_array(x));
    if (!loss_out) return nullptr;
    View lo;
    view_ndarray(loss_out.ptr(), lo);
    lo.describe(a.loss_out);
  }
  if (want_grad) {
    if (out.data != nullptr) {
      grad_out = py::reinterpret_borrow<py::object>(args[9]);
      if (!out.describe(a.grad_out)) Py_RETURN_NONE;
    } else {
      grad_out = py::reinterpret_steal<py::object>(new_array(x));
      if (!grad_out) return nullptr;
      View go;
      view_ndarray(grad_out.ptr(), go);
      go.describe(a.grad_out);
    }
    if (red == 1) scale = divide(scale, denom);
  }
  a.want_value = want_value;
  a.want_grad = want_grad;
  a.param = kernel_option(param, dtype);
  a.grad_scale = scale;
  double total;
  {
    py::gil_scoped_release release;
    total = fastloss::pointwise(static_cast<fastloss::Pointwise>(loss), dtype, a);
  }
  py::object value;
  if (want_value) {
    if (red == 0) {
      value = loss_out;
    } else {
      value = py::reinterpret_steal<py::object>(new_scalar(red == 1 ? divide(total, denom) : total, x.type));
      if (!value) return nullptr;
    }
  }
  if (mode == kForward) return value.release().ptr();
  if (mode == kBackward) return grad_out.release().ptr();
  return PyTuple_Pack(2, value.ptr(), grad_out.ptr());
}

PyObject* elementwise(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs) {
  try {
    return elementwise_impl(args, nargs);
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::invalid_argument& e) {  // the C++ API's argument checks
    PyErr_SetString(PyExc_ValueError, e.what());
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

PyMethodDef elementwise_def = {
    "elementwise", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(elementwise)),
    METH_FASTCALL,
    "elementwise(loss, mode, reduction, param, weight_divides_mean, input, target, weight, "
    "grad_output, out): the result of a plain call, or None (take the general path)."};

// ------------------------------------------------- fast path, table losses
//
// _elementwise.evaluate_table's plain call (the loss's Python function has
// validated its arguments): every array an exact, aligned numpy.ndarray of
// one float dtype and one shape (a 0-d array of that dtype reads with stride
// 0), weight likewise or None, no grad_output, no out=. Allocates the
// results, runs the kernel, raises the failed check's message as ValueError
// and reduces, as _elementwise's general path does; returns None for
// anything else (the general path then takes the call).
//
// table_plain(loss, mode, reduction, arrays, weight, options, divisor,
//             checks, grads) -> result, or None.
PyObject* table_plain_impl(PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 9) {
    PyErr_SetString(PyExc_TypeError, "table_plain: expected 9 arguments");
    return nullptr;
  }
  const long loss = PyLong_AsLong(args[0]);
  const long mode = PyLong_AsLong(args[1]);
  const long red = PyLong_AsLong(args[2]);
  if (PyErr_Occurred()) return nullptr;
  if (loss < 0 || loss >= fastloss::kNumLosses || mode < kForward || mode > kValueAndGrad || red < 0 || red > 2)
    Py_RETURN_NONE;
  const fastloss::LossInfo& info = fastloss::loss_info(static_cast<fastloss::Loss>(loss));
  PyObject* arrays = args[3];
  PyObject* options = args[5];
  PyObject* checks = args[7];
  PyObject* grads = args[8];
  if (!PyTuple_CheckExact(arrays) || PyTuple_GET_SIZE(arrays) != info.inputs || !PyTuple_CheckExact(options) ||
      PyTuple_GET_SIZE(options) > fastloss::kMaxOptions || !PyTuple_CheckExact(checks) ||
      !PyTuple_CheckExact(grads) || PyTuple_GET_SIZE(grads) > info.grads)
    Py_RETURN_NONE;
  const bool want_grad = mode != kForward;
  const bool want_value = mode != kBackward;
  const Py_ssize_t n_grads = want_grad ? PyTuple_GET_SIZE(grads) : 0;
  for (Py_ssize_t k = 0; k < n_grads; ++k)
    if (PyTuple_GET_ITEM(grads, k) == Py_None) Py_RETURN_NONE;  // a float operand: no gradient array

  auto& api = py::detail::npy_api::get();
  auto* ndarray = reinterpret_cast<PyTypeObject*>(api.PyArray_Type_);
  auto plain = [&](PyObject* o, View& v) { return Py_TYPE(o) == ndarray && view_ndarray(o, v) && v.aligned; };
  fastloss::ElementwiseCall c;
  View in[fastloss::kMaxInputs];
  View& x = in[0];
  if (!plain(PyTuple_GET_ITEM(arrays, 0), x)) Py_RETURN_NONE;
  c.ndim = x.ndim;
  for (int d = 0; d < x.ndim; ++d) c.shape[d] = x.shape[d];
  for (int k = 0; k < info.inputs; ++k) {
    View& a = in[k];
    if (k > 0 && (!plain(PyTuple_GET_ITEM(arrays, k), a) || a.type != x.type)) Py_RETURN_NONE;
    if (a.ndim == 0 && x.ndim > 0) {  // bce_with_logits' absent pos_weight: one value, stride 0
      c.inputs[k].data = a.data;
    } else if (!a.same_shape(x) || !a.describe(c.inputs[k])) {
      Py_RETURN_NONE;
    }
  }
  View w;
  if (args[4] != Py_None &&
      (!plain(args[4], w) || w.type != x.type || !w.same_shape(x) || !w.describe(c.weight)))
    Py_RETURN_NONE;
  for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(options); ++k) {
    c.options[k] = PyFloat_AsDouble(PyTuple_GET_ITEM(options, k));
    if (c.options[k] == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      Py_RETURN_NONE;
    }
  }
  const int64_t numel = x.numel();
  double denom = 1.0;
  if (red == 1) {
    if (args[6] == Py_None) {
      denom = static_cast<double>(numel);
    } else {
      denom = PyFloat_AsDouble(args[6]);
      if (denom == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
      }
    }
  }

  py::object loss_out;
  py::object grad_arrays[fastloss::kMaxGrads];
  if (want_value && red == 0) {
    loss_out = py::reinterpret_steal<py::object>(new_array(x));
    if (!loss_out) return nullptr;
    View lo;
    view_ndarray(loss_out.ptr(), lo);
    lo.describe(c.loss_out);
  }
  for (Py_ssize_t k = 0; k < n_grads; ++k) {
    grad_arrays[k] = py::reinterpret_steal<py::object>(new_array(x));
    if (!grad_arrays[k]) return nullptr;
    View gv;
    view_ndarray(grad_arrays[k].ptr(), gv);
    gv.describe(c.grads[k]);
  }
  c.want_value = want_value;
  c.want_grad = want_grad;
  c.grad_scale = want_grad && red == 1 ? divide(1.0, denom) : 1.0;
  const auto dtype = x.type == 0 ? fastloss::DType::Float32 : fastloss::DType::Float64;
  fastloss::Totals t;
  try {
    py::gil_scoped_release release;
    t = fastloss::elementwise(static_cast<fastloss::Loss>(loss), dtype, c);
  } catch (const std::invalid_argument&) {  // the general path raises it, with its context
    Py_RETURN_NONE;
  }
  if (t.errors != 0) {
    int bit = 0;
    while (((t.errors >> bit) & 1u) == 0) ++bit;
    if (bit >= PyTuple_GET_SIZE(checks)) Py_RETURN_NONE;
    PyErr_SetObject(PyExc_ValueError, PyTuple_GET_ITEM(checks, bit));
    return nullptr;
  }
  py::object value;
  if (want_value) {
    if (red == 0) {
      value = loss_out;
    } else {
      value = py::reinterpret_steal<py::object>(new_scalar(red == 1 ? divide(t.loss, denom) : t.loss, x.type));
      if (!value) return nullptr;
    }
  }
  if (mode == kForward) return value.release().ptr();
  py::object grad;
  if (n_grads == 1) {
    grad = grad_arrays[0];
  } else {
    PyObject* tuple = PyTuple_New(n_grads);
    if (tuple == nullptr) return nullptr;
    for (Py_ssize_t k = 0; k < n_grads; ++k) PyTuple_SET_ITEM(tuple, k, grad_arrays[k].release().ptr());
    grad = py::reinterpret_steal<py::object>(tuple);
  }
  if (mode == kBackward) return grad.release().ptr();
  return PyTuple_Pack(2, value.ptr(), grad.ptr());
}

PyObject* table_plain(PyObject* /*self*/, PyObject* const* args, Py_ssize_t nargs) {
  try {
    return table_plain_impl(args, nargs);
  } catch (py::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

PyMethodDef table_plain_def = {
    "table_plain", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)(void)>(table_plain)), METH_FASTCALL,
    "table_plain(loss, mode, reduction, arrays, weight, options, divisor, checks, grads): the result of a "
    "plain table-loss call, or None (take the general path)."};

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

void register_math(py::module_& m);     // register_math.cpp
void register_convert(py::module_& m);  // register_convert.cpp
void register_rowwise(py::module_& m);  // register_rowwise.cpp
void register_ctc(py::module_& m);      // register_ctc.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastloss kernels (internal; use fastloss.functional)";
  m.def("pointwise", &pointwise, py::arg("loss"), py::arg("want_value"), py::arg("want_grad"),
        py::arg("param"), py::arg("grad_scale"), py::arg("input"), py::arg("target"),
        py::arg("weight"), py::arg("grad_output"), py::arg("loss_out"), py::arg("grad_out"));
  m.add_object("elementwise",
               py::reinterpret_steal<py::object>(PyCFunction_NewEx(&elementwise_def, nullptr, nullptr)));
  m.add_object("table_plain",
               py::reinterpret_steal<py::object>(PyCFunction_NewEx(&table_plain_def, nullptr, nullptr)));
  m.def("elementwise_call", &elementwise_call, py::arg("loss"), py::arg("want_value"), py::arg("want_grad"),
        py::arg("grad_scale"), py::arg("inputs"), py::arg("weight"), py::arg("grad_output"), py::arg("loss_out"),
        py::arg("grads"), py::arg("options"));
  m.def("losses", &losses);
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
  register_convert(m);
  register_rowwise(m);
  register_ctc(m);
}
