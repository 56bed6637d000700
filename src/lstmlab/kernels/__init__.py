"""Compiled fast path (numba) of the LSTM-family loops, tested equal to :mod:`lstmlab.core.cells`.

The six loop functions and the two input-projection functions have the reference's names,
arguments and results, so the sequence layer can call either module::

    input_projection(x, W_ih, bias) -> xp
    input_projection_backward(dxp, x, W_ih, input_grad=True) -> (dx or None, dW_ih, db)
    lstm_loop_forward(spec, xp, W_hh, peep, R, h0, c0, mask, overwrite_xp=False) -> (Hs, Cs, G)
    lstm_loop_backward(spec, Hs, Cs, G, W_hh, peep, R, mask, dY, dh_n, dc_n)
        -> (dxp, dW_hh, dpeep, dR, dh0, dc0)
    gru_loop_forward(xp, W_hh, b_hh, h0, mask) -> (Hs, G, HPn)
    gru_loop_backward(Hs, G, HPn, W_hh, mask, dY, dh_n) -> (dxp, dW_hh, db_hh, dh0)
    rnn_loop_forward(xp, W_hh, h0, mask) -> Hs
    rnn_loop_backward(Hs, W_hh, mask, dY, dh_n) -> (dxp, dW_hh, dh0)

numba is optional: without it this package still imports, :func:`available` returns False and the
loop functions raise ``RuntimeError``. Compiled code is cached on disk (numba ``cache=True``, in
``__pycache__`` beside this package or numba's user cache directory), so only the first process
pays the compilation (on the 2-core machine of benchmarks/README.md: :func:`warmup`, which
compiles every kernel ahead of time, about a minute per dtype; the first forward and backward of
one LSTM layer in one dtype 38 s).

The LSTM's small path (hidden sizes up to 32) splits the batch into parts of 16 rows, which can
run on numba's threads (:func:`set_num_threads`, ``LSTMLAB_NUM_THREADS``; one thread by default,
see there why). The parts and the order in which their gradients are summed depend on the batch
size only, so any thread count gives the same bits.

Importing this package with numba present also raises glibc's mmap/trim thresholds (see
:func:`_tune_malloc`; ``LSTMLAB_MALLOC_TUNE=0`` disables it).
"""
from __future__ import annotations

import ctypes
import os
import sys

__all__ = [
    "available", "unavailable_reason", "warmup",
    "lstm_loop_forward", "lstm_loop_backward", "gru_loop_forward", "gru_loop_backward",
    "rnn_loop_forward", "rnn_loop_backward", "input_projection", "input_projection_backward",
    "set_num_threads", "get_num_threads", "adam_scalars", "adam_update",
]

try:
    from . import _api
    from ._api import (adam_scalars, adam_update, get_num_threads,  # noqa: F401
                       gru_loop_backward, gru_loop_forward, input_projection,
                       input_projection_backward, lstm_loop_backward, lstm_loop_forward,
                       rnn_loop_backward, rnn_loop_forward, set_num_threads)
    _REASON = None
except Exception as exc:  # numba missing (ImportError) or unusable with this NumPy
    _api = None
    _REASON = f"{type(exc).__name__}: {exc}"

    def _missing(*args, **kwargs):
        raise RuntimeError(f"lstmlab.kernels: numba is not usable ({_REASON}); "
                           "install numba or use backend='reference'")

    lstm_loop_forward = lstm_loop_backward = _missing
    gru_loop_forward = gru_loop_backward = _missing
    rnn_loop_forward = rnn_loop_backward = _missing
    input_projection = input_projection_backward = _missing

    def adam_scalars(dtype, b1, b2, step, c2, eps):
        """Without numba: None (nothing to pass on)."""
        return None

    def adam_update(p, g, m, v, s) -> bool:
        """Without numba: False (the optimiser runs its NumPy update)."""
        return False

    def set_num_threads(n: int) -> None:
        """Without numba there is nothing to run on threads: accepted and ignored."""

    def get_num_threads() -> int:
        """Without numba: 1."""
        return 1


def _tune_malloc() -> bool:
    """Keep freed heap memory for reuse instead of returning it to the OS (glibc only).

    A training iteration allocates a few arrays of ~1 MB (xp, G, dxp, ...). glibc serves
    allocations above its mmap threshold with fresh pages and unmaps them on free, so every
    iteration pays ~300 page faults per array: on the Gers-2002 workload that was ~0.8 ms of a
    ~2 ms iteration when two such arrays were alive at once (torch avoids it with its caching
    allocator). Raising the mmap and trim thresholds makes the heap keep and reuse that memory.
    Set LSTMLAB_MALLOC_TUNE=0 to leave malloc alone.
    """
    if os.environ.get("LSTMLAB_MALLOC_TUNE", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 256 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 1 << 30))


MALLOC_TUNED = _tune_malloc() if _api is not None else False


def available() -> bool:
    """True when numba imports and the compiled loops can be used."""
    return _api is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (the import error), or None."""
    return _REASON


def warmup(dtypes=("float64", "float32")) -> None:
    """Compile (or load from the on-disk cache) every kernel for the given dtypes, both paths."""
    if _api is None:
        raise RuntimeError(f"lstmlab.kernels: numba is not usable ({_REASON})")
    import numpy as np

    from ..core.spec import CellSpec

    spec = CellSpec(peephole=True, full_gate_recurrence=True, cell_clip=5.0)
    for name in dtypes:
        dt = np.dtype(name)
        T, B, H = 2, 17, 3                # B > PART_ROWS: with threads set, their drivers too
        rng = np.random.default_rng(0)
        r = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
        m = np.ones((T, B), dtype=dt)
        xp = input_projection(r(T, B, 2), r(4 * H, 2), r(4 * H))
        input_projection_backward(xp, r(T, B, 2), r(4 * H, 2))
        for shape in ((3,), (2, 3)):                     # vectors and matrices
            adam_update(r(*shape), r(*shape), r(*shape), np.ones(shape, dtype=dt),
                        adam_scalars(dt, 0.9, 0.999, 1e-3, 1e-3, 1e-8))
        for large in (False, True):
            Hs, Cs, G = lstm_loop_forward(spec, r(T, B, 4 * H), r(4 * H, H), r(3, H), r(3 * H, 3 * H),
                                          r(B, H), r(B, H), m, large=large)
            lstm_loop_backward(spec, Hs, Cs, G, r(4 * H, H), r(3, H), r(3 * H, 3 * H), m,
                               r(T, B, H), r(B, H), r(B, H), large=large)
            Hs, G, HPn = gru_loop_forward(r(T, B, 3 * H), r(3 * H, H), r(3 * H), r(B, H), m, large=large)
            gru_loop_backward(Hs, G, HPn, r(3 * H, H), m, r(T, B, H), r(B, H), large=large)
            Hs = rnn_loop_forward(r(T, B, H), r(H, H), r(B, H), m, large=large)
            rnn_loop_backward(Hs, r(H, H), m, r(T, B, H), r(B, H), large=large)
