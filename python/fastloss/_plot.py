"""``fastloss plot LOSS [--option k=v ...] -o out.png``: a loss and its
gradient against the prediction, drawn by the library's own kernels
(matplotlib).

Each loss has a setup below: the prediction's range, the fixed values of its
other arrays (a target of 1, a variance of 1 ...) and the option swept to
draw several curves (``beta`` of smooth_l1_loss, ``delta`` of huber_loss,
``margin`` ...). ``--option`` fixes an option (then that option is not
swept)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._api import REGISTRY


@dataclasses.dataclass(frozen=True)
class Setup:
    x: tuple  # (low, high) of the prediction (the first array argument)
    others: dict  # the other array arguments: fixed values
    sweep: tuple = ()  # (option name, values) drawn as separate curves
    xlabel: str = "input"
    # Losses whose arrays are not element-wise (a class axis, sequences):
    # make(x) -> {argument: array} with one row per point x, and pick(grad)
    # -> the gradient's entry that x moves (one per point).
    make: object = None
    pick: object = None


def _rows(x, classes):
    """One row per point: x in the first column, zeros elsewhere."""
    rows = np.zeros((len(x), classes))
    rows[:, 0] = x
    return rows


def _log_softmax_pairs(x):
    """(T=1, N=len(x), C=2) log-probabilities of the logits (0, x)."""
    logits = np.stack([np.zeros_like(x), x], axis=-1)[np.newaxis]
    return logits - np.logaddexp(logits[..., :1], logits[..., 1:])


SETUPS = {
    "l1_loss": Setup((-3, 3), {"target": 0.0}, xlabel="input (target 0)"),
    "mse_loss": Setup((-3, 3), {"target": 0.0}, xlabel="input (target 0)"),
    "smooth_l1_loss": Setup((-3, 3), {"target": 0.0}, ("beta", (0.5, 1.0, 2.0)), "input (target 0)"),
    "huber_loss": Setup((-3, 3), {"target": 0.0}, ("delta", (0.5, 1.0, 2.0)), "input (target 0)"),
    "binary_cross_entropy": Setup((0.005, 0.995), {"target": 1.0}, xlabel="input probability (target 1)"),
    "binary_cross_entropy_with_logits": Setup((-6, 6), {"target": 1.0}, xlabel="input logit (target 1)"),
    "soft_margin_loss": Setup((-4, 4), {"target": 1.0}, xlabel="input (target 1)"),
    "poisson_nll_loss": Setup((-2, 3), {"target": 2.0}, ("full", (False, True)), "input log-rate (target 2)"),
    "gaussian_nll_loss": Setup((-3, 3), {"target": 0.0, "var": 1.0}, ("eps", (1e-6,)), "input (target 0, var 1)"),
    "kl_div": Setup((-4, 0), {"target": 0.5}, xlabel="input log-probability (target 0.5)"),
    "hinge_embedding_loss": Setup((-2, 3), {"target": -1.0}, ("margin", (0.5, 1.0, 2.0)), "input (target -1)"),
    "margin_ranking_loss": Setup((-3, 3), {"input2": 0.0, "target": 1.0}, ("margin", (0.0, 0.5, 1.0)),
                                 "input1 (input2 0, target 1)"),
    # Class-axis losses: one row per point, the prediction is the target class's logit (score).
    "cross_entropy": Setup((-4, 6), {}, ("label_smoothing", (0.0, 0.1, 0.3)),
                           "logit of the target class (two other logits 0)",
                           make=lambda x: {"input": _rows(x, 3), "target": np.zeros(len(x), np.int64)},
                           pick=lambda g: g[:, 0]),
    "nll_loss": Setup((-4, 0), {}, (), "log-probability of the target class",
                      make=lambda x: {"input": _rows(x, 2), "target": np.zeros(len(x), np.int64)},
                      pick=lambda g: g[:, 0]),
    "multilabel_soft_margin_loss": Setup((-6, 6), {}, (), "logit of a positive class (one class)",
                                         make=lambda x: {"input": x[:, None], "target": np.ones((len(x), 1))},
                                         pick=lambda g: g[:, 0]),
    "multi_margin_loss": Setup((-3, 3), {}, ("margin", (0.5, 1.0, 2.0)),
                               "score of the target class (two other scores 0)",
                               make=lambda x: {"input": _rows(x, 3), "target": np.zeros(len(x), np.int64)},
                               pick=lambda g: g[:, 0]),
    "multilabel_margin_loss": Setup((-3, 3), {}, (), "score of the target class (two other scores 0)",
                                    make=lambda x: {"input": _rows(x, 3),
                                                    "target": np.tile(np.array([0, -1, -1]), (len(x), 1))},
                                    pick=lambda g: g[:, 0]),
    # One feature, linear_weight (1, 0, 0): the target class's logit is the input, two others 0.
    "linear_cross_entropy": Setup((-4, 6), {}, ("label_smoothing", (0.0, 0.1, 0.3)),
                                  "input (one feature; linear_weight (1, 0, 0): the target class's logit)",
                                  make=lambda x: {"input": x[:, None], "linear_weight": np.array([[1.0], [0.0], [0.0]]),
                                                  "target": np.zeros(len(x), np.int64)},
                                  pick=lambda g: g[0][:, 0]),
    # Feature-axis (embedding) losses: 2-D rows; the prediction moves one coordinate.
    "cosine_embedding_loss": Setup((-3, 3), {}, ("margin", (0.0, 0.5)),
                                   "input1's first coordinate (input1 = (x, 1), input2 = (1, 0), target 1)",
                                   make=lambda x: {"input1": np.stack([x, np.ones_like(x)], -1),
                                                   "input2": np.tile([1.0, 0.0], (len(x), 1)),
                                                   "target": np.ones(len(x))},
                                   pick=lambda g: g[0][:, 0]),
    "triplet_margin_loss": Setup((-3, 3), {}, ("margin", (0.5, 1.0, 2.0)),
                                 "negative's coordinate (anchor 0, positive 1)",
                                 make=lambda x: {"anchor": np.zeros((len(x), 1)), "positive": np.ones((len(x), 1)),
                                                 "negative": x[:, None]},
                                 pick=lambda g: g[2][:, 0]),
    "triplet_margin_with_distance_loss": Setup((-3, 3), {}, ("margin", (0.5, 1.0, 2.0)),
                                               "negative's coordinate (anchor 0, positive 1)",
                                               make=lambda x: {"anchor": np.zeros((len(x), 1)),
                                                               "positive": np.ones((len(x), 1)),
                                                               "negative": x[:, None]},
                                               pick=lambda g: g[2][:, 0]),
    # Beyond torch.nn.
    "sigmoid_focal_loss": Setup((-6, 6), {"target": 1.0}, ("gamma", (0.0, 1.0, 2.0)), "input logit (target 1)"),
    "log_cosh_loss": Setup((-3, 3), {"target": 0.0}, xlabel="input (target 0)"),
    "pinball_loss": Setup((-3, 3), {"target": 0.0}, ("quantile", (0.1, 0.5, 0.9)), "input (target 0)"),
    "jensen_shannon_divergence": Setup((-4, 0), {"target": float(np.log(0.5))}, ("beta", (0.1, 0.5, 0.9)),
                                       "input log-probability (target probability 0.5)"),
    # CTC: one time step, two classes (blank 0), target [1]: the prediction is class 1's logit.
    "poly1_cross_entropy": Setup((-4, 6), {}, ("epsilon", (-1.0, 0.0, 1.0, 2.0)),
                                 "logit of the target class (two other logits 0)",
                                 make=lambda x: {"input": _rows(x, 3), "target": np.zeros(len(x), np.int64)},
                                 pick=lambda g: g[:, 0]),
    "softmax_focal_loss": Setup((-4, 6), {}, ("gamma", (0.0, 1.0, 2.0, 5.0)),
                                "logit of the target class (two other logits 0)",
                                make=lambda x: {"input": _rows(x, 3), "target": np.zeros(len(x), np.int64)},
                                pick=lambda g: g[:, 0]),
    "dice_loss": Setup((0.0, 1.0), {}, ("smooth", (0.0, 0.5, 1.0)),
                       "probability of a positive (one of two: the other 0.5, target (1, 0))",
                       make=lambda x: {"input": np.stack([x, np.full_like(x, 0.5)], axis=1),
                                       "target": np.tile(np.array([1.0, 0.0]), (len(x), 1))},
                       pick=lambda g: g[:, 0]),
    "ctc_loss": Setup((-4, 6), {}, (), "logit of the target label (blank's logit 0; T = 1)",
                      make=lambda x: {"log_probs": _log_softmax_pairs(x), "targets": np.ones((len(x), 1), np.int64),
                                      "input_lengths": np.ones(len(x), np.int64),
                                      "target_lengths": np.ones(len(x), np.int64)},
                      pick=lambda g: g[0, :, 1]),
}


def curves(name, options=None, points=401):
    """``(x, [(label, loss, gradient)])``: the loss (``reduction='none'``) and
    its gradient w.r.t. the first array over the setup's range, one curve per
    swept option value (options given in ``options`` are fixed)."""
    if name not in REGISTRY:
        raise ValueError(f"name: unknown loss {name!r}; one of {', '.join(REGISTRY)}")
    if name not in SETUPS:
        raise ValueError(f"{name}: no plot setup (fastloss._plot.SETUPS)")
    spec, setup = REGISTRY[name], SETUPS[name]
    options = dict(options or {})
    x = np.linspace(*setup.x, points)
    if setup.make is not None:
        arrays = setup.make(x)
    else:
        arrays = {spec.arrays[0]: x}
        for n in spec.arrays[1:]:
            value = setup.others[n]
            arrays[n] = value if n == "var" else np.full_like(x, value)
    sweep_name, values = setup.sweep if setup.sweep else (None, (None,))
    if sweep_name in options:
        values = (options[sweep_name],)
    result = []
    for v in values:
        opts = dict(options)
        if sweep_name is not None:
            opts[sweep_name] = v
        opts["reduction"] = "none"
        loss, grad = spec.value_and_grad(**arrays, **opts)
        if setup.pick is not None:
            grad = setup.pick(grad)
        elif isinstance(grad, tuple):
            grad = grad[0]
        label = ", ".join(f"{k}={opts[k]!r}" for k in sorted(opts) if k != "reduction") or name
        result.append((label, loss, grad))
    return x, result


def plot(name, options=None, ax=None):
    """Draws :func:`curves` on two matplotlib axes (loss, gradient); returns the figure."""
    import matplotlib

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, lines = curves(name, options)
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    else:
        fig = ax[0].figure
    for label, loss, grad in lines:
        ax[0].plot(x, loss, label=label)
        ax[1].plot(x, grad, label=label)
    ax[0].set_title(f"{name}")
    ax[1].set_title(f"d {name} / d {REGISTRY[name].arrays[0]}")
    for a in ax:
        a.set_xlabel(SETUPS[name].xlabel)
        a.grid(alpha=0.3)
    if len(lines) > 1 or lines[0][0] != name:
        ax[0].legend(fontsize=8)
    return fig


def run(args, parser):
    """The ``plot`` command; returns the exit code."""
    from ._eval import _option

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        parser.error("plot needs matplotlib: pip install matplotlib (or \"fastloss[bench]\")")
    try:
        options = dict(_option(o) for o in args.option or ())
        fig = plot(args.loss, options)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    import matplotlib.pyplot as plt

    try:
        fig.savefig(args.output, dpi=args.dpi)
    except OSError as e:
        plt.close(fig)
        parser.error(f"-o {args.output}: cannot write ({e.strerror or e})")
    plt.close(fig)
    print(args.output)
    return 0
