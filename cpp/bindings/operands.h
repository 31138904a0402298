// Operands of the fast path (module.cpp's elementwise): what it can read
// without a conversion, as a pointer, a shape and byte strides, plus the
// overlap tests out= needs. Included by module.cpp only.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "fastloss/fastloss.h"

namespace fastloss_bindings {

namespace py = pybind11;
using fastloss::kMaxDims;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
constexpr char kSwappedByteOrder = '<';
#else
constexpr char kSwappedByteOrder = '>';
#endif

// DLPack's ABI (dlpack.h v0.8, stable): what torch's _to_dlpack returns.
struct DLDevice {
  int32_t device_type;  // 1: CPU
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 2: float
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null: C-contiguous
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};

// An operand as the fast path sees it (strides in bytes). Holds what keeps
// the memory readable (a buffer view or a DLPack capsule) until destroyed.
struct View {
  char* data = nullptr;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};
  int type = -1;  // 0: float32, 1: float64
  bool aligned = false;
  bool writeable = false;
  Py_buffer buffer{};
  bool has_buffer = false;
  PyObject* owner = nullptr;

  View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;
  ~View() {
    if (has_buffer) PyBuffer_Release(&buffer);
    Py_XDECREF(owner);
  }
  int64_t itemsize() const { return type == 0 ? 4 : 8; }
  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
  bool same_shape(const View& o) const {
    if (o.ndim != ndim) return false;
    for (int d = 0; d < ndim; ++d)
      if (o.shape[d] != shape[d]) return false;
    return true;
  }
  // Strides the kernels take: in elements, 0 where never stepped over.
  // False when a stepped-over stride is not a multiple of the item size.
  bool describe(fastloss::StridedArray& out) const {
    const bool empty = numel() == 0;
    for (int d = 0; d < ndim; ++d) {
      if (empty || shape[d] <= 1) {
        out.strides[d] = 0;
        continue;
      }
      if (strides[d] % itemsize() != 0) return false;
      out.strides[d] = strides[d] / itemsize();
    }
    out.data = data;
    return true;
  }
  // [low, high): the bytes the array may touch (numpy.may_share_memory's bounds).
  void bounds(uintptr_t& low, uintptr_t& high) const {
    auto lo = reinterpret_cast<intptr_t>(data), hi = lo + static_cast<intptr_t>(itemsize());
    for (int d = 0; d < ndim; ++d) {
      const int64_t step = strides[d] * (shape[d] - 1);
      (step < 0 ? lo : hi) += step;
    }
    low = static_cast<uintptr_t>(lo);
    high = static_cast<uintptr_t>(hi);
  }
};

inline bool native_byte_order(char byteorder) {
  // NumPy writes '=' or '|' for native, '<'/'>' for explicit orders.
  return byteorder != kSwappedByteOrder;
}

// torch.Tensor / torch.nn.Parameter and torch._C._to_dlpack, when torch is
// imported (never imported from here).
struct Torch {
  PyObject* tensor = nullptr;
  PyObject* parameter = nullptr;
  PyObject* to_dlpack = nullptr;
  bool tried = false;
};

inline Torch& torch_api() {
  static Torch t;
  if (!t.tried) {
    PyObject* torch = PyDict_GetItemString(PySys_GetObject("modules"), "torch");  // borrowed
    if (torch == nullptr) return t;
    t.tried = true;
    PyObject* c = PyObject_GetAttrString(torch, "_C");
    PyObject* nn = PyObject_GetAttrString(torch, "nn");
    t.tensor = PyObject_GetAttrString(torch, "Tensor");
    t.parameter = nn ? PyObject_GetAttrString(nn, "Parameter") : nullptr;
    t.to_dlpack = c ? PyObject_GetAttrString(c, "_to_dlpack") : nullptr;
    Py_XDECREF(c);
    Py_XDECREF(nn);
    if (!t.tensor || !t.parameter || !t.to_dlpack) {
      PyErr_Clear();
      Py_CLEAR(t.tensor);
      Py_CLEAR(t.parameter);
      Py_CLEAR(t.to_dlpack);
    }
  }
  return t;
}

