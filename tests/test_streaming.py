"""fastloss.Accumulator: chunked updates and merges in any order equal the
one-shot call, for every registered loss and reduction (driven by the case
table); states pickle and merge; bad use raises."""

import pickle

import numpy as np
import pytest

import fastloss
from cases import CASES, case_params

STREAMED = [c for c in CASES.values() if c.kind in ("elementwise", "classification", "embedding")]


def _data(case, rng, rows, dtype):
    """(chunked arrays by name, per-call options): arrays with a batch axis
    are split into chunks; a per-class ``pos_weight`` is an option."""
    arrays = case.make(rng, (rows, 5), dtype, weighted=True)
    fixed = {a.name: arrays.pop(a.name) for a in case.args if a.shape in ("last", "classes") and a.name in arrays}
    return arrays, fixed


def _split(rng, rows):
    """Random chunk boundaries along the batch axis, empty chunks included."""
    cuts = np.sort(rng.integers(0, rows + 1, size=rng.integers(1, 6)))
    return [0, *cuts.tolist(), rows]


def _chunk(case, arrays, lo, hi):
    positional, keyword = case.split({k: v[lo:hi] for k, v in arrays.items()})
    return positional, keyword


def _accumulate(case, arrays, fixed, options, bounds, rng):
    """One accumulator per chunk, merged in a random order."""
    accs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        positional, keyword = _chunk(case, arrays, lo, hi)
        accs.append(fastloss.Accumulator(case.name, **fixed, **options).update(*positional, **keyword))
    while len(accs) > 1:
        i, j = rng.choice(len(accs), size=2, replace=False)
        merged = accs[i].merge(accs[j])
        accs = [a for k, a in enumerate(accs) if k not in (i, j)] + [merged]
    return accs[0]


def _reductions(case):
    return [r for r in case.reductions if r != "none"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", case_params(STREAMED))
def test_chunked_and_merged_equals_one_shot(case, dtype):
    rng = np.random.default_rng(7)
    rows = 41
    arrays, fixed = _data(case, rng, rows, dtype)
    for options in case.option_sets:
        for reduction in _reductions(case):
            opts = {**options, "reduction": reduction}
            expected = case.call(case.forward, {**arrays, **fixed}, **opts)
            for trial in range(3):
                bounds = _split(rng, rows)
                got = _accumulate(case, arrays, fixed, opts, bounds, rng).result()
                assert type(got) is type(expected), (type(got), type(expected))
                if dtype == np.float64:
                    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0,
                                               err_msg=f"{opts} chunks {bounds}")
                else:  # float64 partials rounded once: the one-shot bits or a neighbour
                    assert abs(int(np.float32(got).view(np.int32)) - int(np.float32(expected).view(np.int32))) <= 1


@pytest.mark.parametrize("case", case_params(STREAMED))
def test_sequential_updates_and_pickled_states(case):
    rng = np.random.default_rng(11)
    rows = 30
    arrays, fixed = _data(case, rng, rows, np.float64)
    reduction = _reductions(case)[-1]
    expected = case.call(case.forward, {**arrays, **fixed}, reduction=reduction)
    left = fastloss.Accumulator(case.name, **fixed, reduction=reduction)
    for lo, hi in ((0, 7), (7, 7), (7, 12)):
        left.update(*_chunk(case, arrays, lo, hi)[0], **_chunk(case, arrays, lo, hi)[1])
    right = fastloss.Accumulator(case.name, **fixed, reduction=reduction)
    right.update(*_chunk(case, arrays, 12, rows)[0], **_chunk(case, arrays, 12, rows)[1])
    # States travel (pickle) and merge on the other side; so do accumulators.
    shipped = fastloss.Accumulator.from_state(pickle.loads(pickle.dumps(right.state())))
    total = pickle.loads(pickle.dumps(left)).merge(shipped)
    np.testing.assert_allclose(total.result(), expected, rtol=1e-12, atol=0)
    assert left.result() == fastloss.Accumulator.from_state(left.state()).result()


def test_non_finite_chunks_give_the_one_shot_inf_and_nan():
    x = np.array([1.0, np.inf, 2.0, 3.0])
    y = np.zeros(4)
    acc = fastloss.Accumulator("mse_loss", reduction="sum")
    for lo in range(4):
        acc.update(x[lo:lo + 1], y[lo:lo + 1])
    assert acc.result() == fastloss.mse_loss(x, y, reduction="sum") == np.inf
    x[3] = -np.inf  # inf - inf: NaN, as one call's sum of l1 terms of mixed signs gives
    acc = fastloss.Accumulator("smooth_l1_loss", reduction="mean")
    acc.update(x[:2], y[:2]).update(x[2:], y[2:])
    assert np.isinf(acc.result()) == np.isinf(fastloss.smooth_l1_loss(x, y))


