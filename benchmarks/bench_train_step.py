"""Training-iteration benchmark: forward + backward + Adam, reference NumPy vs compiled vs torch.

One *training iteration* is what the experiments repeat many thousands of times::

    y, _, cache = lstm.forward(x)                  # (T, B, H)
    pred, dcache = readout.forward(y)              # linear readout to one output
    loss, dpred = mse_loss(pred, target)
    dy, g_readout = readout.backward(dpred, dcache)
    _, _, g_lstm = lstm.backward(dy, cache, input_grad=False)     # x is data: no dx
    adam.step(all gradients)

and the same with ``torch.nn.LSTM`` + ``torch.nn.Linear`` + ``torch.optim.Adam`` + MSE (torch has
no peephole cell, so it runs the ``lstm`` preset only), with ``torch.set_num_threads`` equal to
the thread count of NumPy's BLAS.

Workloads (issue 4):

* W1: the Gers et al. (2002) workload, T=150, B=32, input 1, H=8, linear readout;
* W2: T=100, B=64, input 64, H=256;
* W3: T=50, B=64, input 512, H=1024.

For every path the *matrix-product floor* is measured too: the same matrix products that path
performs (input projection, the per-step recurrent products forward and backward, dW_hh, dW_ih,
the readout), timed alone with NumPy. Neither our path nor torch computes the gradient of the data
x (torch: x does not require grad; ours: ``input_grad=False``). ``time / floor`` shows what
everything else costs.

Reported: median, min and max over ``repeats`` timed iterations after warm-up, and ratios measured
in the same process: to torch.nn.LSTM float32, to our reference path (same dtype and variant) and
to the floor. Our configurations of a (workload, dtype) are timed round-robin, so that load from
other processes hits them alike: each round runs one untimed call and then a block of timed calls
of each configuration in turn (W1: blocks of 10; W2, W3: 1), so that the timed calls of W1 find
the caches as a training loop leaves them rather than as the reference path left them. torch is
timed on its own, half of its iterations just before them and half just after (its OpenMP workers
spin after each call and would slow whatever ran next in a round-robin). The machines are noisy;
compare ratios, not absolute times.

Usage::

    python benchmarks/bench_train_step.py                    # all workloads, markdown table
    python benchmarks/bench_train_step.py --workloads W1 --repeats 30
    # from Python (what ``lstmlab bench`` calls):
    rows = run_benchmarks(workloads=("W1",), repeats=None, quiet=True)
    print(format_table(rows))
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["WORKLOADS", "Workload", "run_benchmarks", "format_table", "check_targets",
           "blas_threads", "main"]


@dataclass(frozen=True)
class Workload:
    name: str
    T: int
    B: int
    D: int
    H: int
    repeats: int          # default number of timed iterations
    block: int = 1        # consecutive iterations of one configuration per round-robin round
    note: str = ""


WORKLOADS = {
    "W1": Workload("W1", T=150, B=32, D=1, H=8, repeats=100, block=10, note="Gers 2002"),
    "W2": Workload("W2", T=100, B=64, D=64, H=256, repeats=7),
    "W3": Workload("W3", T=50, B=64, D=512, H=1024, repeats=3),
}

DTYPES = ("float64", "float32")

#: Printed under a table with "compiled, N threads" rows.
THREADS_CAVEAT = ("Rows with N threads time the iteration alone. In whole training runs on a "
                  "2-core machine two kernel threads were slower than one unless OpenBLAS's "
                  "spinning was cut short (OPENBLAS_THREAD_TIMEOUT=4; benchmarks/README.md, "
                  "\"Threads\"); measure yours with benchmarks/bench_gers_run.py.")


@dataclass
class Row:
    workload: str
    path: str                  # reference | compiled | torch | floor(...)
    variant: str               # lstm | peephole
    dtype: str
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    threads: int
    vs_torch_f32: float | None = None        # torch.nn.LSTM float32 median / this median
    vs_reference: float | None = None        # reference median / this median (same dtype, variant)
    vs_floor: float | None = None            # this median / its matrix-product floor median
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------------------------------

def blas_threads() -> int:
    """Number of threads NumPy's BLAS uses (:func:`lstmlab._blas.blas_threads`: threadpoolctl or
    OpenBLAS's own query; else the environment, else the CPU count)."""
    from lstmlab._blas import blas_threads as query
    n = query()
    if n is not None:
        return n
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------

