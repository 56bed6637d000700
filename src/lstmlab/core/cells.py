"""The cells of the LSTM family, forward and backward side by side, and their loops over time.

Each cell has three pieces:

* ``*_step_forward``: one time step for a batch, with the equations in its docstring;
* ``*_step_backward``: the hand-derived gradient of that step, right below it;
* ``*_loop_forward`` / ``*_loop_backward``: the recurrence over a whole (masked) sequence.

The loops, with ``input_projection`` (``xp = x W_ih^T + b`` for all steps in one matrix product,
or a gather of columns of W_ih for token ids, done before a loop) and
``input_projection_backward`` (``dxp`` back into ``dx``, ``dW_ih`` and ``db`` after it), are the
reference implementation of the interface that the compiled kernels (:mod:`lstmlab.kernels`)
implement too; the sequence layer (:mod:`lstmlab.core.layers`) calls one
module or the other.

Shapes: T steps, B sequences, H hidden units. ``mask`` is a (T, B) float array of 0/1: where it is 0
(padding after a sequence's end) the step leaves the state unchanged and receives no gradient.
Activations are stored as the state carried forward, so ``Hs[t]`` is the state before step t
(``Hs[0] = h0``) and ``Hs[T]`` the final state.
"""
from __future__ import annotations

import numpy as np

from .spec import CellSpec

__all__ = [
    "sigmoid", "input_projection", "input_projection_backward",
    "lstm_step_forward", "lstm_step_backward", "lstm_loop_forward", "lstm_loop_backward",
    "lstm_gate_rows",
    "gru_step_forward", "gru_step_backward", "gru_loop_forward", "gru_loop_backward",
    "rnn_step_forward", "rnn_step_backward", "rnn_loop_forward", "rnn_loop_backward",
    "state_gradients",
]


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-z)), computed as (1 + tanh(z / 2)) / 2: one ufunc call,
    exact in real arithmetic and free of overflow for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# ----------------------------------------------------------------------------------------------
# Input projection (every cell)
# ----------------------------------------------------------------------------------------------

def input_projection(x, W_ih, bias):
    """``xp = x W_ih^T + bias`` for all T steps at once: x (T, B, D), W_ih (G*H, D), bias (G*H,)
    -> xp (T, B, G*H), one 2-D matrix product (the sum over the inputs first, then the bias).

    x may also be (T, B) integer token ids standing for their one-hot vectors (D = the number of
    tokens): then ``x_t W_ih^T`` is column ``x_t`` of W_ih, and the product is a gather,
    ``xp[t, b] = W_ih[:, x[t, b]] + bias``, with the same bits as the product of the one-hot
    array (one nonzero term per sum)."""
    if x.ndim == 2:
        return (W_ih.T + bias)[x]                                       # (T, B, G*H)
    T, B, D = x.shape
    xp = x.reshape(T * B, D) @ W_ih.T                                   # (T*B, G*H)
    xp += bias
    return xp.reshape(T, B, -1)


def input_projection_backward(dxp, x, W_ih, input_grad=True):
    """Gradients of :func:`input_projection` given dxp (T, B, G*H):
    ``dx = dxp W_ih`` (T, B, D), ``dW_ih = sum_t dxp_t^T x_t`` (G*H, D), ``db = sum_{t,b} dxp``.
    With ``input_grad=False`` dx is not computed (None): the first layer of a model does not need
    the gradient of its data, and dx is one of the largest products of the backward pass.

    For token ids x (T, B) the sum over steps is a scatter-add, ``dW_ih[:, v] = sum of dxp[t, b]
    over the (t, b) with x[t, b] = v``, and there is no dx (ids have no gradient: None)."""
    d2 = dxp.reshape(-1, dxp.shape[-1])                                 # (T*B, G*H)
    if x.ndim == 2:
        dWT = np.zeros((W_ih.shape[1], d2.shape[1]), dtype=d2.dtype)    # (V, G*H)
        np.add.at(dWT, x.reshape(-1), d2)
        return None, dWT.T.copy(), d2.sum(axis=0)
    T, B, D = x.shape
    # 2-D products: a (T, B, G*H) @ (G*H, D) matmul runs as T separate products (W3: 235 ms
    # against 139 ms for the one 2-D product, same numbers)
    dx = (d2 @ W_ih).reshape(T, B, D) if input_grad else None
    return dx, d2.T @ x.reshape(T * B, D), d2.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# Generalised LSTM
# ----------------------------------------------------------------------------------------------

