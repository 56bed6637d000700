"""Figures of ``lstmlab reproduce greff2017``, drawn from its records (results.json).

* :func:`plot_boxes`: the test metric (NLL on the chorales, MSE on the adding problem) of every
  trial per variant, box plots ranked by median (the shape of Greff et al.'s Fig. 3), the best
  trial marked;
* :func:`plot_lr`: learning rate (log) against the test metric, one panel per variant.
"""
from __future__ import annotations

import numpy as np

from .longrange import _save
from .timing import _plt

__all__ = ["plot_boxes", "plot_lr"]


def _done(records, key):
    return [r for r in records if r.get(key) is not None and np.isfinite(r[key])]


def _metric(task):
    from ..experiments.greff2017 import TASKS
    t = TASKS[task]
    return t["metric"], t["unit"], t["title"], t["log"]


def plot_boxes(records, path, task: str = "jsb") -> str:
    plt = _plt()
    m, unit, title, log = _metric(task)
    tk = f"test_{m}"
    rs = _done(records, tk)
    variants = sorted({r["variant"] for r in rs},
                      key=lambda v: np.median([r[tk] for r in rs if r["variant"] == v]))
    data = [[r[tk] for r in rs if r["variant"] == v] for v in variants]
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * max(len(variants), 1), 4.0))
    if data:
        ax.boxplot(data, showfliers=True)
        for i, d in enumerate(data, 1):
            ax.plot(np.full(len(d), i) + np.linspace(-0.15, 0.15, len(d)), d, ".", ms=3,
                    color="tab:blue", alpha=0.6)
        best = [min((r for r in rs if r["variant"] == v), key=lambda r: r[f"valid_{m}"])[tk]
                for v in variants]
        ax.plot(range(1, len(variants) + 1), best, "r*", ms=8, label="best trial (by validation)")
        ax.legend(fontsize=7)
    ax.set_xticks(range(1, len(variants) + 1))
    ax.set_xticklabels(variants, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(unit)
    ax.set_title(f"{title}: every trial per variant, ranked by median", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_lr(records, path, task: str = "jsb") -> str:
    plt = _plt()
    m, unit, _, log = _metric(task)
    rs = _done(records, f"test_{m}")
    variants = list(dict.fromkeys(r["variant"] for r in rs))
    cols = min(5, max(len(variants), 1))
    rows = int(np.ceil(max(len(variants), 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols, 2.4 * rows), squeeze=False,
                             sharex=True, sharey=True)
    for ax, v in zip(axes.flat, variants):
        pts = [(r["lr"], r[f"test_{m}"]) for r in rs if r["variant"] == v]
        plot = ax.loglog if log else ax.semilogx
        plot([p[0] for p in pts], [p[1] for p in pts], "o", ms=3.5)
        ax.set_title(v, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("learning rate (paper's scale)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(unit, fontsize=8)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    fig.suptitle(f"learning rate against {unit}, per variant", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
