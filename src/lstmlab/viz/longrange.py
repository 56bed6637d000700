"""Figures of the long-time-lag experiment, drawn from its records (results.json).

* :func:`plot_curves`: each case's held-out metric against training sequences, one line per
  seed, one colour per variant, the memoryless baseline dashed.
* :func:`plot_flows`: each variant's gradient-flow profile untrained (dotted) and trained.
* :func:`plot_ablation`: the ablation study's log10 MSE per seed, variant and task, ranked.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .timing import _plt

__all__ = ["plot_curves", "plot_flows", "plot_ablation", "VARIANT_COLORS"]

VARIANT_COLORS = {"lstm": "tab:red", "peephole": "tab:blue", "gru": "tab:orange", "rnn": "tab:gray",
                  "nig": "tab:green", "nfg": "tab:purple", "nog": "tab:brown", "niaf": "tab:pink",
                  "noaf": "tab:olive", "cifg": "tab:cyan", "fgr": "black"}


def _save(fig, path) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def plot_curves(records, path) -> str:
    """One panel per case: the metric (log scale for MSE and cross-entropy) against training
    sequences seen."""
    plt = _plt()
    done = [r for r in records if r.get("curve")]
    cases = list(dict.fromkeys(r["case"] for r in done))
    n = max(len(cases), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, case in zip(axes.flat, cases):
        rs = [r for r in done if r["case"] == case]
        seen = set()
        for r in rs:
            c = np.array(r["curve"], dtype=float)                    # (evals, 2): sequences, metric
            v = r["variant"]
            ax.plot(c[:, 0], c[:, 1], color=VARIANT_COLORS.get(v, "k"), lw=1, alpha=0.8,
                    label=v if v not in seen else None)
            seen.add(v)
        metric = rs[0]["metric"]
        ax.axhline(rs[0]["baseline"], color="k", ls="--", lw=0.8,
                   label="chance" if metric == "accuracy" else "memoryless baseline")
        if metric != "accuracy":
            ax.set_yscale("log")
        ax.set_title(case, fontsize=10)
        ax.set_xlabel("training sequences")
        ax.set_ylabel(f"held-out {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(cases):]:
        ax.axis("off")
    fig.suptitle("long time lags: learning curves (one line per seed)", fontsize=11)
    return _save(fig, path)


def plot_flows(flows, path) -> str:
    """RMS ||dL/dh_t|| against the steps back from the probe, per variant, untrained dotted and
    trained solid, log scale."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for f in flows:
        prof = np.array(f["profile_h"], dtype=float)
        ax.plot(np.arange(len(prof)), prof, color=VARIANT_COLORS.get(f["variant"], "k"),
                ls="-" if f["state"] == "trained" else ":",
                label=f"{f['variant']} {f['state']}: -{f['orders_lost_h']:.1f} orders / {f['steps']} steps")
    ax.set_yscale("log")
    ax.set_xlabel("steps back from the probe at each sequence's last step")
    ax.set_ylabel("RMS ||dL/dh_t||")
    ax.set_title(f"gradient flow on {flows[0]['case']}, before (dotted) and after (solid) training",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_ablation(records, table, path, full: str = "peephole") -> str:
    """One panel per task: log10 MSE of every seed per variant (dots) and the mean (line), the
    variants in the ranking's order; the full cell's mean as a dashed line, and the p-value of
    Welch's test against it under each variant."""
    plt = _plt()
    tasks = list(dict.fromkeys(r["task"] for r in table))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = [r for r in table if r["task"] == task and r["seeds"]]
        for i, r in enumerate(rows):
            lg = [np.log10(max(x["mse"], 1e-300)) for x in records
                  if x["task"] == task and x["variant"] == r["variant"] and x["status"] == "done"]
            color = VARIANT_COLORS.get(r["variant"], "k")
            ax.hlines(r["log10_mse_mean"], i - 0.32, i + 0.32, color=color, lw=2.5)
            ax.plot(np.full(len(lg), i) + np.linspace(-0.2, 0.2, len(lg)), lg, "o", ms=3.5,
                    color=color)
        ref = next((r for r in rows if r["variant"] == full), None)
        if ref:
            ax.axhline(ref["log10_mse_mean"], color="k", ls="--", lw=0.8, label=f"full cell ({full})")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([r["variant"] + ("" if r.get("p") is None else f"\np={r['p']:.2g}")
                            for r in rows], fontsize=7)
        ax.set_ylabel("log10 held-out MSE")
        ax.set_title(f"{task}: ranked, best first", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    fig.suptitle("ablation: each gate and activation removed in turn (dots: seeds)", fontsize=11)
    return _save(fig, path)