def lstm_step_forward(spec: CellSpec, xp_t, h_prev, c_prev, q_prev, W_hh, peep, R):
    """One step of the generalised LSTM cell.

    Equations (gate order i, f, g, o; ``*`` is element-wise)::

        a   = xp_t + h_prev W_hh^T                       # (B, 4H), xp_t = x_t W_ih^T + b_ih + b_hh
        i   = sigma(a_i + w_ci * c_prev + q_prev R_i^T)  # 1 without input gate
        f   = sigma(a_f + w_cf * c_prev + q_prev R_f^T)  # 1 without forget gate; 1 - i if coupled
        g   = tanh(a_g)                                  # a_g without input activation
        c   = clip(f * c_prev + i * g)                   # only if spec.cell_clip
        o   = sigma(a_o + w_co * c + q_prev R_o^T)       # 1 without output gate
        h   = o * tanh(c)                                # o * c without output activation

    ``w_c*`` are the rows of ``peep`` (3, H) (peephole cells only); ``q_prev = [i, f, o]`` of the
    previous step (B, 3H) feeds the gates through ``R`` (3H, 3H) with full gate recurrence.

    Parameters
    ----------
    xp_t : (B, 4H) input projection of this step, both biases included.
    h_prev, c_prev : (B, H) previous hidden and cell state.
    q_prev : (B, 3H) previous gate activations (only read when ``spec.full_gate_recurrence``).
    W_hh : (4H, H); peep : (3, H) or None; R : (3H, 3H) or None.

    Returns
    -------
    h, c : (B, H) new state; gates : (B, 4H) the activations [i, f, g, o].
    """
    H = h_prev.shape[1]
    a = xp_t + h_prev @ W_hh.T                                             # (B, 4H)
    if spec.full_gate_recurrence:
        r = q_prev @ R.T                                                   # (B, 3H) for i, f, o
        a = a + np.concatenate([r[:, :2 * H], np.zeros_like(h_prev), r[:, 2 * H:]], axis=1)
    a_i, a_f, a_g, a_o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    one = np.ones_like(h_prev)
    i = sigmoid(a_i + peep[0] * c_prev if spec.peephole else a_i) if spec.input_gate else one
    if spec.coupled:
        f = 1.0 - i
    elif spec.forget_gate:
        f = sigmoid(a_f + peep[1] * c_prev if spec.peephole else a_f)
    else:
        f = one
    g = np.tanh(a_g) if spec.input_activation else a_g
    c = f * c_prev + i * g
    if spec.cell_clip is not None:
        c = np.clip(c, -spec.cell_clip, spec.cell_clip)
    o = sigmoid(a_o + peep[2] * c if spec.peephole else a_o) if spec.output_gate else one
    h = o * (np.tanh(c) if spec.output_activation else c)
    return h, c, np.concatenate([i, f, g, o], axis=1)


