"""Compiled fast path (numba) of the LSTM-family loops, tested equal to :mod:`lstmlab.core.cells`.

The six loop functions and the two input-projection functions have the reference's names,
arguments and results, so the sequence layer can call either module (one exception: the LSTM's
small path returns its gates G gate-major, (T, 4, B, H), the layout its loops write and read in
place; :func:`lstmlab.core.cells.lstm_gate_rows` turns them into the reference's (T, B, 4H), and
either backward takes either layout)::

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
compiles every kernel ahead of time, about a minute per dtype in one process and about half that
shared between two, ``warmup(jobs=2)``; the first forward and backward of one LSTM layer in one
dtype 34 s). The test suite and ``run_configs``'s process pool warm up that way first.

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

from ..core.validate import check_dtype

__all__ = [
    "available", "unavailable_reason", "warmup",
    "lstm_loop_forward", "lstm_loop_backward", "gru_loop_forward", "gru_loop_backward",
    "rnn_loop_forward", "rnn_loop_backward", "input_projection", "input_projection_backward",
    "set_num_threads", "get_num_threads", "adam_scalars", "adam_update", "OpenMPTeam",
]

try:
    from . import _api
    from ._api import (OpenMPTeam, adam_scalars, adam_update, get_num_threads,  # noqa: F401
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
    OpenMPTeam = _missing
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


#: The pieces of :func:`warmup`: each compiles its own kernels and no other piece's (numba keeps
#: one cache index per kernel, and two processes adding entries to the same index at once can lose
#: one, or pair a signature with the other's code), with its compilation in seconds per dtype
#: (measured on a fresh cache, 2-core Zen 4) in one thread and with threads (the batch parts'
#: drivers, ``lstm_*_parts``), which set how the pieces are shared out between processes.
_PIECES = {
    "lstm_bwd": (18.0, 9.0),     # lstm_bwd_small (lstm_bwd_parts)
    "lstm_fwd": (15.0, 6.0),     # lstm_fwd_small (lstm_fwd_parts)
    "steps": (8.5, 0.0),         # the large path's per-step kernels of all cells and merge_rows
    "proj": (4.5, 0.0),          # proj_forward, proj_backward, ids_proj_backward
    "gru": (4.0, 0.0),           # gru_fwd_small, gru_bwd_small
    "rnn": (2.0, 0.0),           # rnn_fwd_small, rnn_bwd_small
    "adam": (0.3, 0.0),          # adam_update (vectors and matrices)
}


def warmup(dtypes=("float64", "float32"), jobs: int = 1, threaded: bool = False,
           pieces=None) -> None:
    """Compile (or load from the on-disk cache) every kernel for the given dtypes, both paths.

    jobs : processes to share the compilation between. 1 compiles in this process; more starts
        that many Python processes, each compiling a share of the kernels into the on-disk
        cache, and waits for them (this process then loads the kernels from there when it first
        calls them); RuntimeError if one of them fails. On a fresh cache two processes on two
        cores take about half the time of one.
    threaded : also compile the drivers that run the LSTM's batch parts on threads (which the
        current :func:`set_num_threads` decides when False).
    pieces : only these groups of kernels (default: all): ``lstm_fwd``, ``lstm_bwd`` (the LSTM's
        small path), ``steps`` (the large path of every cell), ``proj`` (input projections),
        ``gru``, ``rnn`` (their small paths), ``adam``.
    """
    if _api is None:
        raise RuntimeError(f"lstmlab.kernels: numba is not usable ({_REASON})")
    names = [str(check_dtype(d, "dtypes")) for d in dtypes]
    counts = (1, 2) if threaded else (get_num_threads(),)       # the LSTM parts' thread counts
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, got {jobs!r}")
    pieces = _check_pieces(list(_PIECES) if pieces is None else pieces)
    if jobs == 1 or len(pieces) == 1:
        _warm(pieces, names, counts)
        return
    _warm_in_processes(_share_out(jobs, max(counts) > 1, pieces), names, counts)


def _check_pieces(pieces) -> list[str]:
    pieces = list(pieces)
    unknown = set(pieces) - set(_PIECES)
    if unknown:
        raise ValueError(f"pieces: unknown {sorted(unknown)}; known: {sorted(_PIECES)}")
    return pieces


def _share_out(jobs: int, threaded: bool, pieces=None) -> list[list[str]]:
    """The pieces (default: all) in at most ``jobs`` groups of nearly equal compile time (longest
    first, each to the group with the least so far)."""
    cost = {k: a + (b if threaded else 0.0) for k, (a, b) in _PIECES.items()
            if pieces is None or k in pieces}
    groups: list[list[str]] = [[] for _ in range(min(jobs, len(cost)))]
    load = [0.0] * len(groups)
    for k in sorted(cost, key=cost.get, reverse=True):
        g = load.index(min(load))
        groups[g].append(k)
        load[g] += cost[k]
    return groups


def _warm_in_processes(groups, names, counts, timeout: float = 1800.0) -> None:
    """One Python process per group of pieces, all at once; this package's own directory goes
    first on their path (the one this process imported), and they are killed if this process
    stops waiting (an error, Ctrl-C, ``timeout`` seconds)."""
    import subprocess

    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import lstmlab.kernels as k; "
            "k._warm(sys.argv[2].split(','), sys.argv[3].split(','), "
            "[int(n) for n in sys.argv[4].split(',')])")
    procs = []
    failed = []
    try:
        for g in groups:
            procs.append(subprocess.Popen(
                [sys.executable, "-c", code, src, ",".join(g), ",".join(names),
                 ",".join(str(n) for n in counts)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for g, p in zip(groups, procs):
            try:
                _, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                failed.append(f"{','.join(g)}: still compiling after {timeout:.0f} s")
                continue
            if p.returncode != 0:
                failed.append(f"{','.join(g)} (exit {p.returncode}): {err.strip()[-800:]}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if failed:
        raise RuntimeError("lstmlab.kernels.warmup: a compiling process failed: "
                           + "; ".join(failed))


def _warm(pieces, names, counts=(1,)) -> None:
    """Compile ``pieces`` (names in _PIECES) for the dtypes ``names``; the LSTM's batch parts with
    each thread count in ``counts`` (1 runs them in turn, more through numba's threads; the
    count is restored after)."""
    import numpy as np

    from ..core.spec import CellSpec

    _check_pieces(pieces)
    spec = CellSpec(peephole=True, full_gate_recurrence=True, cell_clip=5.0)
    before = get_num_threads()
    T, B, H, D = 2, 17, 3, 2          # B > PART_ROWS: two batch parts
    try:
        for name in names:
            dt = np.dtype(name)
            rng = np.random.default_rng(0)
            r = lambda *s: rng.standard_normal(s).astype(dt)  # noqa: E731
            m = np.ones((T, B), dtype=dt)
            lstm_w = (r(4 * H, H), r(3, H), r(3 * H, 3 * H))
            for piece in pieces:
                if piece == "lstm_fwd":
                    for n in counts:
                        set_num_threads(n)
                        lstm_loop_forward(spec, r(T, B, 4 * H), *lstm_w, r(B, H), r(B, H), m,
                                          large=False)
                elif piece == "lstm_bwd":
                    for n in counts:
                        set_num_threads(n)
                        lstm_loop_backward(spec, r(T + 1, B, H), r(T + 1, B, H), r(T, B, 4 * H),
                                           *lstm_w, m, r(T, B, H), r(B, H), r(B, H), large=False)
                elif piece == "steps":
                    Hs, Cs, G = lstm_loop_forward(spec, r(T, B, 4 * H), *lstm_w, r(B, H), r(B, H),
                                                  m, large=True)
                    lstm_loop_backward(spec, Hs, Cs, G, *lstm_w, m, r(T, B, H), r(B, H), r(B, H),
                                       large=True)
                    for team in ("lstm_fwd_team", "lstm_bwd_team"):  # OpenMPTeam's callbacks
                        _api._team_callback(team, dt)
                    _warm_gru(r, m, T, B, H, large=True)
                    _warm_rnn(r, m, T, B, H, large=True)
                elif piece == "proj":
                    xp = input_projection(r(T, B, D), r(4 * H, D), r(4 * H))
                    input_projection_backward(xp, r(T, B, D), r(4 * H, D))
                    V = _api.PROJ_MAX_D + 1                  # token ids past the one-hot product
                    ids = rng.integers(0, V, (T, B))
                    xp = input_projection(ids, r(4 * H, V), r(4 * H))
                    input_projection_backward(xp, ids, r(4 * H, V), False)
                elif piece == "gru":
                    _warm_gru(r, m, T, B, H, large=False)
                elif piece == "rnn":
                    _warm_rnn(r, m, T, B, H, large=False)
                elif piece == "adam":
                    for shape in ((3,), (2, 3)):             # vectors and matrices
                        adam_update(r(*shape), r(*shape), r(*shape), np.ones(shape, dtype=dt),
                                    adam_scalars(dt, 0.9, 0.999, 1e-3, 1e-3, 1e-8))
    finally:
        set_num_threads(before)


def _warm_gru(r, m, T, B, H, large):
    Hs, G, HPn = gru_loop_forward(r(T, B, 3 * H), r(3 * H, H), r(3 * H), r(B, H), m, large=large)
    gru_loop_backward(Hs, G, HPn, r(3 * H, H), m, r(T, B, H), r(B, H), large=large)


def _warm_rnn(r, m, T, B, H, large):
    Hs = rnn_loop_forward(r(T, B, H), r(H, H), r(B, H), m, large=large)
    rnn_loop_backward(Hs, r(H, H), m, r(T, B, H), r(B, H), large=large)
