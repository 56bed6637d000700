"""Query the results store: per group mean ± std, min, max and count of a metric, and Welch's
t-test (unequal variances, ``scipy.stats.ttest_ind(equal_var=False)``) of each group against
a baseline group; or every run as CSV."""
from __future__ import annotations

import csv
import io
import json
import math
import warnings

import numpy as np

from .store import Store

__all__ = ["summarize", "format_table", "to_csv", "select"]


def _open(db) -> Store:
    import os
    if not os.path.isfile(os.fspath(db)):
        raise ValueError(f"DB: {db} is not a results database file")
    return Store(db)


def _field(row: dict, key: str):
    """A row's value for ``key``: a store column (status, id, sweep), a metric
    (``metrics.X``), or a config field (dotted for dicts: ``task_args.T``)."""
    if key in ("status", "id", "sweep", "wall_s"):
        return row[key]
    if key.startswith("metrics."):
        return row["metrics"].get(key[8:])
    value = row["config"]
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{key}: not a config field, metric or column of the store")
        value = value[part]
    return value


def _matches(value, text: str) -> bool:
    try:
        want = json.loads(text)
    except ValueError:
        want = text
    return value == want or str(value) == text


def select(rows: list[dict], where: list[str] | None) -> list[dict]:
    """Rows whose fields equal every ``KEY=VALUE`` of ``where``."""
    for cond in where or []:
        if "=" not in cond:
            raise ValueError(f"--where: expected KEY=VALUE, got {cond!r}")
        key, text = cond.split("=", 1)
        rows = [r for r in rows if _matches(_field(r, key.strip()), text.strip())]
    return rows


def _label(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def summarize(db, where=None, group_by: str = "variant", metric: str | None = None,
              baseline: str | None = None) -> dict:
    """Group the ``done`` runs; returns ``{"metric", "baseline", "groups": [...]}`` where each
    group has ``group, n, mean, std, min, max, p`` (Welch's p-value against the baseline;
    None for the baseline itself or a group of one run)."""
    from scipy import stats

    store = _open(db) if not isinstance(db, Store) else db
    try:
        rows = select([r for r in store.rows() if r["status"] == "done"], where)
    finally:
        if store is not db:
            store.close()
    if not rows:
        raise ValueError("results: no finished run matches")
    if metric is None:
        metric = rows[0]["metrics"].get("headline") or "solve_rate"
    groups: dict[str, list[float]] = {}
    for r in rows:
        v = r["metrics"].get(metric)
        if not isinstance(v, (int, float)):
            raise ValueError(f"--metric: {metric!r} is not a metric of run {r['id']} "
                             f"(it has {', '.join(k for k, x in r['metrics'].items() if isinstance(x, (int, float)))})")
        groups.setdefault(_label(_field(r, group_by)), []).append(float(v))
    if baseline is None:
        baseline = next(iter(groups))
    if baseline not in groups:
        raise ValueError(f"--baseline: no group {baseline!r}; groups are {', '.join(groups)}")
    base = np.array(groups[baseline])
    out = []
    for name, vals in groups.items():
        v = np.array(vals)
        p = None
        if name != baseline and len(v) > 1 and len(base) > 1:
            with warnings.catch_warnings():           # near-constant groups: the p-value stands
                warnings.simplefilter("ignore", RuntimeWarning)
                t = stats.ttest_ind(v, base, equal_var=False)
            p = None if math.isnan(t.pvalue) else float(t.pvalue)
        out.append({"group": name, "n": len(v), "mean": float(v.mean()),
                    "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                    "min": float(v.min()), "max": float(v.max()), "p": p})
    return {"metric": metric, "group_by": group_by, "baseline": baseline, "groups": out}


def format_table(summary: dict) -> str:
    """The summary as a Markdown table."""
    m, g = summary["metric"], summary["group_by"]
    lines = [f"| {g} | runs | {m} mean ± std | min | max | Welch p vs {summary['baseline']} |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in summary["groups"]:
        p = "baseline" if r["group"] == summary["baseline"] else \
            ("n/a" if r["p"] is None else f"{r['p']:.2g}")
        lines.append(f"| {r['group']} | {r['n']} | {r['mean']:.4g} ± {r['std']:.2g} | "
                     f"{r['min']:.4g} | {r['max']:.4g} | {p} |")
    return "\n".join(lines)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, list) else v
    return out


def to_csv(db, where=None) -> str:
    """Every matching run as CSV: id, sweep, status, wall_s, config fields, metrics."""
    store = _open(db)
    try:
        rows = select(store.rows(), where)
    finally:
        store.close()
    flat = [{"id": r["id"], "sweep": r["sweep"], "status": r["status"], "wall_s": r["wall_s"],
             **_flatten(r["config"], "config."), **_flatten(r["metrics"], "metrics.")} for r in rows]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(flat)
    return buf.getvalue()