def lstm_step_backward(spec: CellSpec, dh, dc, dq, h_prev, c_prev, q_prev, c, gates, W_hh, peep, R,
                       dW_hh, dpeep, dR):
    """Gradient of :func:`lstm_step_forward`.

    With ``s = tanh(c)`` (or ``c``) and ``z_*`` the gate pre-activations::

        do   = dh * s + dq_o                 ds  = dh * o
        dc  += ds * (1 - s^2)                dz_o = do * o (1 - o)
        dc  += dz_o * w_co                   dc  *= [|c| < clip]
        di   = dc * g + dq_i                 dg   = dc * i
        df   = dc * c_prev + dq_f            dc_prev = dc * f
        di  -= df  (coupled: f = 1 - i)      dz_i = di * i (1 - i),  dz_f = df * f (1 - f)
        dz_g = dg * (1 - g^2)                dc_prev += dz_i * w_ci + dz_f * w_cf
        da   = [dz_i, dz_f, dz_g, dz_o]      dh_prev = da W_hh,     dW_hh += da^T h_prev
        dq_prev = [dz_i, dz_f, dz_o] R       dR += [dz_i, dz_f, dz_o]^T q_prev

    Parameters
    ----------
    dh, dc : (B, H) gradients reaching h_t and c_t; dq : (B, 3H) reaching this step's [i, f, o].
    gates : (B, 4H) activations from the forward step; c : (B, H) the new cell state.
    dW_hh, dpeep, dR : accumulators, updated in place (dpeep, dR may be None).

    Returns
    -------
    da : (B, 4H) gradient of the pre-activations (= of xp_t); dh_prev, dc_prev : (B, H);
    dq_prev : (B, 3H).
    """
    H = c.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    zero = np.zeros_like(c)
    dq_i, dq_f, dq_o = (dq[:, :H], dq[:, H:2 * H], dq[:, 2 * H:]) if spec.full_gate_recurrence \
        else (zero, zero, zero)
    s = np.tanh(c) if spec.output_activation else c
    do = dh * s + dq_o
    ds = dh * o
    dc = dc + (ds * (1.0 - s * s) if spec.output_activation else ds)
    dz_o = do * o * (1.0 - o) if spec.output_gate else zero
    if spec.peephole:
        dc = dc + dz_o * peep[2]
    if spec.cell_clip is not None:
        dc = dc * (np.abs(c) < spec.cell_clip)
    di = dc * g + dq_i
    dg = dc * i
    df = dc * c_prev + dq_f
    dc_prev = dc * f
    if spec.coupled:
        di = di - df
        dz_f = zero
    else:
        dz_f = df * f * (1.0 - f) if spec.forget_gate else zero
    dz_i = di * i * (1.0 - i) if spec.input_gate else zero
    dz_g = dg * (1.0 - g * g) if spec.input_activation else dg
    if spec.peephole:
        dc_prev = dc_prev + dz_i * peep[0] + dz_f * peep[1]
        dpeep[0] += (dz_i * c_prev).sum(axis=0)
        dpeep[1] += (dz_f * c_prev).sum(axis=0)
        dpeep[2] += (dz_o * c).sum(axis=0)
    da = np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1)                 # (B, 4H)
    dh_prev = da @ W_hh                                                    # (B, H)
    dW_hh += da.T @ h_prev
    if spec.full_gate_recurrence:
        dzq = np.concatenate([dz_i, dz_f, dz_o], axis=1)                   # (B, 3H)
        dq_prev = dzq @ R
        dR += dzq.T @ q_prev
    else:
        dq_prev = None
    return da, dh_prev, dc_prev, dq_prev


def _gate_q(G_t, H):
    """[i, f, o] blocks of a (B, 4H) gate array: the carry of full gate recurrence."""
    return np.concatenate([G_t[:, :2 * H], G_t[:, 3 * H:]], axis=1)


def lstm_gate_rows(G):
    """Gate activations as (T, B, 4H) rows [i, f, g, o], this module's layout, from that layout
    (returned as is) or from the compiled small path's gate-major (T, 4, B, H) (a copy)."""
    if G.ndim == 4:
        T, _, B, H = G.shape
        return G.transpose(0, 2, 1, 3).reshape(T, B, 4 * H)              # (T, B, 4, H) -> rows
    return G


def lstm_loop_forward(spec: CellSpec, xp, W_hh, peep, R, h0, c0, mask, overwrite_xp=False):
    """Run the LSTM recurrence over a sequence.

    Parameters
    ----------
    xp : (T, B, 4H) input projections, both biases included.
    h0, c0 : (B, H); mask : (T, B) of 0/1 or None (all steps valid).
    overwrite_xp : write the gates into xp's memory (step t reads xp[t] before it writes G[t]),
        for callers that do not need xp afterwards: one array of that size less, and on large
        layers a third less memory traffic in the compiled loop.

    Returns
    -------
    Hs, Cs : (T+1, B, H) the carried states (``Hs[0] = h0``); G : (T, B, 4H) gate activations,
    carried unchanged through masked steps (``G is xp`` with ``overwrite_xp``).
    """
    T, B, _ = xp.shape
    H = h0.shape[1]
    Hs = np.empty((T + 1, B, H), dtype=xp.dtype)
    Cs = np.empty((T + 1, B, H), dtype=xp.dtype)
    G = xp if overwrite_xp else np.empty((T, B, 4 * H), dtype=xp.dtype)
    Hs[0], Cs[0] = h0, c0
    q = np.zeros((B, 3 * H), dtype=xp.dtype)
    for t in range(T):
        h, c, gates = lstm_step_forward(spec, xp[t], Hs[t], Cs[t], q, W_hh, peep, R)
        if mask is not None:
            m = mask[t][:, None]                                           # (B, 1)
            h = m * h + (1 - m) * Hs[t]
            c = m * c + (1 - m) * Cs[t]
            gates = m * gates + (1 - m) * (G[t - 1] if t > 0 else 0.0)
        Hs[t + 1], Cs[t + 1], G[t] = h, c, gates
        if spec.full_gate_recurrence:
            q = _gate_q(G[t], H)
    return Hs, Cs, G


