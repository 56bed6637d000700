"""Gradient check: the hand-derived BPTT against central finite differences.

For a scalar test loss ``L = <Ry, y> + <Rh, h_n> (+ <Rc, c_n>)`` with fixed random ``R*``, every
entry ``p`` of every parameter tensor, of the input and of the initial states is perturbed::

    numeric = (L(p + eps) - L(p - eps)) / (2 eps)

and compared with the analytic gradient from ``backward``. The error of a tensor is
``max |analytic - numeric| / max(max |analytic|, max |numeric|, tiny)``, a relative error in the
infinity norm that stays meaningful for entries whose gradient is exactly zero (padded steps,
weights of absent gates).
"""
from __future__ import annotations

import numpy as np

__all__ = ["gradcheck", "gradcheck_report", "numeric_gradient", "rel_error", "gradcheck_suite", "SUITE_LAYOUTS"]


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    scale = max(float(np.abs(a).max(initial=0.0)), float(np.abs(n).max(initial=0.0)), 1e-12)
    return float(np.abs(a - n).max(initial=0.0)) / scale


def gradcheck_report(module, x, state=None, lengths=None, eps: float = 1e-6, seed: int = 0,
                     training: bool = False) -> dict[str, float]:
    """Relative error of every parameter tensor, of ``x`` and of each initial state.

    ``module`` is an ``LSTM``, ``GRU`` or ``RNN`` in float64. With ``training=True`` dropout is
    on, with the same masks in every evaluation (a fresh generator from ``seed`` each time).
    Returns ``{name: error}`` with keys ``params`` names, ``"x"``, ``"h0"`` (and ``"c0"``).
    """
    if module.dtype != np.float64:
        raise ValueError("module: gradcheck needs a float64 module (finite differences in float32 are noise)")
    x = np.array(x, dtype=np.float64)
    lstm = module.kind == "lstm"
    rng = np.random.default_rng([seed, 1])
    B = x.shape[1]
    shape = (module.num_layers * module.num_directions, B, module.hidden_size)
    if state is None:
        state = (rng.normal(size=shape), rng.normal(size=shape)) if lstm else rng.normal(size=shape)
    states = [np.array(s, dtype=np.float64) for s in (state if lstm else (state,))]

    y, _, _ = module.forward(x, state, lengths)
    Ry = rng.normal(size=y.shape)
    Rs = [rng.normal(size=shape) for _ in states]
    pack = (lambda s: tuple(s)) if lstm else (lambda s: s[0])

    def loss() -> float:
        gen = np.random.default_rng([seed, 2])
        y, sn, _ = module.forward(x, pack(states), lengths, training=training, rng=gen)
        sn = sn if lstm else (sn,)
        return float((Ry * y).sum() + sum((R * s).sum() for R, s in zip(Rs, sn)))

    _, _, cache = module.forward(x, pack(states), lengths, training=training,
                                 rng=np.random.default_rng([seed, 2]))
    dx, d0, grads = module.backward(Ry, cache, pack(Rs))
    analytic = dict(grads)
    analytic["x"] = dx
    for name, d in zip(("h0", "c0"), d0 if lstm else (d0,)):
        analytic[name] = d
    targets = dict(module.params)
    targets["x"] = x
    for name, s in zip(("h0", "c0"), states):
        targets[name] = s

    return {name: rel_error(analytic[name], numeric_gradient(loss, arr, eps))
            for name, arr in targets.items()}


def numeric_gradient(f, arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(p + eps) - f(p - eps)) / 2 eps`` for every entry p of ``arr``,
    which ``f`` (a function of no arguments returning a float) must read; ``arr`` is restored."""
    num = np.zeros_like(arr)
    flat, nflat = arr.reshape(-1), num.reshape(-1)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        lp = f()
        flat[j] = old - eps
        lm = f()
        flat[j] = old
        nflat[j] = (lp - lm) / (2 * eps)
    return num


def gradcheck(module, x, state=None, lengths=None, eps: float = 1e-6, seed: int = 0,
              training: bool = False) -> float:
    """Worst relative error over all checked tensors (see :func:`gradcheck_report`)."""
    return max(gradcheck_report(module, x, state, lengths, eps, seed, training).values())


SUITE_LAYOUTS = {
    "1 layer": dict(num_layers=1, bidirectional=False),
    "2 stacked": dict(num_layers=2, bidirectional=False),
    "bidirectional": dict(num_layers=1, bidirectional=True),
}


def gradcheck_suite(variants=None, layouts=None, backend: str = "reference", seed: int = 0):
    """Gradient-check every variant in every layout; yields ``(variant, layout, report)``.

    Each case uses random non-zero weights and biases (absent gates stay zero), random non-zero
    initial states and variable lengths (T=5, B=3, lengths 5, 2, 4), input size 2, hidden size 3.
    """
    from .layers import GRU, LSTM, RNN
    from .spec import PRESETS

    variants = list(variants or [*PRESETS, "gru", "rnn"])
    layouts = list(layouts or SUITE_LAYOUTS)
    rng = np.random.default_rng(seed)
    for v in variants:
        for name in layouts:
            cls = {"gru": GRU, "rnn": RNN}.get(v, LSTM)
            kw = {} if v in ("gru", "rnn") else {"variant": v}
            m = cls(2, 3, seed=seed, backend=backend, **kw, **SUITE_LAYOUTS[name])
            for k, p in m.params.items():
                p += rng.normal(scale=0.5, size=p.shape) * (p != 0)       # keep absent gates at zero
            x = rng.normal(size=(5, 3, 2))
            yield v, name, gradcheck_report(m, x, lengths=[5, 2, 4], seed=seed)
