"""Type stubs for the compiled kernels (cpp/bindings/module.cpp). Internal:
use fastloss.functional."""

import numpy as np

compiler: str
max_dims: int

def pointwise(
    loss: int,
    want_value: bool,
    want_grad: bool,
    param: float,
    grad_scale: float,
    input: np.ndarray,
    target: np.ndarray | None,
    weight: np.ndarray | None,
    grad_output: np.ndarray | None,
    loss_out: np.ndarray | None,
    grad_out: np.ndarray | None,
) -> float: ...
def elementwise(
    loss: int,
    mode: int,
    reduction: object,
    param: float,
    weight_divides_mean: bool,
    input: object,
    target: object,
    weight: object,
    grad_output: object,
    out: object,
) -> object | None: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def current_isa() -> str: ...
def available_isas() -> list[str]: ...
def select_isa(name: str) -> None: ...
def half_to_float(src: np.ndarray, dst: np.ndarray) -> None: ...
def float_to_half(src: np.ndarray, dst: np.ndarray) -> None: ...
def elementwise_call(
    loss: int,
    want_value: bool,
    want_grad: bool,
    grad_scale: float,
    inputs: tuple[np.ndarray, ...],
    weight: np.ndarray | None,
    grad_output: np.ndarray | None,
    loss_out: np.ndarray | None,
    grads: tuple[np.ndarray | None, ...],
    options: tuple[float, ...],
) -> tuple[float, float, int]: ...
def table_plain(
    loss: int,
    mode: int,
    reduction: int,
    arrays: tuple[object, ...],
    weight: object,
    options: tuple[object, ...],
    divisor: object,
    checks: tuple[str, ...],
    grads: tuple[int | None, ...],
) -> object | None: ...
def losses() -> list[tuple[str, int, int, int, tuple[str, ...]]]: ...

def rowwise_call(
    loss: int,
    want_value: bool,
    want_grad: bool,
    reduction: int,
    grad_scale: float,
    inputs: tuple[np.ndarray, ...],
    target: np.ndarray | None,
    weight: np.ndarray | None,
    grad_output: np.ndarray | None,
    loss_out: np.ndarray | None,
    grads: tuple[np.ndarray, ...],
    options: tuple[float, ...],
) -> tuple[float, float, int, int]:
    """A row-wise loss (fastloss/losses.h's FASTLOSS_ROWWISE_LOSSES) on the
    cube (outer, classes, inner): returns (loss sum, mean's denominator,
    error bits, first out-of-range class index)."""

def rowwise_losses() -> list[tuple[str, int, int, int, str, tuple[str, ...]]]: ...
