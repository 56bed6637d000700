"""Run many training configs, in parallel on a local process pool, each in its own run folder.

A run whose folder already holds a finished run with the same config is reused; one with a
checkpoint of the same config (a killed run) is resumed; anything else starts fresh.

The pool's workers run NumPy's BLAS on one thread each: the runs are the parallelism, and
OpenBLAS's worker threads spin for a while after every product they share (about 0.1 s), taking
the cores the other runs need. ``lstmlab reproduce gers2002`` (20 runs) on 2 cores: 64.5-67.3 s
with OpenBLAS's default threads, 48.1-50.2 s with one, and the same 20 results to the bit
(OpenBLAS splits a matrix product's outputs between its threads, not the sums behind each).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
import warnings

import numpy as np

from .._blas import set_blas_threads
from ..core.spec import cell_kind
from ..train.config import TrainConfig
from ..train.loop import CHECKPOINT, TrainingDiverged, train
from ..train.progress import Progress, show_progress

__all__ = ["run_configs", "default_jobs", "check_seeds"]


def default_jobs() -> int:
    """Processes to use by default: one per core this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def check_seeds(seeds, minimum: int = 1) -> tuple:
    """``seeds`` as a tuple of distinct integers >= 0, at least ``minimum`` of them; ValueError
    otherwise (a seed given twice would count one run twice and fake the statistics)."""
    seeds = tuple(seeds)
    if len(seeds) < minimum:
        raise ValueError(f"seeds: expected at least {minimum} seed(s), got {len(seeds)}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"seeds: expected integers >= 0, got {s!r}")
    dup = next((s for i, s in enumerate(seeds) if s in seeds[:i]), None)
    if dup is not None:
        raise ValueError(f"seeds: seed {dup} is given twice")
    return tuple(int(s) for s in seeds)


def _same_config(run_dir: str, cfg: TrainConfig) -> bool:
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return False
    try:
        with open(path) as f:
            return json.load(f) == cfg.to_dict()
    except (OSError, ValueError):
        return False


def _finished(run_dir: str, cfg: TrainConfig) -> dict | None:
    """The summary of a finished run of ``cfg`` in ``run_dir``, or None."""
    summary_path = os.path.join(run_dir, "summary.json")
    if _same_config(run_dir, cfg) and os.path.exists(summary_path):
        with open(summary_path) as f:
            s = json.load(f)
        if s.get("status") == "done":
            return s
    return None


def _run_one(job) -> dict:
    """job: (run_dir, config dict, the run's summary if it already finished, else None)."""
    run_dir, cfg_dict, finished = job
    cfg = TrainConfig.from_dict(cfg_dict)
    base = {"run_dir": run_dir, "task": cfg.task, "variant": cfg.variant_name, "seed": cfg.seed,
            "iters": cfg.iters}
    if finished is not None:
        return {**base, **finished, "reused": True}
    resume = _same_config(run_dir, cfg) and os.path.exists(os.path.join(run_dir, CHECKPOINT))
    t0 = time.perf_counter()
    try:
        s = train(cfg, run_dir, resume=resume, quiet=True)
    except TrainingDiverged as e:
        return {**base, "status": "diverged", "error": str(e), "mse": float("nan"),
                "solve_rate": 0.0, "wall_s": time.perf_counter() - t0}
    except Exception as e:          # a failed run is recorded; the sweep goes on
        return {**base, "status": "failed", "error": f"{type(e).__name__}: {e}",
                "wall_s": time.perf_counter() - t0}
    s.pop("params", None)
    return {**base, **s}


def run_configs(jobs_list: list[tuple[str, TrainConfig]], jobs: int | None = None,
                quiet: bool = False, label: str = "runs", on_result=None,
                ray_address: str | None = None) -> list[dict]:
    """Train every (run_dir, config) pair; ``jobs`` processes (default: all cores), or Ray
    tasks on the cluster at ``ray_address`` (see :func:`lstmlab.sweep.ray_exec.connect`).

    ``on_result(i, summary)`` is called in this process as each run ends (the sweep's store
    is written there, never by a worker). Returns one summary dict per run, in the order given.
    """
    jobs = default_jobs() if jobs is None else max(int(jobs), 1)
    finished = [_finished(d, c) for d, c in jobs_list]      # read once, for the warm-up and the runs
    work = [(d, c.to_dict(), f) for (d, c), f in zip(jobs_list, finished)]
    results: list[dict | None] = [None] * len(work)
    with Progress(len(work), label, enabled=show_progress(quiet)) as bar:
        def done(i, r, n):
            results[i] = r
            if on_result is not None:
                on_result(i, r)
            bar.update(n, f"last: {_short(r)}", force=True)

        if ray_address is not None:
            from ..sweep.ray_exec import run_on_ray
            for n, (i, r) in enumerate(run_on_ray(ray_address, _run_one, work, jobs), 1):
                done(i, r, n)
        elif jobs == 1 or len(work) == 1:
            for i, w in enumerate(work):
                done(i, _run_one(w), i + 1)
        else:
            _compile_kernels([c for (_, c), f in zip(jobs_list, finished) if f is None], jobs)
            ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
            with ctx.Pool(min(jobs, len(work)), initializer=_worker_init) as pool:
                for n, (i, r) in enumerate(pool.imap_unordered(_indexed, list(enumerate(work))), 1):
                    done(i, r, n)
    return results  # type: ignore[return-value]


def _compile_kernels(cfgs: list[TrainConfig], jobs: int) -> None:
    """Compile the kernels that ``cfgs`` train with before the pool starts, shared between
    ``jobs`` processes (or load them from numba's on-disk cache). Left to themselves, the pool's
    workers would each compile the same kernels at once on a fresh cache: ``lstmlab reproduce
    gers2002`` on an empty numba cache took 91.7 s that way and 70.9 s this way; on a warm cache
    this costs about a second. Only a speed-up: if it fails, the workers compile as before."""
    from .. import kernels
    from ..kernels import _api

    cfgs = [c for c in cfgs if c.backend in ("auto", "compiled")]
    if len(cfgs) < 2 or not kernels.available():
        return
    small_pieces = {"lstm": {"lstm_fwd", "lstm_bwd"}, "gru": {"gru"}, "rnn": {"rnn"}}
    pieces = {"proj", "adam"}
    for c in cfgs:
        kind = cell_kind(c.variant)
        pieces |= {"steps"} if _api.use_large_path(kind, c.hidden, c.batch) else small_pieces[kind]
    try:
        kernels.warmup(sorted({c.dtype for c in cfgs}), jobs=jobs, pieces=sorted(pieces))
    except (RuntimeError, OSError) as e:
        warnings.warn(f"compiling the kernels before the pool failed, the runs compile them: {e}",
                      RuntimeWarning, stacklevel=2)


def _worker_init() -> None:
    """A pool worker's BLAS on one thread (see the module docstring)."""
    set_blas_threads(1)


def _indexed(iw):
    i, w = iw
    return i, _run_one(w)


def _short(r: dict) -> str:
    key = r.get("headline", "solve_rate")
    return f"{r['variant']} seed {r['seed']} {key} {r.get(key, float('nan')):.4g}"
