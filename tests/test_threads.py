"""The kernels' threads: calls in forked children (after multi-threaded calls
in the parent) finish and give the parent's bits; huge thread counts are
capped, never a crash; the instruction-set levels offered match the CPU's
flags; float32 sums are accurate and the same on every level.

Anything that could crash or hang runs in a subprocess with a timeout: the
timeouts guard against hangs, they do not measure speed."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss

HANG_GUARD = 120  # seconds: a hung child fails the test instead of the suite

# JAX (imported by other tests of the session) warns at every os.fork() that
# JAX's own threads may deadlock the child; the children here never use JAX.
pytestmark = [
    pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _data():
    rng = np.random.default_rng(123)
    x = rng.standard_normal(2**20).astype(np.float32)
    y = rng.standard_normal(2**20).astype(np.float32)
    return x, y


def _child_results(_=None):
    """What a child computes: a reduced value and a gradient over 2^20
    elements (above the one-thread threshold), at the inherited setting and
    after raising the thread count in the child."""
    x, y = _data()
    first = (fastloss.mse_loss(x, y, reduction="sum"), fastloss.huber_loss_backward(x, y))
    fastloss.set_num_threads(2)
    second = (fastloss.mse_loss(x, y, reduction="sum"), fastloss.huber_loss_backward(x, y))
    return first, second


def _same(a, b):
    return all(np.asarray(p).tobytes() == np.asarray(q).tobytes() for p, q in zip(a, b))


@pytest.fixture
def parent_used_threads(restore_threads):
    """The parent has run multi-threaded calls (what made libgomp children hang)."""
    fastloss.set_num_threads(2)
    expected = _child_results()
    assert _same(expected[0], expected[1])
    return expected


def _fork_child(queue):
    queue.put(_child_results())


def test_forked_child_after_threaded_parent(parent_used_threads):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(queue,))
    child.start()
    try:
        got = queue.get(timeout=HANG_GUARD)
    finally:
        child.join(timeout=HANG_GUARD)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    for results in got:
        assert _same(results, parent_used_threads[0])


def test_process_pool_executor_with_fork(parent_used_threads):
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        futures = [pool.submit(_child_results) for _ in range(4)]
        for future in futures:
            for results in future.result(timeout=HANG_GUARD):
                assert _same(results, parent_used_threads[0])


def test_fork_while_another_thread_computes(parent_used_threads):
    """A fork taken while a Python thread is inside a multi-threaded kernel:
    the child starts its own pool and still finishes."""
    import threading

    x, y = _data()
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            fastloss.mse_loss_backward(x, y)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        for _ in range(3):
            child = ctx.Process(target=_fork_child, args=(queue,))
            child.start()
            got = queue.get(timeout=HANG_GUARD)
            child.join(timeout=HANG_GUARD)
            assert child.exitcode == 0
            assert _same(got[0], parent_used_threads[0])
    finally:
        stop.set()
        worker.join()


def _run(code, **env):
    environment = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=HANG_GUARD, env=environment)


@pytest.mark.parametrize("n", [100_000, 2**31 - 1])
def test_huge_thread_count_is_capped(n):
    """set_num_threads(100000) followed by a 65,536-element call used to
    SIGSEGV, 2**31-1 aborted: now the team is capped (4x the CPUs, and never
    more threads than blocks) and the result is the one-thread result."""
    result = _run(f"""
        import os, numpy as np, fastloss
        x = np.linspace(-3, 3, 65_536, dtype=np.float32)
        y = np.zeros_like(x)
        fastloss.set_num_threads(1)
        one = fastloss.l1_loss(x, y, reduction="sum"), fastloss.l1_loss_backward(x, y)
        fastloss.set_num_threads({n})
        assert 1 <= fastloss.get_num_threads() <= 4 * len(os.sched_getaffinity(0)), fastloss.get_num_threads()
        many = fastloss.l1_loss(x, y, reduction="sum"), fastloss.l1_loss_backward(x, y)
        big = np.ones(2**22, np.float32)
        assert fastloss.mse_loss(big, np.zeros_like(big), reduction="sum") == 2**22
        assert all(a.tobytes() == b.tobytes() for a, b in zip(map(np.asarray, one), map(np.asarray, many)))
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_thread_count_cap_follows_affinity():
    """The cap is 4x the CPUs this process may use (sched_getaffinity), so a
    process pinned to one CPU gets at most 4."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity")
    result = _run("""
        import os, fastloss
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        fastloss.set_num_threads(1000)
        print(fastloss.get_num_threads())
    """)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == 4


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def test_isa_levels_match_the_cpu_flags():
    """avx2 is offered only with AVX2, FMA and F16C (its code is compiled
    with -mf16c); avx512 only with F, BW, DQ and VL."""
    flags = _cpu_flags()
    if flags is None or "sse2" not in flags:
        pytest.skip("not an x86 Linux machine")
    available = fastloss._core.available_isas()
    assert available[0] == "baseline"
    has_avx2 = {"avx", "avx2", "fma", "f16c"} <= flags
    has_avx512 = has_avx2 and {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags
    assert ("avx2" in available) == has_avx2
    assert ("avx512" in available) == has_avx512


def test_float32_sum_of_constant_is_exact_on_every_isa(isa):
    """l1_loss(x, 0, 'sum') of a constant 1.000141 float32 over 524,288
    elements was 1.9e-6 (AVX-512) to 7.6e-6 (SSE2) off when lanes summed in
    float32. In double the sum of identical float32 values is exact here, so
    the float32 result is the correctly rounded product."""
    x = np.full(524_288, 1.000141, np.float32)
    exact = 524_288 * float(x[0])
    got = fastloss.l1_loss(x, np.zeros_like(x), reduction="sum")
    assert float(got) == float(np.float32(exact))
    assert float(fastloss.l1_loss(x, np.zeros_like(x), reduction="mean")) == float(x[0])
