// _core.ctc_loss (fastloss/ctc.h) and _core.sequence_losses() (the rows of
// fastloss/losses.h's sequence list). python/fastloss/_ctc.py has checked
// and converted every argument; this re-checks what would otherwise touch
// bad memory, keeps one workspace per calling thread (grown, never shrunk:
// repeated calls allocate nothing and fault no pages), and releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fastloss/ctc.h"
#include "fastloss/losses.h"

namespace py = pybind11;

namespace {

const int64_t* int64_data(const py::array& a, const char* name, int64_t size) {
  if (!a.dtype().equal(py::dtype::of<int64_t>()) || !(a.flags() & py::array::c_style))
    throw py::type_error(std::string(name) + ": expected a C-contiguous int64 array");
  if (a.size() != size) throw py::value_error(std::string(name) + ": expected " + std::to_string(size) + " elements");
  return static_cast<const int64_t*>(a.data());
}

// Element strides of a 3-d array of the call's dtype.
void strides3(const py::array& a, const char* name, int64_t itemsize, const int64_t* shape, int64_t* out) {
  if (a.ndim() != 3) throw py::value_error(std::string(name) + ": expected 3 dimensions");
  for (int d = 0; d < 3; ++d) {
    if (a.shape(d) != shape[d]) throw py::value_error(std::string(name) + ": shape differs from log_probs'");
    if (a.strides(d) % itemsize != 0) throw py::value_error(std::string(name) + ": unaligned strides");
    out[d] = a.strides(d) / itemsize;
  }
}

double ctc_loss(const py::array& log_probs, const py::array& targets, int64_t padded_length,
                const py::array& input_lengths, const py::array& target_lengths, int64_t blank, int reduction,
                bool zero_infinity, const py::object& losses, const py::object& grad, bool exact,
                const py::object& grad_output) {
  fastloss::CtcCall c;
  const bool f32 = log_probs.dtype().equal(py::dtype::of<float>());
  if (!f32 && !log_probs.dtype().equal(py::dtype::of<double>()))
    throw py::type_error("log_probs: kernels take float32 or float64");
  const auto dtype = f32 ? fastloss::DType::Float32 : fastloss::DType::Float64;
  const int64_t itemsize = f32 ? 4 : 8;
  if (log_probs.ndim() != 3) throw py::value_error("log_probs: expected (T, N, C)");
  const int64_t shape[3] = {log_probs.shape(0), log_probs.shape(1), log_probs.shape(2)};
  c.max_time = shape[0];
  c.batch = shape[1];
  c.classes = shape[2];
  c.log_probs = log_probs.data();
  strides3(log_probs, "log_probs", itemsize, shape, c.log_probs_strides);
  c.target_count = targets.size();
  c.targets = int64_data(targets, "targets", c.target_count);
  c.padded_length = padded_length;
  c.input_lengths = int64_data(input_lengths, "input_lengths", c.batch);
  c.target_lengths = int64_data(target_lengths, "target_lengths", c.batch);
  c.blank = blank;
  c.reduction = static_cast<fastloss::Reduction>(reduction);
  c.zero_infinity = zero_infinity;
  c.exact = exact;
  py::array loss_arr, grad_arr, go_arr;
  if (!losses.is_none()) {
    loss_arr = py::reinterpret_borrow<py::array>(losses);
    if (!loss_arr.dtype().equal(log_probs.dtype()) || loss_arr.ndim() != 1 || loss_arr.shape(0) != c.batch ||
        !loss_arr.writeable() || loss_arr.strides(0) % itemsize != 0)
      throw py::value_error("losses: expected a writeable (N,) array of log_probs' dtype");
    c.losses = loss_arr.mutable_data();
    c.losses_stride = loss_arr.strides(0) / itemsize;
  }
  if (!grad.is_none()) {
    grad_arr = py::reinterpret_borrow<py::array>(grad);
    if (!grad_arr.dtype().equal(log_probs.dtype()) || !grad_arr.writeable())
      throw py::value_error("grad: expected a writeable array of log_probs' dtype");
    strides3(grad_arr, "grad", itemsize, shape, c.grad_strides);
    c.grad = grad_arr.mutable_data();
  }
  if (!grad_output.is_none()) {
    go_arr = py::reinterpret_borrow<py::array>(grad_output);
    if (!go_arr.dtype().equal(py::dtype::of<double>()) || !(go_arr.flags() & py::array::c_style))
      throw py::value_error("grad_output: expected a C-contiguous float64 array");
    if (go_arr.size() != 1 && go_arr.size() != c.batch)
      throw py::value_error("grad_output: expected 1 or N values");
    if (c.reduction != fastloss::Reduction::None && go_arr.size() != 1)
      throw py::value_error("grad_output: a reduced loss takes one value");
    c.grad_output = static_cast<const double*>(go_arr.data());
    c.grad_output_stride = go_arr.size() == 1 ? 0 : 1;
  }
  int64_t max_target = 0;
  for (int64_t n = 0; n < c.batch; ++n) max_target = std::max(max_target, c.target_lengths[n] < 0 ? 0 : c.target_lengths[n]);
  thread_local std::vector<unsigned char> workspace;
  double result;
  {
    py::gil_scoped_release release;
    const size_t need = fastloss::ctc_workspace_size(c.max_time, c.batch, max_target, c.grad != nullptr,
                                                     fastloss::get_num_threads());
    if (workspace.size() < need) {
      workspace.clear();
      workspace.shrink_to_fit();
      workspace.resize(need);
    }
    result = fastloss::ctc_loss(dtype, c, workspace.data(), workspace.size());
  }
  return result;
}

py::list sequence_losses() {
  py::list out;
  int id = 0;
#define FASTLOSS_SEQUENCE_ROW(lid, name, family, inputs, grads, options) \
  out.append(py::make_tuple(name, id++, inputs, grads, py::str(options).attr("split")()));
  FASTLOSS_SEQUENCE_LOSSES(FASTLOSS_SEQUENCE_ROW)
#undef FASTLOSS_SEQUENCE_ROW
  return out;
}

}  // namespace

void register_ctc(py::module_& m) {
  m.def("ctc_loss", &ctc_loss, py::arg("log_probs"), py::arg("targets"), py::arg("padded_length"),
        py::arg("input_lengths"), py::arg("target_lengths"), py::arg("blank"), py::arg("reduction"),
        py::arg("zero_infinity"), py::arg("losses"), py::arg("grad"), py::arg("exact"), py::arg("grad_output"),
        "fastloss::ctc_loss on NumPy arrays (internal; use fastloss.ctc_loss)");
  m.def("sequence_losses", &sequence_losses,
        "rows (name, id, inputs, grads, options) of fastloss/losses.h's sequence losses");
}