def lstm_loop_backward(spec: CellSpec, Hs, Cs, G, W_hh, peep, R, mask, dY, dh_n, dc_n):
    """Backpropagation through time for :func:`lstm_loop_forward`.

    Parameters
    ----------
    Hs, Cs, G : the forward's outputs (G in either layout of :func:`lstm_gate_rows`); dY :
    (T, B, H) gradient of the per-step outputs ``Y[t] = mask[t] * Hs[t+1]``; dh_n, dc_n : (B, H)
    gradient of the final state.

    Returns
    -------
    dxp : (T, B, 4H); dW_hh : (4H, H); dpeep : (3, H) or None; dR : (3H, 3H) or None;
    dh0, dc0 : (B, H).
    """
    T, B, H = dY.shape
    G = lstm_gate_rows(G)
    dxp = np.zeros((T, B, 4 * H), dtype=dY.dtype)
    dW_hh = np.zeros_like(W_hh)
    dpeep = np.zeros_like(peep) if spec.peephole else None
    dR = np.zeros_like(R) if spec.full_gate_recurrence else None
    dh, dc = dh_n.copy(), dc_n.copy()
    dq = np.zeros((B, 3 * H), dtype=dY.dtype)
    zero_q = np.zeros((B, 3 * H), dtype=dY.dtype)
    for t in range(T - 1, -1, -1):
        m = np.ones((B, 1), dtype=dY.dtype) if mask is None else mask[t][:, None]
        dh = dh + m * dY[t]
        q_prev = _gate_q(G[t - 1], H) if t > 0 and spec.full_gate_recurrence else zero_q
        da, dh_prev, dc_prev, dq_prev = lstm_step_backward(
            spec, m * dh, m * dc, m * dq, Hs[t], Cs[t], q_prev, Cs[t + 1], G[t], W_hh, peep, R,
            dW_hh, dpeep, dR)
        dxp[t] = da
        dh = dh_prev + (1 - m) * dh
        dc = dc_prev + (1 - m) * dc
        if spec.full_gate_recurrence:
            dq = dq_prev + (1 - m) * dq
    return dxp, dW_hh, dpeep, dR, dh, dc


# ----------------------------------------------------------------------------------------------
# GRU (PyTorch's equations: the reset gate multiplies the recurrent product, bias included)
# ----------------------------------------------------------------------------------------------

def gru_step_forward(xp_t, h_prev, W_hh, b_hh):
    """One GRU step, gate order r, z, n as in ``torch.nn.GRU``::

        hp = h_prev W_hh^T + b_hh                     # (B, 3H)
        r  = sigma(xp_r + hp_r)                       # xp_t = x_t W_ih^T + b_ih
        z  = sigma(xp_z + hp_z)
        n  = tanh(xp_n + r * hp_n)
        h  = (1 - z) * n + z * h_prev

    Returns h (B, H), gates [r, z, n] (B, 3H) and hp_n (B, H), which the backward needs.
    """
    H = h_prev.shape[1]
    hp = h_prev @ W_hh.T + b_hh                                            # (B, 3H)
    r = sigmoid(xp_t[:, :H] + hp[:, :H])
    z = sigmoid(xp_t[:, H:2 * H] + hp[:, H:2 * H])
    hp_n = hp[:, 2 * H:]
    n = np.tanh(xp_t[:, 2 * H:] + r * hp_n)
    h = (1.0 - z) * n + z * h_prev
    return h, np.concatenate([r, z, n], axis=1), hp_n


