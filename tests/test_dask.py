"""fastloss.dask.evaluate: block-wise partial states merged as a tree equal
the one-shot call, on the threaded scheduler and on a dask.distributed
cluster of process workers (spawn and fork)."""

import numpy as np
import pytest

import fastloss
from cases import CASES, case_params

da = pytest.importorskip("dask.array")
import fastloss.dask  # noqa: E402

STREAMED = [c for c in CASES.values() if c.kind in ("elementwise", "classification", "embedding")]


def _dask_args(case, arrays, chunks):
    """The case's arrays as Dask arrays of row blocks; a per-class pos_weight stays NumPy."""
    positional, keyword = case.split(arrays)
    lazy = [da.from_array(a, chunks=(chunks,) + a.shape[1:]) for a in positional]
    kw = {k: (da.from_array(v, chunks=(chunks,) + v.shape[1:]) if v.shape[:1] == positional[0].shape[:1] else v)
          for k, v in keyword.items()}
    return lazy, kw


@pytest.mark.parametrize("case", case_params(STREAMED))
def test_threaded_scheduler_equals_one_shot(case):
    rng = np.random.default_rng(5)
    arrays = case.make(rng, (203, 6), np.float64, weighted=True)
    reduction = [r for r in case.reductions if r != "none"][-1]
    expected = case.call(case.forward, arrays, reduction=reduction)
    lazy, kw = _dask_args(case, arrays, 17)
    got = fastloss.dask.evaluate(case.name, *lazy, reduction=reduction, **kw)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    delayed = fastloss.dask.evaluate(case.name, *lazy, reduction=reduction, compute=False, **kw)
    assert hasattr(delayed, "compute")
    assert delayed.compute() == got


def test_unaligned_chunks_broadcast_targets_and_numpy_operands():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    lx = da.from_array(x, chunks=(13, 2))  # split along the feature axis too: rechunked
    ly = da.from_array(y, chunks=(30, 4))  # other row blocks: aligned to input's
    for reduction in ("mean", "sum"):
        np.testing.assert_allclose(fastloss.dask.evaluate("huber_loss", lx, ly, reduction=reduction, delta=0.5),
                                   fastloss.huber_loss(x, y, reduction=reduction, delta=0.5), rtol=1e-12)
    row = y[:1]  # no batch axis of its own: given whole to every block
    with pytest.warns(UserWarning):
        expected = fastloss.mse_loss(x, row)
    with pytest.warns(UserWarning):
        got = fastloss.dask.evaluate("mse_loss", lx, row)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(fastloss.dask.evaluate("l1_loss", x, y), fastloss.l1_loss(x, y), rtol=1e-12)


def test_errors():
    x = da.zeros((10, 3), chunks=5)
    with pytest.raises(ValueError, match="reduction"):
        fastloss.dask.evaluate("mse_loss", x, x, reduction="none")
    with pytest.raises(TypeError, match="betta"):
        fastloss.dask.evaluate("smooth_l1_loss", x, x, betta=1.0)
    with pytest.raises(ValueError, match="target"):
        fastloss.dask.evaluate("mse_loss", x, da.zeros((10, 4), chunks=5))


# JAX (imported by other tests of the session) warns at every os.fork(),
# from an at-fork handler (an "unraisable" warning): not ours.
@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_local_cluster_of_processes(method):
    distributed = pytest.importorskip("distributed")
    import dask

    rng = np.random.default_rng(9)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    t = (rng.random((4000, 16)) < 0.5).astype(np.float32)
    lx, lt = da.from_array(x, chunks=(500, 16)), da.from_array(t, chunks=(500, 16))
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=50) as cluster, distributed.Client(cluster) as client:
            got = fastloss.dask.evaluate("binary_cross_entropy_with_logits", lx, lt)
            # each worker: its share of the host's CPUs (2 workers x 1 thread)
            threads = client.run(lambda: __import__("fastloss").get_num_threads())
    expected = fastloss.binary_cross_entropy_with_logits(x, t)
    assert abs(int(got.view(np.int32)) - int(expected.view(np.int32))) <= 1
    import os

    share = max(1, len(os.sched_getaffinity(0)) // 2)
    assert set(threads.values()) == {share}


def test_cli_eval_on_a_cluster(tmp_path, capsys):
    """`fastloss eval ... --dask ADDRESS`: the workers open the files themselves."""
    distributed = pytest.importorskip("distributed")
    from fastloss._cli import main

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5000, 3)), rng.normal(size=(5000, 3))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster:
        code = main(["eval", "l1_loss", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), "--chunk", "700",
                     "--dask", cluster.scheduler_address, "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    np.testing.assert_allclose(float(out), fastloss.l1_loss(x, y), rtol=1e-12)