def test_weighted_mean_denominator_spans_chunks():
    """Weighted L1 'mean' is sum(w l) / sum(w) over all the data, not a mean
    of chunk means; kl_div 'batchmean' divides by every chunk's rows."""
    rng = np.random.default_rng(3)
    x, y, w = rng.normal(size=(9, 4)), rng.normal(size=(9, 4)), rng.uniform(0, 5, (9, 4))
    acc = fastloss.Accumulator("l1_loss").update(x[:2], y[:2], weight=w[:2]).update(x[2:], y[2:], weight=w[2:])
    np.testing.assert_allclose(acc.result(), np.sum(w * abs(x - y)) / np.sum(w), rtol=1e-13)
    lp = np.log(rng.dirichlet(np.ones(4), size=9))
    t = rng.dirichlet(np.ones(4), size=9)
    acc = fastloss.Accumulator("kl_div", reduction="batchmean").update(lp[:4], t[:4]).update(lp[4:], t[4:])
    np.testing.assert_allclose(acc.result(), np.sum(t * (np.log(t) - lp)) / 9, rtol=1e-13)


def test_empty_accumulator_is_a_call_on_nothing():
    empty = np.zeros((0, 3), np.float32)
    for reduction in ("mean", "sum"):
        got = fastloss.Accumulator("mse_loss", reduction=reduction).result()
        expected = fastloss.mse_loss(empty, empty, reduction=reduction)
        assert type(got) is type(expected)
        np.testing.assert_array_equal(got, expected)


def test_bad_use_raises():
    with pytest.raises(ValueError, match="reduction"):
        fastloss.Accumulator("mse_loss", reduction="none")
    with pytest.raises(ValueError, match="name"):
        fastloss.Accumulator("no_such_loss")
    with pytest.raises(TypeError, match="betta"):
        fastloss.Accumulator("smooth_l1_loss", betta=1.0)
    with pytest.raises(ValueError, match="beta"):
        fastloss.Accumulator("smooth_l1_loss", beta=-1.0).update(np.ones(2), np.ones(2))
    a = fastloss.Accumulator("smooth_l1_loss", beta=1.0)
    with pytest.raises(ValueError, match="options"):
        a.merge(fastloss.Accumulator("smooth_l1_loss", beta=2.0))
    with pytest.raises(ValueError, match="accumulates"):
        a.merge(fastloss.Accumulator("l1_loss"))
    with pytest.raises(TypeError, match="other"):
        a.merge(a.state())
    pw = np.ones(3)
    b = fastloss.Accumulator("binary_cross_entropy_with_logits", pos_weight=pw)
    with pytest.raises(ValueError, match="options"):
        b.merge(fastloss.Accumulator("binary_cross_entropy_with_logits", pos_weight=2 * pw))
    with pytest.raises(TypeError, match="pos_weight"):
        b.update(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=pw)
    with pytest.raises(ValueError, match="version"):
        fastloss.Accumulator.from_state({**a.state(), "version": 99})
    with pytest.raises(ValueError, match="state"):
        fastloss.Accumulator.from_state({"version": 1, "name": "l1_loss"})
    for key, bad in [("total", ("a", 0.0, 0.0)), ("total", (0.0, 0.0)), ("denominator", None), ("updates", "x"),
                     ("updates", -1), ("dtype", "int8"), ("options", []), ("name", 3)]:
        with pytest.raises(ValueError, match=f"state: malformed.*{key}"):
            fastloss.Accumulator.from_state({**a.state(), key: bad})
    # A failed update leaves the accumulator as it was.
    c = fastloss.Accumulator("mse_loss").update(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError):
        c.update(np.ones(3), np.zeros(4))
    assert c.result() == 1.0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ctc_chunks_of_samples(reduction):
    """ctc_loss streams over chunks of samples (log_probs' second axis):
    'mean' adds each loss over its target length, then divides by the samples."""
    from fastloss._api import REGISTRY

    rng = np.random.default_rng(4)
    (lp, tg, il, tl), _ = REGISTRY["ctc_loss"].sample(rng, 2**14, np.float64)
    expected = fastloss.ctc_loss(lp, tg, il, tl, reduction=reduction)
    n = lp.shape[1]
    for cuts in ([0, n], [0, 1, n], [0, 2, 2, n - 1, n]):
        accs = [fastloss.Accumulator("ctc_loss", reduction=reduction).update(lp[:, lo:hi], tg[lo:hi], il[lo:hi],
                                                                              tl[lo:hi])
                for lo, hi in zip(cuts[:-1], cuts[1:])]
        total = accs[0]
        for a in accs[1:][::-1]:
            total.merge(a)
        np.testing.assert_allclose(total.result(), expected, rtol=1e-12)