def _time_round_robin(steps, repeats: int, warmup: int = 2, block: int = 1,
                      budget_s: float | None = None) -> list[list[float]]:
    """Seconds per call of each step, timed in turn: each round runs ``block`` consecutive calls
    of every step (each timed on its own), so that the calls after the first of a block find the
    caches as a training loop leaves them, while load from other processes still drifts over all
    steps alike."""
    for _ in range(warmup):
        for step in steps:
            step()
    out = [[] for _ in steps]
    t_start = time.perf_counter()
    rounds = -(-repeats // block)
    for r in range(rounds):
        for i, step in enumerate(steps):
            step()                                   # refills the caches after the other steps
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                out[i].append(time.perf_counter() - t0)
        if budget_s is not None and r >= 2 and time.perf_counter() - t_start > budget_s:
            break
    return [ts[:repeats] for ts in out]


def _row(w, path, variant, dtype, times, threads, **extra) -> Row:
    ms = [1e3 * t for t in times]
    return Row(w.name, path, variant, dtype, statistics.median(ms), min(ms), max(ms), len(ms),
               threads, extra=extra)


def _data(w: Workload, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((w.T, w.B, w.D)).astype(dtype)
    target = rng.standard_normal((w.T, w.B, 1)).astype(dtype)
    return x, target


# ----------------------------------------------------------------------------------------------
# Our paths (public API)
# ----------------------------------------------------------------------------------------------

def _ours_step(w: Workload, variant: str, dtype: str, backend: str, threads: int = 1):
    import lstmlab as ll
    from lstmlab import kernels

    x, target = _data(w, dtype)
    lstm = ll.LSTM(w.D, w.H, variant=variant, dtype=dtype, seed=0, backend=backend)
    readout = ll.Dense(w.H, 1, dtype=dtype, seed=1)
    params = {**{"lstm." + k: v for k, v in lstm.params.items()},
              **{"readout." + k: v for k, v in readout.params.items()}}
    opt = ll.Adam(params, lr=1e-4)

    def step():
        if backend == "compiled":
            kernels.set_num_threads(threads)
        y, _, cache = lstm.forward(x)
        pred, dcache = readout.forward(y)
        _, dpred = ll.mse_loss(pred, target)
        dy, g_out = readout.backward(dpred, dcache)
        _, _, g_lstm = lstm.backward(dy, cache, input_grad=False)
        grads = {**{"lstm." + k: v for k, v in g_lstm.items()},
                 **{"readout." + k: v for k, v in g_out.items()}}
        opt.step(grads)
    return step


def _floor_step(w: Workload, dtype: str):
    """The matrix products of one training iteration of our LSTM path, and nothing else."""
    rng = np.random.default_rng(0)
    T, B, D, H = w.T, w.B, w.D, w.H
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    X2, W_ih, W_hh, Wd = r(T * B, D), r(4 * H, D), r(4 * H, H), r(1, H)
    Hs = r(T + 1, B, H)
    dxp = r(T, B, 4 * H)
    G = np.empty((B, 4 * H), dtype=dtype)
    dh = np.empty((B, H), dtype=dtype)
    dpred = r(T * B, 1)

    def step():
        xp = X2 @ W_ih.T                                       # input projection, all steps
        for t in range(T):
            np.matmul(Hs[t], W_hh.T, out=G)                    # recurrent product forward
        Y2 = Hs[1:].reshape(T * B, H)
        _ = Y2 @ Wd.T                                          # readout forward
        _ = dpred.T @ Y2                                       # readout dW
        _ = dpred @ Wd                                         # readout dx
        for t in range(T - 1, -1, -1):
            np.matmul(dxp[t], W_hh, out=dh)                    # recurrent product backward
        d2 = dxp.reshape(T * B, 4 * H)
        _ = d2.T @ Hs[:-1].reshape(T * B, H)                   # dW_hh (one product)
        _ = d2.T @ X2                                          # dW_ih (no dx: x is data)
        return xp
    return step


# ----------------------------------------------------------------------------------------------
# torch
# ----------------------------------------------------------------------------------------------

def torch_iteration(rnn, w: Workload, dtype: str):
    """One training iteration of a torch recurrent module ``rnn`` (nn.LSTM or a twin): a
    ``torch.nn.Linear`` readout, ``torch.optim.Adam``, MSE on W's data; returns the step."""
    import torch

    tdt = getattr(torch, dtype)
    rnn = rnn.to(tdt)
    readout = torch.nn.Linear(w.H, 1, dtype=tdt)
    opt = torch.optim.Adam(list(rnn.parameters()) + list(readout.parameters()), lr=1e-4)
    x_np, t_np = _data(w, dtype)
    x, target = torch.from_numpy(x_np), torch.from_numpy(t_np)
    loss_fn = torch.nn.MSELoss()

    def step():
        opt.zero_grad(set_to_none=True)
        y, _ = rnn(x)
        loss_fn(readout(y), target).backward()
        opt.step()
    return step


def _torch_step(w: Workload, dtype: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return torch_iteration(torch.nn.LSTM(w.D, w.H), w, dtype)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def _log(quiet, *a):
    if not quiet:
        print(*a, file=sys.stderr, flush=True)


def run_benchmarks(workloads=("W1", "W2", "W3"), repeats: int | None = None, quiet: bool = False,
                   paths=("reference", "compiled", "torch", "floor"), variants=("lstm", "peephole"),
                   dtypes=DTYPES, budget_s: float | None = 120.0) -> list[Row]:
    """Time one training iteration for each workload, path, variant and dtype.

    Parameters
    ----------
    workloads : names from :data:`WORKLOADS` (W1, W2, W3).
    repeats : timed iterations per configuration (default: the workload's own, 100/7/3).
    quiet : no progress lines on stderr.
    paths : any of ``reference`` (NumPy loops), ``compiled`` (numba kernels, one thread; where
        the workload takes the LSTM's small path and BLAS has N > 1 threads, also a row
        ``compiled, N threads`` with ``kernels.set_num_threads(N)``), ``torch`` (torch.nn.LSTM,
        float32 and float64, ``lstm`` variant only; skipped without torch) and ``floor`` (the
        matrix products alone).
    budget_s : stop a (workload, dtype) group's rounds early (after at least 3) once it has run
        this long.

    Returns
    -------
    list of :class:`Row` (``dataclasses.asdict`` turns one into a dict), ratios filled in.
    """
    threads = blas_threads()
    rows: list[Row] = []
    have_torch = False
    if "torch" in paths:
        try:
            import torch  # noqa: F401
            have_torch = True
        except ImportError:
            _log(quiet, "torch not installed: skipping torch.nn.LSTM")
    use_large_path = None
    if "compiled" in paths:
        from lstmlab import kernels
        from lstmlab.kernels._api import use_large_path
        if not kernels.available():
            _log(quiet, f"numba not usable ({kernels.unavailable_reason()}): skipping compiled")
            paths = tuple(p for p in paths if p != "compiled")
        else:
            kernels.set_num_threads(threads)          # warm up the threaded drivers too
            t0 = time.perf_counter()
            kernels.warmup(dtypes, jobs=threads)      # a fresh cache: compiled in parallel
            _log(quiet, f"compiled kernels ready ({time.perf_counter() - t0:.1f} s, cached on disk)")
    for name in workloads:
        w = WORKLOADS[name]
        n = repeats or w.repeats
        for dtype in dtypes:
            # torch alone, half of its iterations before ours and half after (so that a change of
            # the machine's load during our configurations reaches torch's median too): its
            # OpenMP workers keep spinning for a while after each call and would steal the
            # second core from whatever ran next in a round-robin
            half_budget = budget_s / 2 if budget_s else None
            if have_torch:
                _log(quiet, f"{name} {dtype}: torch.nn.LSTM (first half)")
                torch_step = _torch_step(w, dtype, threads)
                torch_ts = _time_round_robin([torch_step], (n + 1) // 2, block=w.block,
                                             budget_s=half_budget)[0]
                time.sleep(0.5)
            # our configurations of one (workload, dtype) are built first and then timed
            # round-robin, one iteration of each in turn, so that load from other processes
            # drifts over all of them alike and their ratios stay meaningful on a busy machine
            configs = []
            if "floor" in paths:
                configs.append(("floor (matmuls)", "-", _floor_step(w, dtype)))
            kthreads = 1
            if "compiled" in paths and not use_large_path("lstm", w.H, w.B):
                kernels.set_num_threads(threads)      # capped at numba's threads: label what runs
                kthreads = kernels.get_num_threads()
                kernels.set_num_threads(1)
            threaded = kthreads > 1
            for variant in variants:
                for path in ("reference", "compiled"):
                    if path in paths:
                        configs.append((path, variant, _ours_step(w, variant, dtype, path)))
                if threaded:                          # the small path's batch parts on threads
                    configs.append((f"compiled, {kthreads} threads", variant,
                                    _ours_step(w, variant, dtype, "compiled", kthreads)))
            _log(quiet, f"{name} {dtype}: " + ", ".join(f"{p} {v}" for p, v, _ in configs))
            times = _time_round_robin([c[2] for c in configs], n, block=w.block, budget_s=budget_s)
            ours = [_row(w, path, variant, dtype, ts, threads)
                    for (path, variant, _), ts in zip(configs, times)]
            del configs
            if have_torch:
                _log(quiet, f"{name} {dtype}: torch.nn.LSTM (second half)")
                torch_ts += _time_round_robin([torch_step], max(1, n // 2), warmup=1,
                                              block=w.block, budget_s=half_budget)[0]
                rows.append(_row(w, "torch.nn.LSTM", "lstm", dtype, torch_ts, threads))
                del torch_step
            rows += ours
    _ratios(rows)
    return rows


def _ratios(rows: list[Row]) -> None:
    by = {(r.workload, r.path, r.variant, r.dtype): r for r in rows}
    for r in rows:
        t = by.get((r.workload, "torch.nn.LSTM", "lstm", "float32"))
        if t is not None:
            r.vs_torch_f32 = t.median_ms / r.median_ms
        if r.path.startswith("compiled"):
            ref = by.get((r.workload, "reference", r.variant, r.dtype))
            if ref is not None:
                r.vs_reference = ref.median_ms / r.median_ms
        if r.path.startswith("compiled") or r.path == "reference":
            fl = by.get((r.workload, "floor (matmuls)", "-", r.dtype))
            if fl is not None:
                r.vs_floor = r.median_ms / fl.median_ms
        if r.path.startswith("compiled") and r.variant == "peephole":
            base = by.get((r.workload, r.path, "lstm", r.dtype))
            if base is not None:
                r.extra["peephole_over_lstm"] = r.median_ms / base.median_ms


def _f(v, fmt):
    return "" if v is None else format(v, fmt)


def format_table(rows: list[Row]) -> str:
    """A markdown table of the rows (times in ms)."""
    out = ["| workload | path | variant | dtype | median ms | min–max ms | n | "
           "speed vs torch f32 | speed vs reference | time / matmul floor |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        w = WORKLOADS.get(r.workload)
        wl = f"{r.workload} ({w.T},{w.B},{w.D},{w.H})" if w else r.workload
        out.append(f"| {wl} | {r.path} | {r.variant} | {r.dtype} | {r.median_ms:.3f} | "
                   f"{r.min_ms:.3f}–{r.max_ms:.3f} | {r.repeats} | {_f(r.vs_torch_f32, '.2f')}x | "
                   f"{_f(r.vs_reference, '.1f')}{'x' if r.vs_reference else ''} | "
                   f"{_f(r.vs_floor, '.2f')} |".replace("| x |", "|  |"))
    threads = {r.threads for r in rows}
    out.append("")
    out.append(f"(T, B, input, H); one training iteration = forward + backward + Adam with a linear "
               f"readout and MSE; BLAS and torch threads: {', '.join(map(str, sorted(threads)))}. "
               "Speed ratios are medians measured in this run (higher is faster); "
               "time / floor is this path's median over the median of its matrix products alone.")
    return "\n".join(out)


def check_targets(rows: list[Row]) -> list[tuple[str, bool, str]]:
    """The issue's targets, as (target, met, numbers)."""
    by = {(r.workload, r.path, r.variant, r.dtype): r for r in rows}
    res = []
    w1_paths = sorted({r.path for r in rows if r.workload == "W1" and r.path.startswith("compiled")})
    for dtype in DTYPES:
        for path in w1_paths:
            c = by.get(("W1", path, "peephole", dtype))
            if c is not None and c.vs_torch_f32 is not None:
                res.append((f"W1 peephole {path} {dtype} >= 2.5x faster than torch.nn.LSTM float32",
                            c.vs_torch_f32 >= 2.5, f"{c.vs_torch_f32:.2f}x"))
            if c is not None and c.vs_reference is not None:
                res.append((f"W1 peephole {path} {dtype} >= 15x faster than reference",
                            c.vs_reference >= 15, f"{c.vs_reference:.1f}x"))
    for wl in ("W2", "W3"):
        for dtype in DTYPES:
            for variant in ("lstm", "peephole"):
                c = by.get((wl, "compiled", variant, dtype))
                if c is not None and c.vs_floor is not None:
                    res.append((f"{wl} {variant} compiled {dtype} within 1.2x of its matmul floor",
                                c.vs_floor <= 1.2, f"{c.vs_floor:.2f}"))
        for variant in ("lstm", "peephole"):
            c = by.get((wl, "compiled", variant, "float64"))
            t = by.get((wl, "torch.nn.LSTM", "lstm", "float64"))
            if c is not None and t is not None:
                res.append((f"{wl} {variant} compiled float64 faster than torch.nn.LSTM float64",
                            c.median_ms < t.median_ms, f"{t.median_ms / c.median_ms:.2f}x"))
    for r in rows:
        p = r.extra.get("peephole_over_lstm")
        if p is not None:
            res.append((f"{r.workload} {r.dtype} {r.path}: peephole costs <= 10% over lstm",
                        p <= 1.10, f"{100 * (p - 1):+.1f}%"))
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="W1,W2,W3", help="comma-separated, from W1,W2,W3")
    p.add_argument("--repeats", type=int, default=None, help="timed iterations per configuration")
    p.add_argument("--paths", default="reference,compiled,torch,floor")
    p.add_argument("--variants", default="lstm,peephole")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    wls = [s for s in a.workloads.split(",") if s]
    bad = [s for s in wls if s not in WORKLOADS]
    if bad:
        p.error(f"--workloads: unknown {bad}; expected W1, W2, W3")
    rows = run_benchmarks(wls, a.repeats, a.quiet, paths=tuple(a.paths.split(",")),
                          variants=tuple(a.variants.split(",")), dtypes=tuple(a.dtypes.split(",")))
    print(format_table(rows))
    targets = check_targets(rows)
    if targets:
        print()
        print("| target | met | measured |")
        print("|---|---|---:|")
        for name, ok, num in targets:
            print(f"| {name} | {'yes' if ok else 'NO'} | {num} |")
    if any("threads" in r.path for r in rows):
        print()
        print(THREADS_CAVEAT)
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
