"""Do the trained cells of a timing task act as interval timers? A quantified answer.

Between the two input spikes of ``msd-pair`` (at t1 and t2 = t1 + D) a network that measures D
must carry the elapsed time somewhere. A cell j *ramps* on a held-out sequence when its state
``c_t`` over the steps ``t1 .. t2 - 1`` (after the first spike, before the second)

* correlates with the elapsed time ``t - t1``: Pearson ``|r| >= r_min`` (default 0.9), and
* moves monotonically: at least ``monotone_min`` (0.9) of its steps go the ramp's way,

and it *resets* at the second spike when step t2 takes back at least ``reset_min`` (0.5) of the
ramp: ``(c_{t2-1} - c_{t2}) sign(ramp) >= reset_min |c_{t2-1} - c_{t1}|``. A cell is a *ramp
cell* when the medians over the sequences of |r| and of the monotone fraction pass, and an
*interval timer* when it also resets on at least half of them. These thresholds are this
module's, not the paper's (Gers et al. 2002 show such cells in figures, without a number).
"""
from __future__ import annotations

import numpy as np

__all__ = ["timer_cells"]


def timer_cells(model, batch, *, r_min: float = 0.9, monotone_min: float = 0.9,
                reset_min: float = 0.5) -> dict:
    """Per-cell ramp and reset statistics of ``model`` (an LSTM :class:`SeqModel`) on an
    ``msd-pair`` batch (its ``info`` has ``t1`` and ``t2``).

    Returns ``cells``, ``ramp_fraction``, ``timer_fraction``, and per cell: ``r_median``,
    ``monotone_median``, ``reset_rate``, ``ramp`` and ``timer`` (bools).
    """
    if model.rnn.kind != "lstm":
        raise ValueError("model: timer cells are measured on LSTM cell states")
    t1, t2 = np.asarray(batch.info["t1"]), np.asarray(batch.info["t2"])
    u, _ = model.rnn_inputs(batch.x)
    _, _, cache = model.rnn.forward(u)
    c = cache.internals(0, 0)["c"]                                          # (T, B, H)
    H = c.shape[2]
    r, mono, reset = [], [], []
    for b in np.flatnonzero(t2 - t1 >= 3):
        seg = c[t1[b]:t2[b], b]                                             # (D, H) c_t1 .. c_t2-1
        e = np.arange(len(seg), dtype=float) - (len(seg) - 1) / 2           # centred elapsed time
        dc = seg - seg.mean(axis=0)
        norm = np.sqrt((dc * dc).sum(axis=0) * (e * e).sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            rb = np.where(norm > 1e-12, (dc * e[:, None]).sum(axis=0) / norm, 0.0)   # (H,)
        span = seg[-1] - seg[0]                                             # (H,)
        sign = np.sign(span)
        steps = np.diff(seg, axis=0)                                        # (D-1, H)
        mono.append((np.sign(steps) == sign).mean(axis=0))
        back = (seg[-1] - c[t2[b], b]) * sign
        reset.append((np.abs(span) > 1e-6) & (back >= reset_min * np.abs(span)))
        r.append(np.abs(rb))
    if not r:
        raise ValueError("batch: no sequence has its spikes 3 or more steps apart")
    r_med = np.median(np.array(r), axis=0)
    mono_med = np.median(np.array(mono), axis=0)
    reset_rate = np.array(reset).mean(axis=0)
    ramp = (r_med >= r_min) & (mono_med >= monotone_min)
    timer = ramp & (reset_rate >= 0.5)
    return {"cells": H, "ramp_fraction": float(ramp.mean()), "timer_fraction": float(timer.mean()),
            "r_median": r_med.tolist(), "monotone_median": mono_med.tolist(),
            "reset_rate": reset_rate.tolist(), "ramp": ramp.tolist(), "timer": timer.tolist()}
