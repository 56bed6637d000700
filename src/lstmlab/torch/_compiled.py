"""The compiled path: ``torch.autograd.Function``s over the NumPy kernels of :mod:`lstmlab.kernels`.

Each Function runs one recurrence (one layer, one direction) on CPU float32/float64 tensors,
viewed as NumPy arrays without a copy; the input projection around it stays a torch matrix
product (the caller's), and the products the kernels make from Python (per step on the large
path, dW_hh) go through ``torch.matmul`` too, so the whole training step uses torch's BLAS and
thread pool (NumPy's OpenBLAS threads and torch's, both spinning between calls, had made W2's
step twice as slow as nn.LSTM's). For the same reason the LSTM's per-step elementwise kernels
on the large path run on torch's own OpenMP threads (``kernels.OpenMPTeam`` over the
``GOMP_parallel`` of torch's libgomp), split by batch rows. The forward keeps
the kernels' own cache (states and gates, in their layouts) for the hand-derived backward.

Backward of a backward (``create_graph=True``): the kernels give numbers, not a graph, so there
the Function recomputes the recurrence with :mod:`lstmlab.torch.functional` from its saved inputs
and differentiates that (same equations, tested equal), which makes every higher derivative
available too.

numba is imported only when a Function first runs (:func:`kernels_available`), so
``import lstmlab.torch`` needs torch alone.
"""
from __future__ import annotations

import ctypes
import functools
import os

import numpy as np
import torch

from . import functional as F_

__all__ = ["kernels_available", "LSTMRecurrence", "GRURecurrence", "RNNRecurrence"]


@functools.cache
def _kernels():
    try:
        from .. import kernels
    except ImportError:
        return None
    return kernels if kernels.available() else None


def kernels_available() -> bool:
    """Whether the compiled kernels (numba) can run here."""
    return _kernels() is not None


def _torch_matmul(a, b, out=None):
    """``np.matmul`` through torch's BLAS, on the same memory (NumPy arrays in and out)."""
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    if out is None:
        return torch.matmul(ta, tb).numpy()
    torch.matmul(ta, tb, out=torch.from_numpy(out))
    return out


@functools.cache
def _gomp_parallel():
    """``GOMP_parallel`` of the libgomp that torch loaded (``torch/lib/libgomp.so.1`` in the Linux
    wheels), as a ctypes function; None where torch ships another OpenMP runtime or has not
    loaded that file (``RTLD_NOLOAD``: never a second runtime beside torch's)."""
    path = os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp.so.1")
    if not os.path.isfile(path) or not hasattr(os, "RTLD_NOLOAD"):
        return None
    try:
        f = ctypes.CDLL(path, mode=os.RTLD_NOLOAD).GOMP_parallel
    except (OSError, AttributeError):
        return None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    f.restype = None
    return f


_in_forked_child = [False]


def _torch_team():
    """torch's OpenMP team of ``torch.get_num_threads()`` threads (an ``OpenMPTeam``), on which the
    LSTM kernels run each step's elementwise work, or None: one thread, no libgomp of torch's, or
    a forked child (GNU OpenMP may hang in a child forked after its threads started; the steps
    then run on the calling thread, with the same results)."""
    f, n = _gomp_parallel(), torch.get_num_threads()
    if f is None or n < 2 or _in_forked_child[0]:
        return None
    return _kernels().OpenMPTeam(f, n)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _in_forked_child.__setitem__(0, True))


def _np(t):
    return None if t is None else t.detach().numpy()


def _grad_np(g, shape, like):
    """An incoming gradient as a NumPy array (zeros of ``shape`` where autograd passes None)."""
    return np.zeros(shape, dtype=_np(like).dtype) if g is None else _np(g.contiguous())


def _tensor(a, like):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a, dtype=_np(like).dtype))


def _regrad(fn, inputs, grad_outputs):
    """Gradients of ``fn(*inputs)`` against grad_outputs through the pure-torch equations, with a
    graph (the create_graph branch of every backward below)."""
    live = [i for i, x in enumerate(inputs) if x is not None and x.requires_grad]
    with torch.enable_grad():
        outs = fn(*inputs)
        pairs = [(o, g) for o, g in zip(outs, grad_outputs) if g is not None]
        got = torch.autograd.grad([o for o, _ in pairs], [inputs[i] for i in live],
                                  [g for _, g in pairs], create_graph=True, allow_unused=True)
    grads = [None] * len(inputs)
    for i, g in zip(live, got):
        grads[i] = g
    return grads


