"""The recurrences of the LSTM family in plain torch operations: the pure-torch path.

These are the equations of :mod:`lstmlab.core.cells` (see :mod:`lstmlab.core.spec` for the
generalised LSTM cell) written with torch tensors, so autograd differentiates them on any device
and dtype, under ``torch.compile`` and to any order. :mod:`lstmlab.torch._compiled` runs the same
recurrences through the compiled NumPy kernels on the CPU; the tests hold both to the NumPy
engine.

Every recurrence takes the input projection of all steps at once (``xp = x W_ih^T + b``, made by
the caller with one matrix product) and an optional (T, B) 0/1 ``mask`` of valid steps (a prefix
of each column): a masked step leaves the state (and the gate carry of full gate recurrence)
unchanged and outputs zeros. Each returns ``Y`` (T, B, H) with ``Y[t] = mask[t] * h_t`` and the
final states.
"""
from __future__ import annotations

import torch

from ..core.spec import CellSpec

__all__ = ["lstm_recurrence", "gru_recurrence", "rnn_recurrence", "reverse_within_lengths",
           "lstm_cell"]


def reverse_within_lengths(a: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of ``a`` (T, B, ...) within its own length; padding stays in place
    (its own inverse). ``lengths``: (B,) int64 on a's device, or None (reverse all T steps)."""
    if lengths is None:
        return a.flip(0)
    T, B = a.shape[:2]
    t = torch.arange(T, device=a.device)[:, None]                          # (T, 1)
    L = lengths[None, :]                                                   # (1, B)
    idx = torch.where(t < L, L - 1 - t, t)                                 # (T, B)
    return a[idx, torch.arange(B, device=a.device)[None, :]]


def _carry(m, new, old):
    """``m * new + (1 - m) * old`` for a (B, 1) mask column; None mask: ``new``."""
    return new if m is None else m * new + (1 - m) * old


def lstm_cell(spec: CellSpec, a, c_prev, q_prev, peep, R, W_hr=None):
    """One step of the generalised LSTM cell from its pre-activations.

    a : (B, 4H) = x W_ih^T + b_ih + b_hh + h_prev W_hh^T; c_prev : (B, H); q_prev : (B, 3H), the
    previous step's [i, f, o] (None at the first step or without full gate recurrence); peep : (3,
    H) rows w_ci, w_cf, w_co or None; R : (3H, 3H) or None; W_hr : (P, H) projection (LSTMP) or
    None. Returns h (B, H) or (B, P), c (B, H) and q = [i, f, o] (B, 3H)::

        i = sigma(a_i + w_ci c_prev + q_prev R_i^T)        1 without input gate
        f = sigma(a_f + w_cf c_prev + q_prev R_f^T)        1 without forget gate, 1 - i coupled
        g = tanh(a_g)                                      a_g without input activation
        c = clip(f c_prev + i g)
        o = sigma(a_o + w_co c + q_prev R_o^T)             1 without output gate
        h = o tanh(c)   (o c without output activation);   h = h W_hr^T with a projection
    """
    H = c_prev.shape[1]
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    if spec.full_gate_recurrence and q_prev is not None:
        r = q_prev @ R.T                                                   # (B, 3H) for i, f, o
        a_i, a_f, a_o = a_i + r[:, :H], a_f + r[:, H:2 * H], a_o + r[:, 2 * H:]
    if spec.peephole:
        a_i, a_f = a_i + peep[0] * c_prev, a_f + peep[1] * c_prev
    one = torch.ones_like(c_prev)
    i = torch.sigmoid(a_i) if spec.input_gate else one
    if spec.coupled:
        f = 1.0 - i
    else:
        f = torch.sigmoid(a_f) if spec.forget_gate else one
    g = torch.tanh(a_g) if spec.input_activation else a_g
    c = f * c_prev + i * g
    if spec.cell_clip is not None:
        c = torch.clamp(c, -spec.cell_clip, spec.cell_clip)
    if spec.output_gate:
        o = torch.sigmoid(a_o + peep[2] * c if spec.peephole else a_o)
    else:
        o = one
    h = o * (torch.tanh(c) if spec.output_activation else c)
    if W_hr is not None:
        h = h @ W_hr.T                                                     # (B, P)
    return h, c, torch.cat([i, f, o], dim=1)


def lstm_recurrence(spec: CellSpec, xp, W_hh, peep, R, h0, c0, mask=None, W_hr=None):
    """The generalised LSTM over a sequence.

    xp : (T, B, 4H) input projections, both biases included; W_hh : (4H, P or H); peep : (3, H) or
    None; R : (3H, 3H) or None; h0 : (B, P or H); c0 : (B, H); mask : (T, B) or None; W_hr : (P,
    H) or None. Returns Y (T, B, P or H), h_n, c_n.
    """
    T = xp.shape[0]
    h, c = h0, c0
    q = None
    ys = []
    for t in range(T):
        m = None if mask is None else mask[t][:, None]                     # (B, 1)
        a = xp[t] + h @ W_hh.T                                             # (B, 4H)
        h_new, c_new, q_new = lstm_cell(spec, a, c, q, peep, R, W_hr)
        h, c = _carry(m, h_new, h), _carry(m, c_new, c)
        if spec.full_gate_recurrence:
            q = _carry(m, q_new, torch.zeros_like(q_new) if q is None else q)
        ys.append(h)
    Y = torch.stack(ys)
    return (Y if mask is None else Y * mask[:, :, None]), h, c


def gru_recurrence(xp, W_hh, b_hh, h0, mask=None):
    """torch.nn.GRU's recurrence (gate order r, z, n)::

        hp = h_prev W_hh^T + b_hh                      # (B, 3H)
        r  = sigma(xp_r + hp_r);  z = sigma(xp_z + hp_z)
        n  = tanh(xp_n + r * hp_n)
        h  = (1 - z) * n + z * h_prev

    xp : (T, B, 3H) = x W_ih^T + b_ih. Returns Y (T, B, H), h_n.
    """
    T = xp.shape[0]
    H = h0.shape[1]
    h = h0
    ys = []
    for t in range(T):
        hp = h @ W_hh.T + b_hh                                             # (B, 3H)
        r = torch.sigmoid(xp[t, :, :H] + hp[:, :H])
        z = torch.sigmoid(xp[t, :, H:2 * H] + hp[:, H:2 * H])
        n = torch.tanh(xp[t, :, 2 * H:] + r * hp[:, 2 * H:])
        h = _carry(None if mask is None else mask[t][:, None], (1 - z) * n + z * h, h)
        ys.append(h)
    Y = torch.stack(ys)
    return (Y if mask is None else Y * mask[:, :, None]), h


def rnn_recurrence(xp, W_hh, h0, mask=None):
    """The tanh Elman RNN: ``h = tanh(xp_t + h_prev W_hh^T)`` with xp (T, B, H) = x W_ih^T + b_ih
    + b_hh. Returns Y (T, B, H), h_n."""
    h = h0
    ys = []
    for t in range(xp.shape[0]):
        h = _carry(None if mask is None else mask[t][:, None], torch.tanh(xp[t] + h @ W_hh.T), h)
        ys.append(h)
    Y = torch.stack(ys)
    return (Y if mask is None else Y * mask[:, :, None]), h