inline bool view_ndarray(PyObject* obj, View& v) {
  auto* a = py::detail::array_proxy(obj);
  auto* descr = py::detail::array_descriptor_proxy(a->descr);
  if (descr->type_num == py::detail::npy_api::NPY_FLOAT_)
    v.type = 0;
  else if (descr->type_num == py::detail::npy_api::NPY_DOUBLE_)
    v.type = 1;
  else
    return false;
  if (!native_byte_order(descr->byteorder) || a->nd > kMaxDims) return false;
  v.ndim = a->nd;
  for (int d = 0; d < a->nd; ++d) {
    v.shape[d] = a->dimensions[d];
    v.strides[d] = a->strides[d];
  }
  v.data = a->data;
  v.aligned = (a->flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
  v.writeable = (a->flags & py::detail::npy_api::NPY_ARRAY_WRITEABLE_) != 0;
  return true;
}

inline bool aligned(const View& v) {
  if (v.numel() == 0) return true;
  if (reinterpret_cast<uintptr_t>(v.data) % v.itemsize() != 0) return false;
  for (int d = 0; d < v.ndim; ++d)
    if (v.shape[d] > 1 && v.strides[d] % v.itemsize() != 0) return false;
  return true;
}

// A CPU float32/float64 torch tensor (requires_grad or not) read through
// torch's DLPack export, the cheapest zero-copy route (~0.25 us; the
// __dlpack__ method costs ~2 us, .numpy() ~1 us). The capsule stays owned
// by the View: its destructor (torch's) frees the export.
inline bool view_torch(PyObject* obj, View& v, Torch& torch) {
  static PyObject* is_neg = PyUnicode_InternFromString("is_neg");
  PyObject* self[] = {obj};
  PyObject* neg = PyObject_VectorcallMethod(is_neg, self, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
  if (neg == nullptr) {
    PyErr_Clear();
    return false;
  }
  const bool negative = neg == Py_True;
  Py_DECREF(neg);
  if (negative) return false;  // a lazily negated view: its memory holds -values
  PyObject* capsule = PyObject_CallOneArg(torch.to_dlpack, obj);
  if (capsule == nullptr) {
    PyErr_Clear();
    return false;
  }
  v.owner = capsule;
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (m == nullptr) {
    PyErr_Clear();
    return false;
  }
  const DLTensor& t = m->dl_tensor;
  if (t.device.device_type != 1 || t.dtype.code != 2 || t.dtype.lanes != 1 || t.ndim > kMaxDims ||
      t.ndim < 0)
    return false;
  if (t.dtype.bits == 32)
    v.type = 0;
  else if (t.dtype.bits == 64)
    v.type = 1;
  else
    return false;
  v.ndim = t.ndim;
  int64_t contiguous = v.itemsize();
  for (int d = t.ndim - 1; d >= 0; --d) {
    v.shape[d] = t.shape[d];
    v.strides[d] = t.strides ? t.strides[d] * v.itemsize() : contiguous;
    contiguous *= t.shape[d];
  }
  v.data = static_cast<char*>(t.data) + t.byte_offset;
  v.aligned = aligned(v);
  v.writeable = false;  // never written: out= must be an ndarray
  return true;
}

// Buffer-protocol objects (JAX CPU arrays, memoryview, array.array) whose
// items are native float32/float64.
inline bool view_buffer(PyObject* obj, View& v) {
  PyBufferProcs* procs = Py_TYPE(obj)->tp_as_buffer;
  if (procs == nullptr || procs->bf_getbuffer == nullptr) return false;
  if (PyObject_GetBuffer(obj, &v.buffer, PyBUF_RECORDS_RO) != 0) {
    PyErr_Clear();
    return false;
  }
  v.has_buffer = true;
  const Py_buffer& b = v.buffer;
  const char* f = b.format ? b.format : "B";
  if (*f == '@' || *f == '=' || (*f == '<' && kSwappedByteOrder == '>')) ++f;
  if (f[0] == 'f' && f[1] == 0 && b.itemsize == 4)
    v.type = 0;
  else if (f[0] == 'd' && f[1] == 0 && b.itemsize == 8)
    v.type = 1;
  else
    return false;
  if (b.ndim > kMaxDims || b.ndim < 0) return false;
  v.ndim = b.ndim;
  int64_t contiguous = v.itemsize();
  for (int d = b.ndim - 1; d >= 0; --d) {
    v.shape[d] = b.shape ? b.shape[d] : b.len / v.itemsize();
    v.strides[d] = b.strides ? b.strides[d] : contiguous;
    contiguous *= v.shape[d];
  }
  v.data = static_cast<char*>(b.buf);
  v.aligned = aligned(v);
  v.writeable = false;
  return true;
}

// Reads `obj` into `v`; false when the fast path cannot take it.
inline bool view_of(PyObject* obj, View& v) {
  auto& api = py::detail::npy_api::get();
  auto* type = Py_TYPE(obj);
  if (type == reinterpret_cast<PyTypeObject*>(api.PyArray_Type_)) return view_ndarray(obj, v);
  if (obj == Py_None || PyFloat_CheckExact(obj) || PyLong_CheckExact(obj) || PyList_CheckExact(obj) ||
      PyTuple_CheckExact(obj) || PyType_IsSubtype(type, reinterpret_cast<PyTypeObject*>(api.PyArray_Type_)))
    return false;
  Torch& torch = torch_api();
  if (torch.tensor != nullptr && (type == reinterpret_cast<PyTypeObject*>(torch.tensor) ||
                                  type == reinterpret_cast<PyTypeObject*>(torch.parameter)))
    return view_torch(obj, v, torch);
  return view_buffer(obj, v);
}

// True unless the strides prove that no two elements share memory (as
// _validate._self_overlapping).
inline bool self_overlapping(const View& v) {
  if (v.numel() == 0) return false;
  std::pair<int64_t, int64_t> dims[kMaxDims];
  int n = 0;
  for (int d = 0; d < v.ndim; ++d)
    if (v.shape[d] > 1) dims[n++] = {v.strides[d] < 0 ? -v.strides[d] : v.strides[d], v.shape[d]};
  std::sort(dims, dims + n);
  int64_t extent = v.itemsize();
  for (int i = 0; i < n; ++i) {
    if (dims[i].first < extent) return true;
    extent += dims[i].first * (dims[i].second - 1);
  }
  return false;
}

inline bool may_overlap(const View& a, const View& b) {
  if (a.data == nullptr || b.data == nullptr || a.numel() == 0 || b.numel() == 0) return false;
  uintptr_t a0, a1, b0, b1;
  a.bounds(a0, a1);
  b.bounds(b0, b1);
  return a0 < b1 && b0 < a1;
}

}  // namespace fastloss_bindings
