"""Python wrappers around the compiled kernels, with the reference loops' exact interface.

The wrappers turn the :class:`~lstmlab.core.spec.CellSpec` into ints and a float, make every array
contiguous in one dtype (the dtype of ``xp`` forward, of ``Hs`` backward), pick the *small* path
(the whole sequence in one compiled call; for the LSTM on numba's threads one call per batch
part of PART_ROWS rows, without threads one call per part in the backward and one for the whole
batch in the forward) or the *large* path (BLAS per step from Python plus one compiled
elementwise call per step), and do ``dW_hh`` (and ``dR``, ``db_hh``) as one matrix product after
the loop (the small LSTM path accumulates ``dW_hh`` inside its kernel instead, per part).
"""
from __future__ import annotations

import functools
import os
import threading

import numba
import numpy as np

from ..core import cells
from . import _jit

__all__ = [
    "lstm_loop_forward", "lstm_loop_backward", "gru_loop_forward", "gru_loop_backward",
    "rnn_loop_forward", "rnn_loop_backward", "input_projection", "input_projection_backward",
    "SMALL_MAX_H", "PROJ_MAX_D", "PROJ_BIAS_COLUMN_MAX_D", "PART_ROWS", "use_large_path",
    "batch_parts", "set_num_threads", "get_num_threads", "adam_scalars", "adam_update",
    "OpenMPTeam",
]

#: Largest hidden size that takes the small path (recurrent products in compiled loops). Above
#: it, one BLAS call per step beats the compiled loop: for the LSTM both paths cost the same at
#: H = 32 (B = 32 or 64, T = 100) and BLAS wins by 1.5-2x at H = 64, on a 2-core AMD EPYC (Zen 4)
#: with OpenBLAS; benchmarks/README.md has the numbers.
SMALL_MAX_H = {"lstm": 32, "gru": 40, "rnn": 64}


def use_large_path(kind: str, H: int, B: int) -> bool:
    """Whether the cell ``kind`` with H hidden units and batch B takes the per-step BLAS path."""
    return H > SMALL_MAX_H[kind]


# ----------------------------------------------------------------------------------------------
# Threads (the LSTM's small path)
# ----------------------------------------------------------------------------------------------

#: Batch rows per part of the LSTM's small path. The parts depend on the batch size only, so the
#: results are the same bits whatever the number of threads.
PART_ROWS = 16