def gru_step_backward(dh, h_prev, gates, hp_n, W_hh, dW_hh, db_hh):
    """Gradient of :func:`gru_step_forward`::

        dn = dh (1 - z)      dz = dh (h_prev - n)      dh_prev = dh z
        dz_n = dn (1 - n^2)  dr = dz_n hp_n
        dz_r = dr r (1 - r)  dz_z = dz z (1 - z)
        dxp = [dz_r, dz_z, dz_n]        dhp = [dz_r, dz_z, dz_n r]
        dh_prev += dhp W_hh   dW_hh += dhp^T h_prev   db_hh += sum_b dhp

    Returns dxp (B, 3H) and dh_prev (B, H); dW_hh and db_hh are accumulated in place.
    """
    H = h_prev.shape[1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    dz_n = dn * (1.0 - n * n)
    dz_r = dz_n * hp_n * r * (1.0 - r)
    dz_z = dz * z * (1.0 - z)
    dxp = np.concatenate([dz_r, dz_z, dz_n], axis=1)                      # (B, 3H)
    dhp = np.concatenate([dz_r, dz_z, dz_n * r], axis=1)                  # (B, 3H)
    dW_hh += dhp.T @ h_prev
    db_hh += dhp.sum(axis=0)
    return dxp, dh * z + dhp @ W_hh


def gru_loop_forward(xp, W_hh, b_hh, h0, mask):
    """GRU recurrence over a sequence; xp (T, B, 3H) = x W_ih^T + b_ih.

    Returns Hs (T+1, B, H), G (T, B, 3H) gates [r, z, n] and HPn (T, B, H) the recurrent
    n-projections ``h_prev W_hn^T + b_hn``.
    """
    T, B, _ = xp.shape
    H = h0.shape[1]
    Hs = np.empty((T + 1, B, H), dtype=xp.dtype)
    G = np.empty((T, B, 3 * H), dtype=xp.dtype)
    HPn = np.empty((T, B, H), dtype=xp.dtype)
    Hs[0] = h0
    for t in range(T):
        h, G[t], HPn[t] = gru_step_forward(xp[t], Hs[t], W_hh, b_hh)
        if mask is not None:
            m = mask[t][:, None]
            h = m * h + (1 - m) * Hs[t]
        Hs[t + 1] = h
    return Hs, G, HPn


def gru_loop_backward(Hs, G, HPn, W_hh, mask, dY, dh_n):
    """BPTT for :func:`gru_loop_forward`. Returns dxp (T, B, 3H), dW_hh, db_hh, dh0."""
    T, B, H = dY.shape
    dxp = np.zeros((T, B, 3 * H), dtype=dY.dtype)
    dW_hh = np.zeros_like(W_hh)
    db_hh = np.zeros(3 * H, dtype=dY.dtype)
    dh = dh_n.copy()
    for t in range(T - 1, -1, -1):
        m = np.ones((B, 1), dtype=dY.dtype) if mask is None else mask[t][:, None]
        dh = dh + m * dY[t]
        dxp[t], dh_prev = gru_step_backward(m * dh, Hs[t], G[t], HPn[t], W_hh, dW_hh, db_hh)
        dh = dh_prev + (1 - m) * dh
    return dxp, dW_hh, db_hh, dh


# ----------------------------------------------------------------------------------------------
# Elman RNN (tanh)
# ----------------------------------------------------------------------------------------------

def rnn_step_forward(xp_t, h_prev, W_hh):
    """One Elman step: ``h = tanh(xp_t + h_prev W_hh^T)`` with xp_t = x_t W_ih^T + b_ih + b_hh."""
    return np.tanh(xp_t + h_prev @ W_hh.T)


def rnn_step_backward(dh, h_prev, h, W_hh, dW_hh):
    """Gradient of :func:`rnn_step_forward`: ``dz = dh (1 - h^2)``, ``dh_prev = dz W_hh``,
    ``dW_hh += dz^T h_prev``. Returns dz (= dxp_t) and dh_prev."""
    dz = dh * (1.0 - h * h)
    dW_hh += dz.T @ h_prev
    return dz, dz @ W_hh


def rnn_loop_forward(xp, W_hh, h0, mask):
    """Elman recurrence over a sequence; returns Hs (T+1, B, H)."""
    T, B, _ = xp.shape
    Hs = np.empty((T + 1, B, h0.shape[1]), dtype=xp.dtype)
    Hs[0] = h0
    for t in range(T):
        h = rnn_step_forward(xp[t], Hs[t], W_hh)
        if mask is not None:
            m = mask[t][:, None]
            h = m * h + (1 - m) * Hs[t]
        Hs[t + 1] = h
    return Hs


def rnn_loop_backward(Hs, W_hh, mask, dY, dh_n):
    """BPTT for :func:`rnn_loop_forward`. Returns dxp (T, B, H), dW_hh, dh0."""
    T, B, H = dY.shape
    dxp = np.zeros((T, B, H), dtype=dY.dtype)
    dW_hh = np.zeros_like(W_hh)
    dh = dh_n.copy()
    for t in range(T - 1, -1, -1):
        m = np.ones((B, 1), dtype=dY.dtype) if mask is None else mask[t][:, None]
        dh = dh + m * dY[t]
        dxp[t], dh_prev = rnn_step_backward(m * dh, Hs[t], Hs[t + 1], W_hh, dW_hh)
        dh = dh_prev + (1 - m) * dh
    return dxp, dW_hh, dh


# ----------------------------------------------------------------------------------------------
# Per-step state gradients (what flows back through time), from any backward's dxp
# ----------------------------------------------------------------------------------------------

def state_gradients(kind: str, spec: CellSpec | None, loop: tuple, dxp, W_hh, peep, mask, dY,
                    dfinal):
    """The gradient of the loss with respect to the state carried out of every step.

    ``dh[t] = dL/dh_t`` is the total derivative at h_t (through the output y_t and through every
    later step); ``dc[t] = dL/dc_t`` is the derivative at the cell state carried into step t+1,
    h_t held fixed: the gradient on the constant error carousel, and what ``dc0`` is for the
    initial state. Both are rebuilt from the pre-activation gradients ``dxp`` that a loop
    backward (reference or compiled) returned, one step at a time from the end::

        dh_t      = dh^fut_t + m_t dY_t                       dh^fut_{T-1} = dh_n, dc^fut = dc_n
        LSTM:     dc'_t  = (dc^fut_t + dh_t o_t s'(c_t) + dz_o,t w_co) [|c_t| < clip]
                  dh^fut_{t-1} = dxp_t W_hh                   s = tanh (or identity), s' = 1 - s^2
                  dc^fut_{t-1} = dc'_t f_t + dz_i,t w_ci + dz_f,t w_cf
        GRU:      dh^fut_{t-1} = dh_t z_t + [dz_r, dz_z, dz_n r_t]_t W_hh
        RNN:      dh^fut_{t-1} = dxp_t W_hh

    and at a padded step (m_t = 0) both pass through unchanged.

    Parameters
    ----------
    loop : what the loop forward returned ((Hs, Cs, G), (Hs, G, HPn) or (Hs,)); dxp : (T, B, G*H)
    from the loop backward; dY : (T, B, H); dfinal : [dh_n] or [dh_n, dc_n], each (B, H).

    Returns
    -------
    ``{"h": (T, B, H)}`` and for LSTM ``"c"`` as well, in processing order, zero at padded steps.
    """
    T, B, H = dY.shape
    dt = dY.dtype
    fut_h = np.array(dfinal[0], dtype=dt)
    fut_c = np.array(dfinal[1], dtype=dt) if kind == "lstm" else None
    out_h = np.zeros((T, B, H), dtype=dt)
    out_c = np.zeros((T, B, H), dtype=dt) if kind == "lstm" else None
    if kind == "lstm":
        Cs, G = loop[1], lstm_gate_rows(loop[2])                         # G: (T, B, 4H)
    elif kind == "gru":
        G = loop[1]                                                        # (T, B, 3H)
    for t in range(T - 1, -1, -1):
        m = np.ones((B, 1), dtype=dt) if mask is None else mask[t][:, None]
        dh = fut_h + m * dY[t]
        out_h[t] = m * dh
        da = dxp[t]
        if kind == "lstm":
            out_c[t] = m * fut_c
            c = Cs[t + 1]
            i, f, o = G[t, :, :H], G[t, :, H:2 * H], G[t, :, 3 * H:]
            if not spec.output_gate:
                o = np.ones_like(c)
            if spec.coupled:
                f = 1.0 - i
            elif not spec.forget_gate:
                f = np.ones_like(c)
            s = np.tanh(c) if spec.output_activation else c
            dcn = fut_c + dh * o * ((1.0 - s * s) if spec.output_activation else 1.0)
            if spec.peephole:
                dcn = dcn + da[:, 3 * H:] * peep[2]
            if spec.cell_clip is not None:
                dcn = dcn * (np.abs(c) < spec.cell_clip)
            prev_c = dcn * f
            if spec.peephole:
                prev_c = prev_c + da[:, :H] * peep[0] + da[:, H:2 * H] * peep[1]
            fut_c = m * prev_c + (1 - m) * fut_c
            prev_h = da @ W_hh
        elif kind == "gru":
            r, z = G[t, :, :H], G[t, :, H:2 * H]
            dhp = np.concatenate([da[:, :2 * H], da[:, 2 * H:] * r], axis=1)   # (B, 3H)
            prev_h = dh * z + dhp @ W_hh
        else:
            prev_h = da @ W_hh
        fut_h = m * prev_h + (1 - m) * dh
    return {"h": out_h} if kind != "lstm" else {"h": out_h, "c": out_c}