class LSTMRecurrence(torch.autograd.Function):
    """(xp, W_hh, peep, R, h0, c0, mask) -> (Y, h_n, c_n) for a :class:`~lstmlab.CellSpec`
    (equations in :func:`lstmlab.torch.functional.lstm_cell`); peep (3, H) and R (3H, 3H) may be
    None, mask (T, B) 0/1 or None. Call through :meth:`apply` with the spec first."""

    @staticmethod
    def forward(ctx, spec, xp, W_hh, peep, R, h0, c0, mask):
        k = _kernels()
        m = _np(mask)
        Hs, Cs, G = k.lstm_loop_forward(spec, _np(xp), _np(W_hh), _np(peep), _np(R), _np(h0),
                                        _np(c0), m, matmul=_torch_matmul, team=_torch_team())
        ctx.spec, ctx.loop, ctx.mask_np = spec, (Hs, Cs, G), m
        ctx.save_for_backward(xp, W_hh, peep, R, h0, c0, mask)
        Y = Hs[1:] if m is None else Hs[1:] * m[:, :, None]                # (T, B, H)
        return _tensor(Y.copy(), xp), _tensor(Hs[-1].copy(), xp), _tensor(Cs[-1].copy(), xp)

    @staticmethod
    def backward(ctx, dY, dh_n, dc_n):
        xp, W_hh, peep, R, h0, c0, mask = ctx.saved_tensors
        if torch.is_grad_enabled():                                        # create_graph=True
            g = _regrad(lambda *a: F_.lstm_recurrence(ctx.spec, *a, mask),
                        [xp, W_hh, peep, R, h0, c0], [dY, dh_n, dc_n])
            return (None, *g, None)
        Hs, Cs, G = ctx.loop
        dxp, dW, dpeep, dR, dh0, dc0 = _kernels().lstm_loop_backward(
            ctx.spec, Hs, Cs, G, _np(W_hh), _np(peep), _np(R), ctx.mask_np,
            _grad_np(dY, (*xp.shape[:2], h0.shape[-1]), xp), _grad_np(dh_n, h0.shape, xp),
            _grad_np(dc_n, c0.shape, xp), matmul=_torch_matmul, team=_torch_team())
        return (None, _tensor(dxp, xp), _tensor(dW, xp),
                _tensor(dpeep, xp) if peep is not None else None,
                _tensor(dR, xp) if R is not None else None,
                _tensor(dh0, xp), _tensor(dc0, xp), None)


class GRURecurrence(torch.autograd.Function):
    """(xp, W_hh, b_hh, h0, mask) -> (Y, h_n), torch.nn.GRU's recurrence
    (:func:`lstmlab.torch.functional.gru_recurrence`)."""

    @staticmethod
    def forward(ctx, xp, W_hh, b_hh, h0, mask):
        m = _np(mask)
        Hs, G, HPn = _kernels().gru_loop_forward(_np(xp), _np(W_hh), _np(b_hh), _np(h0), m,
                                                 matmul=_torch_matmul)
        ctx.loop, ctx.mask_np = (Hs, G, HPn), m
        ctx.save_for_backward(xp, W_hh, b_hh, h0, mask)
        Y = Hs[1:] if m is None else Hs[1:] * m[:, :, None]
        return _tensor(Y.copy(), xp), _tensor(Hs[-1].copy(), xp)

    @staticmethod
    def backward(ctx, dY, dh_n):
        xp, W_hh, b_hh, h0, mask = ctx.saved_tensors
        if torch.is_grad_enabled():
            g = _regrad(lambda *a: F_.gru_recurrence(*a, mask), [xp, W_hh, b_hh, h0], [dY, dh_n])
            return (*g, None)
        Hs, G, HPn = ctx.loop
        dxp, dW, db, dh0 = _kernels().gru_loop_backward(
            Hs, G, HPn, _np(W_hh), ctx.mask_np, _grad_np(dY, (xp.shape[0], *h0.shape), xp),
            _grad_np(dh_n, h0.shape, xp), matmul=_torch_matmul)
        return _tensor(dxp, xp), _tensor(dW, xp), _tensor(db, xp), _tensor(dh0, xp), None


class RNNRecurrence(torch.autograd.Function):
    """(xp, W_hh, h0, mask) -> (Y, h_n), the tanh Elman RNN
    (:func:`lstmlab.torch.functional.rnn_recurrence`)."""

    @staticmethod
    def forward(ctx, xp, W_hh, h0, mask):
        m = _np(mask)
        Hs = _kernels().rnn_loop_forward(_np(xp), _np(W_hh), _np(h0), m, matmul=_torch_matmul)
        ctx.Hs, ctx.mask_np = Hs, m
        ctx.save_for_backward(xp, W_hh, h0, mask)
        Y = Hs[1:] if m is None else Hs[1:] * m[:, :, None]
        return _tensor(Y.copy(), xp), _tensor(Hs[-1].copy(), xp)

    @staticmethod
    def backward(ctx, dY, dh_n):
        xp, W_hh, h0, mask = ctx.saved_tensors
        if torch.is_grad_enabled():
            g = _regrad(lambda *a: F_.rnn_recurrence(*a, mask), [xp, W_hh, h0], [dY, dh_n])
            return (*g, None)
        dxp, dW, dh0 = _kernels().rnn_loop_backward(ctx.Hs, _np(W_hh), ctx.mask_np,
                                                    _grad_np(dY, xp.shape, xp), _grad_np(dh_n, h0.shape, xp),
                                                    matmul=_torch_matmul)
        return _tensor(dxp, xp), _tensor(dW, xp), _tensor(dh0, xp), None