def batch_parts(B: int) -> np.ndarray:
    """Boundaries of the batch parts: ceil(B / PART_ROWS) nearly equal row ranges, (P + 1,)."""
    return np.array(_parts(B), dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _parts(B: int) -> tuple[int, ...]:
    P = max(1, -(-B // PART_ROWS))
    return tuple((p * B) // P for p in range(P + 1))


def _default_threads() -> int:
    env = os.environ.get("LSTMLAB_NUM_THREADS", "").strip()
    if not env:
        return 1
    try:
        n = int(env)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"LSTMLAB_NUM_THREADS: expected a positive integer, got {env!r}")
    return n


_threads = {"n": None, "layer_ok": None}


def set_num_threads(n: int) -> None:
    """Threads for the LSTM's small path (batch parts run in a numba ``prange``), capped at
    numba's own thread count (``numba.config.NUMBA_NUM_THREADS``, the cores by default). 1 runs
    the backward's parts one after the other in the calling thread and the forward as one call
    over the whole batch (its rows are independent), with the same results. Default:
    ``LSTMLAB_NUM_THREADS``, else 1.

    Off by default: on 2 cores an LSTM with H = 32 and a Dense(32, 512) readout trained 50%
    slower on 2 threads than on 1 (``GOMP_SPINCOUNT=10000``: 12% slower), and even the Gers 2002
    recipe, whose iteration alone runs ~15% faster on 2 threads, trained slower on them: 8.9 s a
    run against 5.5 s. OpenBLAS's worker spins ~0.1 s after each product it runs on two threads
    (the recipe's evaluations) and takes the second core from numba's; with
    ``OPENBLAS_THREAD_TIMEOUT=4`` in the environment before NumPy loads, 2 threads trained that
    recipe ~7% faster (benchmarks/README.md, "Threads"). Measure before switching it on:
    ``benchmarks/bench_gers_run.py``."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    _threads["n"] = int(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int:
    """The threads the small path uses now: :func:`set_num_threads`'s count (or its default), or
    1 where threads cannot run (numba's ``workqueue`` layer, or a process forked after threaded
    kernels ran)."""
    if _threads["n"] is None:
        set_num_threads(_default_threads())
    return 1 if _threads["layer_ok"] is False else _threads["n"]


def _threaded(parts: int) -> bool:
    """Run the parts on threads? With more than one part and more than one thread from
    :func:`get_num_threads`, which says 1 once the first threaded call has shown numba's
    ``workqueue`` layer (its fallback when neither OpenMP nor TBB loads; it takes longer to start
    and join its threads than the parts run: 0.80 ms against 0.59 ms on one thread, Gers 2002
    forward, with an earlier version of the kernels). Sets numba's thread count for the call."""
    n = get_num_threads()
    if parts < 2 or n < 2:
        return False
    numba.set_num_threads(n)
    return True


def _after_threaded_call() -> None:
    if _threads["layer_ok"] is None:
        _threads["layer_ok"] = numba.threading_layer() != "workqueue"


def _forked_child() -> None:
    """GNU OpenMP (numba's ``omp`` layer here) cannot run in a process forked after its first
    use: numba terminates such a child at its first parallel region. A forked child of a process
    that ran threaded kernels therefore runs the parts in turn (same results)."""
    if _threads["layer_ok"] is not None:
        _threads["n"] = 1
        _threads["layer_ok"] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked_child)


class _SLP:
    """Compile with LLVM's SLP vectoriser on (numba leaves it off by default), which turns the
    8-accumulator tiles of ``_jit._vecmat`` into vector registers. numba reads the setting when it
    compiles, so it is switched on only around our own kernel calls (and restored after); the
    compiled code is cached on disk like any other."""

    _lock = threading.Lock()
    _depth = 0
    _saved = 0

    def __enter__(self):
        with self._lock:
            if _SLP._depth == 0:
                _SLP._saved = numba.config.SLP_VECTORIZE
                numba.config.SLP_VECTORIZE = 1
            _SLP._depth += 1

    def __exit__(self, *exc):
        with self._lock:
            _SLP._depth -= 1
            if _SLP._depth == 0:
                numba.config.SLP_VECTORIZE = _SLP._saved


_slp = _SLP()
_ready: set = set()


def _call(kernel, dt, *args):
    """Call a compiled kernel; its first call per dtype (which compiles or loads it) runs with the
    SLP vectoriser on."""
    key = (kernel, dt)
    if key in _ready:
        return kernel(*args)
    with _slp:
        out = kernel(*args)
    _ready.add(key)
    return out


def _dtype(a) -> np.dtype:
    dt = np.asarray(a).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _c(a, dt):
    return np.ascontiguousarray(a, dtype=dt)


# Operands that stand for "no mask", "no peepholes", "no gate recurrence": made once per shape
# (the kernels only read them; a W1 training iteration would otherwise allocate them four times).
@functools.lru_cache(maxsize=32)
def _ones(shape, dt):
    return np.ones(shape, dtype=dt)


@functools.lru_cache(maxsize=32)
def _zeros(shape, dt):
    return np.zeros(shape, dtype=dt)


def _mask(mask, T, B, dt):
    if mask is None:
        return _ones((T, B), dt)
    m = np.ascontiguousarray(mask, dtype=dt)
    if m.shape != (T, B):
        raise ValueError(f"mask: expected shape {(T, B)}, got {m.shape}")
    if not np.all((m == 0) | (m == 1)):
        raise ValueError("mask: expected only 0 and 1")
    return m


@functools.lru_cache(maxsize=64)
def _lstm_flags(spec):
    return (int(spec.input_gate), int(spec.forget_gate), int(spec.output_gate),
            int(spec.input_activation), int(spec.output_activation), int(spec.coupled),
            int(spec.full_gate_recurrence), int(spec.peephole))


def _lstm_operands(spec, W_hh, peep, R, mask, T, B, H, dt):
    """What both LSTM kernels take besides the sequence arrays, in the compute dtype: W_hh,
    peepholes (3, H), gate recurrence (3H, 3H), mask (T, B), the spec's flags, clip and 1."""
    clip = dt.type(spec.cell_clip if spec.cell_clip is not None else 0.0)
    return (_c(W_hh, dt), _peep(spec, peep, H, dt), _recur(spec, R, H, dt), _mask(mask, T, B, dt),
            _lstm_flags(spec), clip, dt.type(1.0))


def _peep(spec, peep, H, dt):
    if spec.peephole:
        p = _c(peep, dt)
        if p.shape != (3, H):
            raise ValueError(f"peep: expected shape {(3, H)}, got {p.shape}")
        return p
    return _zeros((3, H), dt)


def _recur(spec, R, H, dt):
    if spec.full_gate_recurrence:
        R = _c(R, dt)
        if R.shape != (3 * H, 3 * H):
            raise ValueError(f"R: expected shape {(3 * H, 3 * H)}, got {R.shape}")
        return R
    return _zeros((1, 1), dt)


def _step_rhs(W):
    """W_hh^T (H, G*H) as a C-contiguous copy, the right operand of the large path's per-step
    products ``h_prev W_hh^T``: OpenBLAS runs that product 25-35 % faster on it than on the
    transposed view (B 32, one thread, float32: H 128 69 -> 48 us, H 256 269 -> 203 us), for one
    copy per sequence. The sums change order only for batches of a few rows (float64, H 64: none
    from 7 rows up), so the stored runs of the experiments keep their bits."""
    return np.ascontiguousarray(W.T)


def _ifo(H):
    """Indices of the i, f, o blocks in a 4H gate row."""
    return np.r_[0:2 * H, 3 * H:4 * H]


# ----------------------------------------------------------------------------------------------
# Input projection
# ----------------------------------------------------------------------------------------------

#: Widest input that takes the compiled projection; wider inputs go to BLAS, whose blocked
#: products win once there is enough work per call.
PROJ_MAX_D = 16

#: Widest input whose BLAS projection takes the bias as one more input column of ones (forward:
#: ``[x, 1] [W_ih^T; b]``; backward: ``dxp^T [x, 1]`` = [dW_ih, db]), one product instead of a
#: product and a pass over the (T*B, G*H) result. T*B = 6400, G*H = 1024, float64, 2-core EPYC:
#: forward 14.6 -> 10.5 ms at D = 32, 22.2 -> 15.7 at D = 64, 45.8 -> 43.9 at D = 255; at
#: D = 512 the 513th column costs OpenBLAS one more pass over its result and the trick loses.
PROJ_BIAS_COLUMN_MAX_D = 255


def _with_ones_column(x2, dt):
    """(N, D) -> (N, D + 1) in dtype dt, last column 1."""
    N, D = x2.shape
    x1 = np.empty((N, D + 1), dtype=dt)
    x1[:, :D] = x2
    x1[:, D] = 1
    return x1


def _at_b(a, b, mat=np.matmul):
    """``a^T b`` for a (N, M), b (N, K): the (M, K) sum over rows ``r`` of ``a[r]^T b[r]``, C-contiguous,
    computed as ``(b^T a)^T`` (the same flops as ``a.T @ b``). On one thread NumPy's OpenBLAS
    (0.3.31, AMD EPYC) took 40 ms for the char LM's dW_hh, (512 x 3200)(3200 x 128), written
    ``a.T @ b`` as the first large product of a process, and 14 ms written this way (2 x 256:
    171 against 56 ms); ``benchmarks/bench_dw_product.py`` times both in fresh processes. On two
    threads ``a.T @ b`` alone is faster (6.8 against 10.1 ms), but the char-LM iteration read the
    same; torch's BLAS (the PyTorch front end's ``mat``) took the same time in either order."""
    return np.ascontiguousarray(mat(b.T, a).T)                     # (M, K)


def _onehot(ids, V, dt):
    """(T, B) ids -> (T, B, V) one-hot rows in dtype dt."""
    return np.eye(V, dtype=dt)[ids]


def input_projection(x, W_ih, bias):
    """Compiled :func:`lstmlab.core.cells.input_projection` (same arguments and result). Token ids
    of up to PROJ_MAX_D tokens take the compiled product of their one-hot rows (the same bits as
    the gather); more tokens take the gather, ``(W_ih^T + b)[ids]``."""
    if x.ndim == 2:                                               # (T, B) token ids
        dt = _dtype(W_ih)
        V = np.shape(W_ih)[1]
        if V <= PROJ_MAX_D:
            return input_projection(_onehot(x, V, dt), W_ih, bias)
        return np.take(np.asarray(W_ih, dtype=dt).T + np.asarray(bias, dtype=dt), x, axis=0)
    T, B, D = x.shape
    dt = _dtype(x)
    if D > PROJ_BIAS_COLUMN_MAX_D:
        return cells.input_projection(x, W_ih, bias)
    if D > PROJ_MAX_D:
        W1 = np.empty((D + 1, np.shape(W_ih)[0]), dtype=dt)       # (D+1, G*H) = [W_ih^T; b]
        W1[:D] = np.asarray(W_ih).T
        W1[D] = bias
        return (_with_ones_column(x.reshape(T * B, D), dt) @ W1).reshape(T, B, -1)
    W = _c(W_ih, dt)
    xp = np.empty((T * B, W.shape[0]), dtype=dt)                  # (T*B, G*H)
    _call(_jit.proj_forward, dt, _c(x, dt).reshape(T * B, D), np.ascontiguousarray(W.T),
          _c(bias, dt), xp, dt.type(0))
    return xp.reshape(T, B, -1)


def input_projection_backward(dxp, x, W_ih, input_grad=True):
    """Compiled :func:`lstmlab.core.cells.input_projection_backward` (same arguments and results).
    Token ids as in :func:`input_projection`: up to PROJ_MAX_D tokens the one-hot product, more
    a compiled scatter-add (``_jit.ids_proj_backward``); no dx for ids (None)."""
    dt = _dtype(dxp)
    if x.ndim == 2:                                               # (T, B) token ids
        V = np.shape(W_ih)[1]
        if V <= PROJ_MAX_D:
            return None, *input_projection_backward(dxp, _onehot(x, V, dt), W_ih, False)[1:]
        d2 = _c(dxp, dt).reshape(x.size, -1)                      # (T*B, G*H)
        dWT = np.empty((V, d2.shape[1]), dtype=dt)
        db = np.empty(d2.shape[1], dtype=dt)
        _call(_jit.ids_proj_backward, dt, np.ascontiguousarray(x, dtype=np.int64).reshape(-1), d2,
              _ones((_jit.PROJ_BLOCK,), dt), dWT, db, dt.type(0))
        return None, np.ascontiguousarray(dWT.T), db
    T, B, D = x.shape
    if D > PROJ_BIAS_COLUMN_MAX_D:
        return cells.input_projection_backward(dxp, x, W_ih, input_grad)
    d2 = _c(dxp, dt).reshape(T * B, -1)                           # (T*B, G*H)
    if D > PROJ_MAX_D:
        dWb = _at_b(d2, _with_ones_column(x.reshape(T * B, D), dt))  # (G*H, D+1) = [dW_ih, db]
        dx = (d2 @ np.asarray(W_ih, dtype=dt)).reshape(T, B, D) if input_grad else None
        return dx, np.ascontiguousarray(dWb[:, :D]), np.ascontiguousarray(dWb[:, D])
    dx = np.empty((T * B if input_grad else 0, D), dtype=dt)
    dWT = np.empty((D, d2.shape[1]), dtype=dt)
    db = np.empty(d2.shape[1], dtype=dt)
    _call(_jit.proj_backward, dt, d2, _c(x, dt).reshape(T * B, D),
          np.ascontiguousarray(np.asarray(W_ih, dtype=dt).T), _ones((_jit.PROJ_BLOCK,), dt),
          dx, dWT, db, dt.type(0))
    return (dx.reshape(T, B, D) if input_grad else None), np.ascontiguousarray(dWT.T), db


# ----------------------------------------------------------------------------------------------
# A caller's OpenMP team (the LSTM's large path under the PyTorch front end)
# ----------------------------------------------------------------------------------------------

class OpenMPTeam:
    """Runs a C callback ``void fn(void *data)`` on a team of ``threads`` threads of an OpenMP
    runtime (or fewer, as the runtime grants), through its ``GOMP_parallel(fn, data, threads,
    flags)`` (libgomp's entry point for ``#pragma omp parallel``; a ctypes function). The LSTM's
    large-path loops take one (``team=``) and run each step's elementwise kernel on it, split by
    batch rows, instead of on the calling thread alone.

    Why a caller's team: the PyTorch front end passes torch's own (the libgomp that torch loads),
    whose threads have just made the step's matrix product and still spin. Rows on a thread of
    our own (or on numba's threads, another OpenMP runtime) made W2's forward slower, since
    they fought torch's spinning threads for the two cores; on torch's team its forward loop went
    from 105-107 to 81-88 ms and the kernels alone from 31-33 to 17-18 ms (T=100, B=64, H=256,
    float32, 2 threads, AMD EPYC)."""

    def __init__(self, gomp_parallel, threads: int):
        self._parallel = gomp_parallel
        self.threads = int(threads)

    def run(self, fn_address: int, data_address: int) -> None:
        self._parallel(fn_address, data_address, self.threads, 0)


@functools.lru_cache(maxsize=8)
def _team_callback(name: str, dt: np.dtype):
    """The C callback ``_jit.<name><bits>`` (a ``numba.cfunc``, compiled on first use with the SLP
    vectoriser on and cached on disk like the kernels; this cache keeps its code alive)."""
    body = getattr(_jit, f"{name}{dt.itemsize * 8}")
    with _slp:
        return numba.cfunc(numba.types.void(numba.types.voidptr), cache=True, error_model="numpy",
                           fastmath=_jit._FM)(body)


def _team_stepper(team, name, dt, T, B, H, flags, qrows, clip, one, *arrays):
    """``step(t)``, which runs step t of the kernel ``name`` (``lstm_fwd_team`` or
    ``lstm_bwd_team``) on ``team``'s threads, split into parts of the batch's rows; None without a
    team (or with one thread, or one row): the caller then makes one call per step itself.

    The int64 block the callback reads (layout at ``_jit.TEAM_BLOCK``) holds addresses only, so
    ``step`` holds the block's own arrays (scalars, OUT scratch) and ``arrays`` (the step's, in
    the order of its arguments: C-contiguous, dtype dt) for as long as it lives."""
    parts = 0 if team is None or team.threads < 2 or B < 2 else min(team.threads, B)
    if not parts:
        return None
    scalars = np.array([clip, one], dtype=dt)                     # (2,)
    outs = np.empty((parts, _jit.NSEG * _jit.CAP), dtype=dt)      # one OUT scratch per part
    for a in (scalars, outs, *arrays):
        if not (a.flags.c_contiguous and a.dtype == dt):
            raise RuntimeError("team block: arrays must be C-contiguous in the compute dtype")
    block = np.zeros(_jit.TEAM_BLOCK, dtype=np.int64)
    block[1:10] = (parts, 0, T, B, H, sum(int(f) << i for i, f in enumerate(flags)), qrows,
                   scalars.ctypes.data, outs.ctypes.data)
    block[10:10 + len(arrays)] = [a.ctypes.data for a in arrays]
    fn, at, held = _team_callback(name, dt).address, block.ctypes.data, (scalars, outs, arrays)

    def step(t):
        block[0], block[2] = 0, t                                 # counter, step
        team.run(fn, at)
    step.held = held
    return step


# ----------------------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------------------

def lstm_loop_forward(spec, xp, W_hh, peep, R, h0, c0, mask, overwrite_xp=False, *, large=None,
                      matmul=None, team=None):
    """Compiled :func:`lstmlab.core.cells.lstm_loop_forward` (same arguments and results, but for
    G's layout on the small path: (T, 4, B, H), gate-major, which its loops write and read in
    place; :func:`lstmlab.core.cells.lstm_gate_rows` gives the reference's rows). On the large
    path with ``overwrite_xp`` G is xp where xp is C-contiguous in its own dtype, else a
    converted copy; the small path leaves xp alone.

    ``large`` (keyword only, for tests and benchmarks) forces the per-step BLAS path (True) or the
    fused path (False); by default the hidden size decides. ``matmul(a, b, out=None)`` (keyword
    only; every loop function takes it) replaces ``np.matmul`` for the matrix products made from
    Python (the large path's per-step products and the dW_hh product): the PyTorch front end
    passes torch's, so that one BLAS and one thread pool serve the whole training step.
    ``team`` (keyword only, an :class:`OpenMPTeam`, the LSTM loops only) runs the large path's
    per-step elementwise kernel split by batch rows on that team's threads (same results); the
    PyTorch front end passes torch's team.
    """
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(xp)
    xp = _c(xp, dt)
    T, B, H4 = xp.shape
    H = H4 // 4
    W, pc, Rm, m, flags, clip, one = _lstm_operands(spec, W_hh, peep, R, mask, T, B, H, dt)
    Hs = np.empty((T + 1, B, H), dtype=dt)
    Cs = np.empty((T + 1, B, H), dtype=dt)
    Hs[0] = h0
    Cs[0] = c0
    if large is None:
        large = use_large_path("lstm", H, B)
    if not large:
        G = np.empty((T, 4, B, H), dtype=dt)
        args = (xp, np.ascontiguousarray(W.T), pc, np.ascontiguousarray(Rm.T), m, Hs, Cs, G, *flags,
                clip, one)
        bounds = _parts(B)
        if _threaded(len(bounds) - 1):
            _call(_jit.lstm_fwd_parts, dt, batch_parts(B), *args)
            _after_threaded_call()
        else:            # rows are independent: one call over the whole batch, the parts' bits
            _call(_jit.lstm_fwd_small, dt, *args, 0, B)
        return Hs, Cs, G
    G = xp if overwrite_xp else np.empty((T, B, H4), dtype=dt)   # a step reads xp[t], then G[t]
    WT = _step_rhs(W)                                             # (H, 4H)
    PB = np.empty((B, H4), dtype=dt)
    OUT = _jit.new_out(dt)
    fg = spec.full_gate_recurrence
    rq = np.zeros((B if fg else 1, 3 * H), dtype=dt)
    if fg:
        RT4 = np.zeros((H4, 3 * H), dtype=dt)                     # q_prev R^T = G[t-1] RT4
        RT4[_ifo(H)] = Rm.T
    on_team = _team_stepper(team, "lstm_fwd_team", dt, T, B, H, flags, rq.shape[0], clip, one,
                            xp, PB, rq, m, Hs, Cs, G, pc)
    for t in range(T):
        mat(Hs[t], WT, out=PB)                                    # (B, 4H) = h_prev W_hh^T
        if fg and t > 0:
            mat(G[t - 1], RT4, out=rq)
        if on_team:
            on_team(t)
        else:
            _call(_jit.lstm_fwd_step, dt, t, xp, PB, rq, m, Hs, Cs, G, pc, OUT, *flags, clip, one,
                  0, B)
    return Hs, Cs, G


def lstm_loop_backward(spec, Hs, Cs, G, W_hh, peep, R, mask, dY, dh_n, dc_n, *, large=None,
                       matmul=None, team=None):
    """Compiled :func:`lstmlab.core.cells.lstm_loop_backward` (same arguments and results; G in
    either layout, converted where the path needs the other)."""
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(Hs)
    Hs, Cs, dY = _c(Hs, dt), _c(Cs, dt), _c(dY, dt)
    T, B, H = dY.shape
    H4 = 4 * H
    W, pc, Rm, m, flags, clip, one = _lstm_operands(spec, W_hh, peep, R, mask, T, B, H, dt)
    dh = np.array(dh_n, dtype=dt, order="C")                      # copies
    dc = np.array(dc_n, dtype=dt, order="C")
    dxp = np.empty((T, B, H4), dtype=dt)
    dpeep = np.zeros((3, H), dtype=dt)
    if large is None:
        large = use_large_path("lstm", H, B)
    if large:
        G = cells.lstm_gate_rows(G)                               # (T, B, 4H) rows
    elif G.ndim == 3:
        G = G.reshape(T, B, 4, H).transpose(0, 2, 1, 3)           # rows -> (T, 4, B, H)
    G = _c(G, dt)
    if not large:
        bounds = _parts(B)
        P = len(bounds) - 1
        dpeeps = np.zeros((P, 3, H), dtype=dt)                    # one accumulator per part
        dWs = np.zeros((P, H4, H), dtype=dt)
        args = (Hs, Cs, G, W, pc, Rm, m, dY, dh, dc, dxp)
        if _threaded(P):
            _call(_jit.lstm_bwd_parts, dt, batch_parts(B), *args, dpeeps, dWs, *flags, clip,
                  one)
            _after_threaded_call()
        else:
            for p in range(P):
                _call(_jit.lstm_bwd_small, dt, *args, dpeeps[p], dWs[p], *flags, clip, one,
                      bounds[p], bounds[p + 1])
        dpeep, dW_hh = dpeeps[0], dWs[0]
        for p in range(1, P):                                     # in part order, any threads
            dpeep += dpeeps[p]
            dW_hh += dWs[p]
    else:
        fg = spec.full_gate_recurrence
        dq = np.zeros((B, 3 * H), dtype=dt)
        mm = np.empty((B, H), dtype=dt)
        mq = np.zeros((B, 3 * H), dtype=dt)
        OUT = _jit.new_out(dt)
        dpeep_rows = np.zeros((B, 3 * H), dtype=dt)               # per row, summed at the end
        if fg:
            R4 = np.zeros((H4, 3 * H), dtype=dt)                  # dq_prev = da R4
            R4[_ifo(H)] = Rm
        on_team = _team_stepper(team, "lstm_bwd_team", dt, T, B, H, flags, dq.shape[0], clip,
                                one, G, Cs, m, dY, dh, dc, dq, mm, mq, dxp, dpeep_rows, pc)
        for t in range(T - 1, -1, -1):
            if on_team:
                on_team(t)
            else:
                _call(_jit.lstm_bwd_step, dt, t, G, Cs, m, dY, dh, dc, dq, mm, mq, dxp, dpeep_rows,
                      pc, OUT, *flags, clip, one, 0, B)
            mat(dxp[t], W, out=mm)                                # (B, H) = da W_hh
            if fg:
                mat(dxp[t], R4, out=mq)
        _call(_jit.merge_rows, dt, dh, mm, m, 0)
        if spec.peephole:
            dpeep = dpeep_rows.sum(axis=0).reshape(3, H)
        dW_hh = _at_b(dxp.reshape(T * B, H4), Hs[:-1].reshape(T * B, H), mat)  # sum_t da_t^T h_{t-1}
    dR = None
    if spec.full_gate_recurrence:
        idx = _ifo(H)
        if T > 1:
            Gr = cells.lstm_gate_rows(G)
            M = _at_b(dxp[1:].reshape(-1, H4), Gr[:-1].reshape(-1, H4), mat)  # (4H, 4H)
            dR = np.ascontiguousarray(M[np.ix_(idx, idx)])
        else:
            dR = np.zeros((3 * H, 3 * H), dtype=dt)
    return dxp, dW_hh, (dpeep if spec.peephole else None), dR, dh, dc


# ----------------------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------------------

def gru_loop_forward(xp, W_hh, b_hh, h0, mask, *, large=None, matmul=None):
    """Compiled :func:`lstmlab.core.cells.gru_loop_forward` (same arguments and results)."""
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(xp)
    xp = _c(xp, dt)
    T, B, H3 = xp.shape
    H = H3 // 3
    W = _c(W_hh, dt)
    bh = _c(b_hh, dt)
    m = _mask(mask, T, B, dt)
    one = dt.type(1.0)
    Hs = np.empty((T + 1, B, H), dtype=dt)
    G = np.empty((T, B, H3), dtype=dt)
    HPn = np.empty((T, B, H), dtype=dt)
    Hs[0] = h0
    if large is None:
        large = use_large_path("gru", H, B)
    if not large:
        _call(_jit.gru_fwd_small, dt, xp, np.ascontiguousarray(W.T), bh, m, Hs, G, HPn, one)
        return Hs, G, HPn
    WT = _step_rhs(W)                                             # (H, G*H)
    HP = np.empty((B, H3), dtype=dt)
    OUT = _jit.new_out(dt)
    for t in range(T):
        mat(Hs[t], WT, out=HP)
        _call(_jit.gru_fwd_step, dt, t, xp, HP, bh, m, Hs, G, HPn, OUT, one)
    return Hs, G, HPn


def gru_loop_backward(Hs, G, HPn, W_hh, mask, dY, dh_n, *, large=None, matmul=None):
    """Compiled :func:`lstmlab.core.cells.gru_loop_backward` (same arguments and results)."""
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(Hs)
    Hs, G, HPn, dY = _c(Hs, dt), _c(G, dt), _c(HPn, dt), _c(dY, dt)
    T, B, H = dY.shape
    H3 = 3 * H
    W = _c(W_hh, dt)
    m = _mask(mask, T, B, dt)
    one = dt.type(1.0)
    dh = np.array(dh_n, dtype=dt, order="C")
    dxp = np.empty((T, B, H3), dtype=dt)
    DHP = np.empty((T, B, H3), dtype=dt)                          # gradient of h W_hh^T + b_hh
    if large is None:
        large = use_large_path("gru", H, B)
    if not large:
        _call(_jit.gru_bwd_small, dt, Hs, G, HPn, W, m, dY, dh, dxp, DHP, one)
    else:
        dhz = np.zeros((B, H), dtype=dt)
        mm = np.empty((B, H), dtype=dt)
        OUT = _jit.new_out(dt)
        for t in range(T - 1, -1, -1):
            _call(_jit.gru_bwd_step, dt, t, Hs, G, HPn, m, dY, dh, dhz, mm, dxp, DHP, OUT, one)
            mat(DHP[t], W, out=mm)
        np.add(dhz, mm, out=mm)
        _call(_jit.merge_rows, dt, dh, mm, m, 0)
    D2 = DHP.reshape(T * B, H3)
    dW_hh = _at_b(D2, Hs[:-1].reshape(T * B, H), mat)
    db_hh = D2.sum(axis=0)
    return dxp, dW_hh, db_hh, dh


# ----------------------------------------------------------------------------------------------
# RNN
# ----------------------------------------------------------------------------------------------

def rnn_loop_forward(xp, W_hh, h0, mask, *, large=None, matmul=None):
    """Compiled :func:`lstmlab.core.cells.rnn_loop_forward` (same arguments and result)."""
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(xp)
    xp = _c(xp, dt)
    T, B, H = xp.shape
    W = _c(W_hh, dt)
    m = _mask(mask, T, B, dt)
    one = dt.type(1.0)
    Hs = np.empty((T + 1, B, H), dtype=dt)
    Hs[0] = h0
    if large is None:
        large = use_large_path("rnn", H, B)
    if not large:
        _call(_jit.rnn_fwd_small, dt, xp, np.ascontiguousarray(W.T), m, Hs, one)
        return Hs
    WT = _step_rhs(W)                                             # (H, G*H)
    for t in range(T):
        mat(Hs[t], WT, out=Hs[t + 1])
        _call(_jit.rnn_fwd_step, dt, t, xp, m, Hs, one)
    return Hs


def rnn_loop_backward(Hs, W_hh, mask, dY, dh_n, *, large=None, matmul=None):
    """Compiled :func:`lstmlab.core.cells.rnn_loop_backward` (same arguments and results)."""
    mat = np.matmul if matmul is None else matmul     # products: NumPy's or the caller's
    dt = _dtype(Hs)
    Hs, dY = _c(Hs, dt), _c(dY, dt)
    T, B, H = dY.shape
    W = _c(W_hh, dt)
    m = _mask(mask, T, B, dt)
    one = dt.type(1.0)
    dh = np.array(dh_n, dtype=dt, order="C")
    dxp = np.empty((T, B, H), dtype=dt)
    if large is None:
        large = use_large_path("rnn", H, B)
    if not large:
        _call(_jit.rnn_bwd_small, dt, Hs, W, m, dY, dh, dxp, one)
    else:
        mm = np.empty((B, H), dtype=dt)
        for t in range(T - 1, -1, -1):
            _call(_jit.rnn_bwd_step, dt, t, Hs, m, dY, dh, mm, dxp, one)
            mat(dxp[t], W, out=mm)
        _call(_jit.merge_rows, dt, dh, mm, m, 0)
    dW_hh = _at_b(dxp.reshape(T * B, H), Hs[:-1].reshape(T * B, H), mat)
    return dxp, dW_hh, dh


# ----------------------------------------------------------------------------------------------
# Adam
# ----------------------------------------------------------------------------------------------

def adam_scalars(dtype, b1, b2, step, c2, eps) -> np.ndarray:
    """The scalars of :func:`adam_update` for one step, in ``dtype``: step = lr / (1 - b1^t),
    c2 = 1 - b2^t (each rounded to the dtype as NumPy rounds a Python float against its arrays)."""
    return np.array([b1, 1.0 - b1, b2, 1.0 - b2, step, c2, eps], dtype=dtype)


def adam_update(p, g, m, v, s) -> bool:
    """Compiled Adam update of one parameter in place (see :func:`_jit.adam_update`), the same
    bits as NumPy's; ``s`` from :func:`adam_scalars` in p's dtype. Returns False, touching nothing,
    unless p, g, m, v are C-contiguous arrays of one shape and of s's dtype (float32 or float64);
    the caller then runs NumPy's update."""
    dt = s.dtype
    if not (dt in (np.float32, np.float64) and p.dtype == g.dtype == m.dtype == v.dtype == dt
            and p.shape == g.shape == m.shape == v.shape and p.flags.c_contiguous
            and g.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
        return False
    _call(_jit.adam_update, dt, p, g, m, v, s)
    return True
