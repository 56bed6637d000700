"""Wall time of whole Gers 2002 training runs, per backend and thread setting.

``bench_train_step.py`` times one training iteration on its own; this times what the README's
main command repeats: ``lstmlab.train.train`` on the recipe's config (msd-pair, T = 150, H = 8,
batch 32, 3000 iterations, evaluation on 512 sequences every 100), which also samples batches,
clips gradients and evaluates. Each configuration runs in a process of its own (thread settings
are per process): the process first trains 20 iterations untimed (numba loads its cached kernels,
or compiles them on a fresh machine), then times one full run without writing files. The
configurations take turns, round after round, so that load from other processes hits them alike.

A configuration is ``backend:kernel_threads:blas_threads[:blas_timeout]``, e.g. ``compiled:2:1``
= the compiled path with ``LSTMLAB_NUM_THREADS=2`` and ``OPENBLAS_NUM_THREADS=1``;
``blas_threads`` 0 leaves OpenBLAS at its default (the cores). ``blas_timeout`` sets
``OPENBLAS_THREAD_TIMEOUT`` (OpenBLAS's workers spin 2^timeout cycles after a product before they
sleep; 4 to 30, default 28, about 0.1 s).

    python benchmarks/bench_gers_run.py          # compiled: 1 and 2 kernel threads x BLAS default, 1
    python benchmarks/bench_gers_run.py --configs compiled:1:0,reference:1:0 --rounds 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

DEFAULT_CONFIGS = "compiled:1:0,compiled:2:0,compiled:1:1,compiled:2:1"


def _child(backend: str, variant: str, seed: int, iters: int) -> None:
    from lstmlab import kernels
    from lstmlab.experiments.gers2002 import recipe_config
    from lstmlab.train.loop import train

    train(recipe_config(variant, seed, iters=20, backend=backend), None, quiet=True)
    cfg = recipe_config(variant, seed, iters=iters, backend=backend)
    t0 = time.perf_counter()
    summary = train(cfg, None, quiet=True)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "solve_rate": summary.get("solve_rate"),
                      "mse": summary.get("mse"), "kernel_threads": kernels.get_num_threads()}))


def _parse(config: str) -> tuple[str, int, int, int | None]:
    parts = config.split(":")
    try:
        if len(parts) not in (3, 4):
            raise ValueError
        backend, kt, bt = parts[0], int(parts[1]), int(parts[2])
        timeout = int(parts[3]) if len(parts) == 4 else None
    except ValueError:
        raise SystemExit("--configs: expected backend:kernel_threads:blas_threads[:blas_timeout], "
                         f"got {config!r}")
    if (backend not in ("compiled", "reference") or kt < 1 or bt < 0
            or (timeout is not None and not 4 <= timeout <= 30)):
        raise SystemExit(f"--configs: {config!r}: backend compiled|reference, kernel threads >= 1, "
                         "BLAS threads >= 0 (0 = OpenBLAS's default), BLAS timeout 4-30")
    return backend, kt, bt, timeout


def run_config(config: str, variant: str, seed: int, iters: int) -> dict:
    """One timed run of ``config`` in a fresh process; returns its wall time and result."""
    backend, kt, bt, timeout = _parse(config)
    env = dict(os.environ, LSTMLAB_NUM_THREADS=str(kt))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT"):
        env.pop(var, None)
    if bt:
        env["OPENBLAS_NUM_THREADS"] = str(bt)
    if timeout is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = str(timeout)
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import bench_gers_run as b; b._child({backend!r}, {variant!r}, {seed}, {iters})")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       check=False)
    if p.returncode != 0:
        raise SystemExit(f"{config}: the run failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help="comma-separated backend:kernel_threads:blas_threads[:blas_timeout] "
                         f"(default {DEFAULT_CONFIGS})")
    ap.add_argument("--rounds", type=int, default=3, help="timed runs per configuration (default 3)")
    ap.add_argument("--variant", default="peephole", help="lstm or peephole (default peephole)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iters", type=int, default=3000)
    a = ap.parse_args(argv)
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    for c in configs:
        _parse(c)
    walls: dict[str, list[float]] = {c: [] for c in configs}
    results = {}
    for r in range(a.rounds):
        for c in configs:
            out = run_config(c, a.variant, a.seed, a.iters)
            walls[c].append(out["wall_s"])
            results[c] = out
            print(f"round {r + 1}/{a.rounds}  {c:16s} {out['wall_s']:7.2f} s", file=sys.stderr,
                  flush=True)
    base = statistics.median(walls[configs[0]])
    print(f"Gers 2002 recipe run: {a.variant}, seed {a.seed}, {a.iters} iterations, "
          f"{a.rounds} round(s); time ratio = median / median of {configs[0]}")
    print()
    print("| backend:kernel threads:BLAS threads[:timeout] | median s | min-max s | time ratio | solve rate |")
    print("|---|---:|---:|---:|---:|")
    for c in configs:
        w = walls[c]
        print(f"| {c} | {statistics.median(w):.2f} | {min(w):.2f}-{max(w):.2f} | "
              f"{statistics.median(w) / base:.2f} | {results[c]['solve_rate']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
