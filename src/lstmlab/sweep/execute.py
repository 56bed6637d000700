"""Run a sweep: expand the spec, record every run in the store, train what is not done.

Run folders are ``OUT/<id>``. A run ``done`` in the store (and in its folder) is skipped; one
left ``running`` by a killed sweep, or ``pending``, ``failed`` or ``diverged``, runs again,
resumed from its checkpoint when its folder holds one of the same config (bit-identical to an
uninterrupted run). Only this process writes the store; the workers return their summaries.
"""
from __future__ import annotations

import os


from ..train.config import TrainConfig
from .spec import expand, load_spec, parse_spec
from .store import Store

__all__ = ["run_sweep", "run_in_store", "check_out_dir", "METRIC_SKIP"]

#: Summary entries that are bookkeeping, not metrics.
METRIC_SKIP = ("status", "task", "variant", "seed", "iters", "wall_s", "run_dir", "reused",
               "error", "params")


def check_out_dir(out) -> str:
    """``out`` as a usable folder (created), or ValueError for a file or an unwritable path."""
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out: {out} is a file, expected a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out: cannot create {out} ({e.strerror})") from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out: {out} is not writable")
    return out


def run_sweep(spec, db=None, out=None, jobs: int | None = None, ray: str | None = None,
              quiet: bool = False, log=None) -> list[dict]:
    """Run every run of ``spec`` (a path to a TOML file or a parsed spec dict) that is not done.

    ``out`` defaults to ``runs/<spec name>``, ``db`` to ``OUT/results.sqlite``; ``ray`` is None
    (local process pool of ``jobs`` processes) or ``local``, ``auto`` or a cluster address.
    Returns the store's rows of this spec's runs, in the spec's order.
    """
    spec = load_spec(spec) if not isinstance(spec, dict) else parse_spec(spec)
    out = out if out is not None else os.path.join("runs", spec["name"])
    if ray is None:
        return run_in_store(spec["name"], expand(spec), db=db, out=out, jobs=jobs, quiet=quiet,
                            log=log)
    from .ray_exec import connect, release
    connect(ray, num_cpus=jobs)              # fail before anything is written
    try:
        return run_in_store(spec["name"], expand(spec), db=db, out=out, jobs=jobs, ray=ray,
                            quiet=quiet, log=log)
    finally:
        release()                            # a Ray that connect() started ends with the sweep


def run_in_store(name: str, runs: list[tuple[str, dict]], db=None, out="runs", jobs=None,
                 ray=None, quiet: bool = False, log=None) -> list[dict]:
    """Run ``[(id, config dict), ...]`` as sweep ``name`` into ``OUT/<id>`` with the store at
    ``db`` (default ``OUT/results.sqlite``); what :func:`run_sweep` does after expanding."""
    from ..experiments.runner import run_configs    # (experiments imports this module)

    out = check_out_dir(out)
    store = Store(db if db is not None else os.path.join(out, "results.sqlite"))
    try:
        ids = [rid for rid, _ in runs]
        store.add(name, [(rid, cfg, os.path.join(out, rid)) for rid, cfg in runs])
        rows = {r["id"]: r for r in store.rows(ids)}
        todo = [(rid, cfg) for rid, cfg in runs
                if not (rows[rid]["status"] == "done"
                        and os.path.exists(os.path.join(rows[rid]["run_dir"], "summary.json")))]
        if log:
            log(f"sweep {name}: {len(runs)} runs, {len(runs) - len(todo)} done, "
                f"{len(todo)} to run" + (f" on Ray ({ray})" if ray else "") + f"; store {store.path}")
        if todo:
            store.mark_running([rid for rid, _ in todo])

            def record(i, r):
                status = r.get("status", "failed")
                metrics = {k: v for k, v in r.items() if k not in METRIC_SKIP}
                store.finish(todo[i][0], status, metrics, r.get("wall_s"), r.get("error"))

            run_configs([(rows[rid]["run_dir"], TrainConfig.from_dict(cfg)) for rid, cfg in todo],
                        jobs=jobs, quiet=quiet, label=f"sweep {name}", on_result=record,
                        ray_address=ray)
        return store.rows(ids)
    finally:
        store.close()


