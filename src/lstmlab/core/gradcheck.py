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

__all__ = ["gradcheck", "gradcheck_report"]


def _rel_error(a: np.ndarray, n: np.ndarray) -> float:
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

    report = {}
    for name, arr in targets.items():
        num = np.zeros_like(arr)
        flat, nflat = arr.reshape(-1), num.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            lp = loss()
            flat[j] = old - eps
            lm = loss()
            flat[j] = old
            nflat[j] = (lp - lm) / (2 * eps)
        report[name] = _rel_error(analytic[name], num)
    return report


def gradcheck(module, x, state=None, lengths=None, eps: float = 1e-6, seed: int = 0,
              training: bool = False) -> float:
    """Worst relative error over all checked tensors (see :func:`gradcheck_report`)."""
    return max(gradcheck_report(module, x, state, lengths, eps, seed, training).values())
