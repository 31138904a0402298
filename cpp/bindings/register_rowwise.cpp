// _core.rowwise_call and _core.rowwise_losses: the row-wise losses
// (fastloss/losses.h's FASTLOSS_ROWWISE_LOSSES) for python/fastloss/_rowwise.py,
// which has checked the arguments and shaped every array as the driver's
// cube: row operands (outer, classes, inner), per-row arrays (outer, inner),
// the class weight (classes,). This re-checks what would otherwise touch bad
// memory (shapes, dtypes, alignment, writeability) and releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "fastloss/fastloss.h"

namespace py = pybind11;

namespace {

using fastloss::ElementType;
using fastloss::RowArray;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kSwapped = '<';
#else
constexpr char kSwapped = '>';
#endif

struct Cube {
  int64_t outer, classes, inner;
  int float_type;  // NPY type number of the float operands
};

// `obj` as a RowArray; `axes` says which cube axes its dimensions are
// ("nci": a row operand, "ns": per row, "c": per class).
RowArray describe(const py::handle& obj, const char* name, const char* axes, const Cube& cube, bool writable,
                  int* type_num = nullptr) {
  RowArray out;
  if (obj.is_none()) return out;
  if (!py::isinstance<py::array>(obj)) throw py::type_error(std::string(name) + ": expected a numpy.ndarray");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  const auto dtype = arr.dtype();
  if (dtype.byteorder() == kSwapped) throw py::value_error(std::string(name) + ": byte order is not native");
  const int ndim = static_cast<int>(std::string(axes).size());
  if (arr.ndim() != ndim) throw py::value_error(std::string(name) + ": wrong number of dimensions");
  if (type_num != nullptr)
    *type_num = dtype.num();
  else if (dtype.num() != cube.float_type)
    throw py::type_error(std::string(name) + ": dtype differs from input's");
  bool empty = false;
  for (int d = 0; d < ndim; ++d) empty = empty || arr.shape(d) == 0;
  for (int d = 0; d < ndim; ++d) {
    const char a = axes[d];
    const int axis = a == 'n' ? 0 : (a == 'c' ? 1 : 2);
    const int64_t want = axis == 0 ? cube.outer : (axis == 1 ? cube.classes : cube.inner);
    if (arr.shape(d) != want) throw py::value_error(std::string(name) + ": shape does not match input's");
    if (empty || arr.shape(d) <= 1) continue;
    if (arr.strides(d) % arr.itemsize() != 0)
      throw py::value_error(std::string(name) + ": strides are not a multiple of the item size");
    out.strides[axis] = arr.strides(d) / arr.itemsize();
  }
  if (!empty && reinterpret_cast<uintptr_t>(arr.data()) % arr.itemsize() != 0)
    throw py::value_error(std::string(name) + ": array is not aligned");
  if (writable && !arr.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  out.data = const_cast<void*>(arr.data());
  return out;
}

ElementType element_type(int type_num, int itemsize, bool is_signed, bool is_float) {
  if (is_float) return ElementType::Float;
  switch (itemsize) {
    case 1: return is_signed ? ElementType::Int8 : ElementType::UInt8;
    case 2: return is_signed ? ElementType::Int16 : ElementType::UInt16;
    case 4: return is_signed ? ElementType::Int32 : ElementType::UInt32;
    case 8: return is_signed ? ElementType::Int64 : ElementType::UInt64;
    default: throw py::type_error("target: unsupported integer size " + std::to_string(itemsize) +
                                  " (type " + std::to_string(type_num) + ")");
  }
}

// rowwise_call(loss, want_value, want_grad, reduction, grad_scale, inputs,
//              target, weight, grad_output, loss_out, grads, options)
//   -> (loss sum, denominator, error bits, first bad index)
py::tuple rowwise_call(int loss, bool want_value, bool want_grad, int reduction, double grad_scale,
                       const py::tuple& inputs, const py::handle& target, const py::handle& weight,
                       const py::handle& grad_output, const py::handle& loss_out, const py::tuple& grads,
                       const py::tuple& options) {
  if (loss < 0 || loss >= fastloss::kNumRowLosses) throw py::value_error("loss: unknown row-wise loss id");
  const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(loss));
  if (static_cast<int>(inputs.size()) != info.inputs)
    throw py::value_error(std::string("inputs: ") + info.name + " reads " + std::to_string(info.inputs) + " arrays");
  if (static_cast<int>(grads.size()) > info.grads) throw py::value_error("grads: too many");
  if (static_cast<int>(options.size()) > fastloss::kMaxOptions) throw py::value_error("options: too many");
  if (!py::isinstance<py::array>(inputs[0])) throw py::type_error("inputs[0]: expected a numpy.ndarray");
  auto x = py::reinterpret_borrow<py::array>(inputs[0]);
  if (x.ndim() != 3) throw py::value_error("inputs[0]: expected (outer, classes, inner)");
  const int xt = x.dtype().num();
  if (xt != py::detail::npy_api::NPY_FLOAT_ && xt != py::detail::npy_api::NPY_DOUBLE_)
    throw py::type_error("inputs[0]: kernels take float32 or float64 arrays");
  const Cube cube{x.shape(0), x.shape(1), x.shape(2), xt};
  fastloss::RowwiseCall c;
  c.outer = cube.outer;
  c.classes = cube.classes;
  c.inner = cube.inner;
  static const char* const kInputs[] = {"inputs[0]", "inputs[1]", "inputs[2]"};
  static const char* const kGrads[] = {"grads[0]", "grads[1]", "grads[2]"};
  for (size_t k = 0; k < inputs.size(); ++k) c.inputs[k] = describe(inputs[k], kInputs[k], "nci", cube, false);
  for (size_t k = 0; k < grads.size(); ++k) c.grads[k] = describe(grads[k], kGrads[k], "nci", cube, true);
  if (!target.is_none()) {
    if (!py::isinstance<py::array>(target)) throw py::type_error("target: expected a numpy.ndarray");
    auto t = py::reinterpret_borrow<py::array>(target);
    const char kind = t.dtype().kind();
    if (kind != 'i' && kind != 'u' && kind != 'f') throw py::type_error("target: integer or float array expected");
    if (kind == 'f' && t.dtype().num() != xt) throw py::type_error("target: float dtype differs from input's");
    int tn = 0;
    c.target = describe(target, "target", t.ndim() == 3 ? "nci" : "ns", cube, false, &tn);
    c.target_type = element_type(tn, static_cast<int>(t.itemsize()), kind == 'i', kind == 'f');
  }
  c.weight = describe(weight, "weight", "c", cube, false);
  c.grad_output = describe(grad_output, "grad_output", "ns", cube, false);
  c.loss_out = describe(loss_out, "loss_out", "ns", cube, true);
  if (reduction < 0 || reduction > 2) throw py::value_error("reduction: unknown code");
  c.reduction = static_cast<fastloss::Reduction>(reduction);
  c.want_value = want_value;
  c.want_grad = want_grad;
  c.grad_scale = grad_scale;
  for (size_t k = 0; k < options.size(); ++k) c.options[k] = options[k].cast<double>();
  const auto dtype = xt == py::detail::npy_api::NPY_FLOAT_ ? fastloss::DType::Float32 : fastloss::DType::Float64;
  fastloss::RowTotals t;
  {
    py::gil_scoped_release release;
    t = fastloss::rowwise(static_cast<fastloss::RowLoss>(loss), dtype, c);
  }
  return py::make_tuple(t.loss, t.denominator, t.errors, t.bad_index);
}

// The row-wise table as (name, id, inputs, grads, target kind, options).
py::list rowwise_losses() {
  static const char* const kTargets[] = {"none", "index", "index_rows", "float", "index_or_float"};
  py::list out;
  for (int id = 0; id < fastloss::kNumRowLosses; ++id) {
    const fastloss::RowLossInfo& info = fastloss::row_loss_info(static_cast<fastloss::RowLoss>(id));
    py::list names;
    const std::string all = info.options;
    size_t start = 0;
    while (start < all.size()) {
      size_t space = all.find(' ', start);
      if (space == std::string::npos) space = all.size();
      if (space > start) names.append(all.substr(start, space - start));
      start = space + 1;
    }
    out.append(py::make_tuple(info.name, id, info.inputs, info.grads, kTargets[static_cast<int>(info.target)],
                              py::tuple(names)));
  }
  return out;
}

}  // namespace

void register_rowwise(py::module_& m) {
  m.def("rowwise_call", &rowwise_call, py::arg("loss"), py::arg("want_value"), py::arg("want_grad"),
        py::arg("reduction"), py::arg("grad_scale"), py::arg("inputs"), py::arg("target"), py::arg("weight"),
        py::arg("grad_output"), py::arg("loss_out"), py::arg("grads"), py::arg("options"));
  m.def("rowwise_losses", &rowwise_losses);
}
