"""Gradient flow through time: how much of a gradient at the last step reaches step t.

For a recurrent layer and a batch of inputs, a Gaussian probe ``v ~ N(0, I)`` is put on the
top layer's output at each sequence's last step, ``L = <v, h_T>``, and the per-step state
gradients of the backward pass (:func:`lstmlab.core.cells.state_gradients`) are read off::

    g_h(d) = sqrt( mean over sequences and probes of ||dL/dh_{T-d}||^2 )
    g_c(d) = the same for dL/dc_{T-d}  (LSTM cells: the carried cell state, h held fixed)

Since ``E ||J^T v||^2 = ||J||_F^2`` for ``v ~ N(0, I)``, ``g_h(d)`` estimates the RMS Frobenius
norm of the Jacobian ``d h_T / d h_{T-d}``, the quantity whose exponential decay in ``d`` is
the vanishing gradient (Hochreiter 1991; Bengio, Simard & Frasconi 1994). ``g_h(0) = sqrt(H)``
exactly (the Jacobian is the identity); ``g_c(0) = 0`` (nothing follows the last cell state).
"""
from __future__ import annotations

import numpy as np

from .validate import check_positive_int

__all__ = ["gradient_flow", "orders_lost"]


def gradient_flow(layer, x, lengths=None, *, layer_index: int = -1, probes: int = 4,
                  seed: int = 0) -> dict:
    """Gradient-flow profile of ``layer`` (an :class:`lstmlab.LSTM`, ``GRU`` or ``RNN``).

    Parameters
    ----------
    x : (T, B, input_size) inputs; lengths : (B,) or None (all T steps).
    layer_index : which stacked layer's state gradients to read (default the top one); always
        its forward direction, the probe on the forward direction's output.
    probes : Gaussian probes per sequence (more: a less noisy estimate).
    seed : seed of the probes.

    Returns
    -------
    dict with ``distance`` (0 .. T-1 steps back from the last step), ``h`` and, for LSTM cells,
    ``c`` (each (T,), NaN where no sequence is that long), and ``sequences`` (B * probes).
    """
    probes = check_positive_int("probes", probes)
    k = range(layer.num_layers)[layer_index]
    T, B = np.shape(x)[:2]
    L = np.full(B, T) if lengths is None else np.asarray(lengths)
    x_rep = np.repeat(np.asarray(x), probes, axis=1)                       # (T, B*P, D)
    L_rep = np.repeat(L, probes)                                            # (B*P,)
    _, _, cache = layer.forward(x_rep, lengths=None if lengths is None else L_rep)
    H = layer.hidden_size
    dy = np.zeros((T, B * probes, layer.num_directions * H), dtype=layer.dtype)
    v = np.random.default_rng([seed, 7]).normal(size=(B * probes, H))
    dy[L_rep - 1, np.arange(B * probes), :H] = v                          # probe at each last step
    *_, sg = layer.backward(dy, cache, return_internals=True, input_grad=False)
    out = {"distance": np.arange(T), "sequences": B * probes}
    # distance d back from sequence b's last step is step L_b - 1 - d (absent when d >= L_b)
    d = np.arange(T)[:, None]                                               # (T, 1)
    t = L_rep[None, :] - 1 - d                                              # (T, B*P)
    valid = t >= 0
    for name, g in sg[k][0].items():                                        # g: (T, B*P, H)
        sq = (g * g).sum(axis=2)                                            # (T, B*P)
        at = np.where(valid, sq[np.clip(t, 0, None), np.arange(B * probes)[None, :]], 0.0)
        n = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.sqrt(at.sum(axis=1) / n)                        # NaN where n == 0
    return out


def orders_lost(profile: dict, steps: int = 100, key: str = "h") -> float:
    """``log10(g(0) / g(steps))`` for ``key="h"``, ``log10(g(1) / g(steps + 1))`` for ``"c"``
    (whose ``g(0)`` is zero): the orders of magnitude the gradient loses over ``steps`` steps;
    ``inf`` when nothing arrives, NaN when the sequences are shorter than that."""
    g = profile[key]
    a, b = (0, steps) if key == "h" else (1, steps + 1)
    if b >= len(g) or not np.isfinite(g[b]):
        return float("nan")
    if g[b] == 0:
        return float("inf")
    return float(np.log10(g[a] / g[b]))
