"""``fastloss plot`` and its curves: every registered loss has a plot setup,
the curves are the loss and gradient of the kernels, images are written."""

import numpy as np
import pytest

import fastloss
from fastloss import _plot
from fastloss._api import REGISTRY
from fastloss._cli import main


@pytest.mark.parametrize("name", list(REGISTRY))
def test_curves_are_the_kernels(name):
    x, lines = _plot.curves(name, points=33)
    spec = REGISTRY[name]
    assert len(lines) >= 1
    for label, loss, grad in lines:
        assert loss.shape == grad.shape == x.shape
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad)), label
    # the first curve against the reference, at the setup's points
    setup = _plot.SETUPS[name]
    if setup.make is not None:
        arrays = setup.make(x)
    else:
        arrays = {spec.arrays[0]: x, **{n: (setup.others[n] if n == "var" else np.full_like(x, setup.others[n]))
                                        for n in spec.arrays[1:]}}
    opts = {setup.sweep[0]: setup.sweep[1][0]} if setup.sweep else {}
    expected = getattr(fastloss.reference, name)(**arrays, **opts, reduction="none")
    np.testing.assert_allclose(lines[0][1], expected, rtol=1e-10, atol=1e-12)


def test_fixed_option_draws_one_curve():
    _, lines = _plot.curves("huber_loss", {"delta": 0.25})
    assert [label for label, _, _ in lines] == ["delta=0.25"]


def test_plot_command_writes_an_image(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "huber.png"
    assert main(["plot", "huber_loss", "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "bce.svg"
    assert main(["plot", "binary_cross_entropy_with_logits", "--option", "pos_weight=None", "-o", str(out)]) == 0
    assert b"<svg" in out.read_bytes()[:500]
    with pytest.raises(SystemExit):
        main(["plot", "no_such_loss", "-o", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit):
        main(["plot", "huber_loss", "--option", "delta=-1", "-o", str(tmp_path / "x.png")])


def test_plot_to_an_unwritable_path_is_a_usage_error(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(SystemExit) as e:
        main(["plot", "huber_loss", "-o", str(tmp_path / "no" / "such" / "dir" / "a.png")])
    assert e.value.code == 2
