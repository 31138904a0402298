"""DLPack and the buffer protocol are read without a copy: the array the
kernels get has the caller's address and strides (torch tensors, JAX arrays,
buffer-protocol objects), and the result is the same as from a NumPy copy."""

import array

import numpy as np
import pytest

import fastloss
from fastloss import _validate


def _address(a):
    return a.__array_interface__["data"][0]


def test_torch_tensors_are_read_in_place():
    torch = pytest.importorskip("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10) / 7
    views = {
        "contiguous": base,
        "transposed": base.t(),
        "sliced": base[1:5:2, ::3],
        "requires_grad": base.clone().requires_grad_(True),
        "float64": base.double(),
    }
    for what, t in views.items():
        a = _validate.as_array(t, "input")
        assert _address(a) == t.data_ptr(), what
        assert a.strides == tuple(s * t.element_size() for s in t.stride()), what
        expected = fastloss.mse_loss(t.detach().numpy().copy(), np.zeros(t.shape, a.dtype))
        assert fastloss.mse_loss(t, torch.zeros(t.shape, dtype=t.dtype)) == expected, what
    bf = base.bfloat16()
    a = _validate.as_array(bf, "input")
    assert _address(a) == bf.data_ptr() and a.dtype.name == "bfloat16"


def test_jax_arrays_are_read_in_place():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = jnp.arange(24, dtype=jnp.float32).reshape(4, 6) / 5
    a = _validate.as_array(x, "input")
    assert _address(a) == x.unsafe_buffer_pointer()
    assert a.shape == x.shape
    np.testing.assert_array_equal(fastloss.l1_loss(x, jnp.zeros((4, 6))), fastloss.l1_loss(np.asarray(x), np.zeros((4, 6), np.float32)))


def test_buffer_protocol_objects_are_read_in_place():
    buf = array.array("d", [0.5, 1.5, -2.0, 4.0])
    a = _validate.as_array(buf, "input")
    assert _address(a) == buf.buffer_info()[0]
    source = np.arange(12.0).reshape(3, 4)[:, ::2]  # a strided buffer
    mv = memoryview(source)
    m = _validate.as_array(mv, "input")
    assert m.strides == mv.strides and _address(m) == _address(source)
    assert fastloss.mse_loss(buf, [0.0, 0.0, 0.0, 0.0]) == np.mean(np.square(np.array(buf)))
