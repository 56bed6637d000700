"""Figures of ``lstmlab reproduce seq2seq``, drawn from its records (results.json).

* :func:`plot_accuracy`: exact match against source length per task, one line per attention
  (mean over seeds, each seed a dot): the bottleneck curve.
* :func:`plot_attention`: attention weights of a few held-out examples, output characters
  (rows) against source characters (columns).
"""
from __future__ import annotations

import numpy as np

from .longrange import _save
from .timing import _plt

__all__ = ["plot_accuracy", "plot_attention"]

COLORS = {"none": "tab:gray", "luong": "tab:blue", "bahdanau": "tab:orange", "dot": "tab:green"}


def plot_accuracy(records, path) -> str:
    plt = _plt()
    cases = [c for c in dict.fromkeys(r["case"] for r in records)
             if any(r["length"] is not None for r in records if r["case"] == c)]
    fig, axes = plt.subplots(1, max(len(cases), 1), figsize=(4.6 * max(len(cases), 1), 3.6),
                             squeeze=False)
    for ax, case in zip(axes[0], cases):
        rs = [r for r in records if r["case"] == case and r["exact_match"] is not None]
        for att in dict.fromkeys(r["attention"] for r in rs):
            pts = [(r["length"], r["exact_match"]) for r in rs if r["attention"] == att]
            Ls = sorted({L for L, _ in pts})
            mean = [np.mean([e for L2, e in pts if L2 == L]) for L in Ls]
            c = COLORS.get(att, "black")
            ax.plot(Ls, mean, "-o", color=c, label=att)
            ax.scatter([L for L, _ in pts], [e for _, e in pts], s=10, color=c, alpha=0.4)
        ax.set_title(case)
        ax.set_xlabel("source length")
        ax.set_ylabel("exact match (held out)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(title="attention")
    return _save(fig, path)


def plot_attention(examples: dict, cases, path) -> str:
    """``examples``: label -> list of decodes (results.json's ``attention_examples``); the
    characters come from each case's task."""
    from ..tasks import make_task
    plt = _plt()
    tasks = {c.task: make_task(c.task, **c.task_args) for c in cases}
    panels = [(label, ex) for label, exs in examples.items() for ex in exs[:2]
              if ex["attention"] is not None]
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (label, ex) in zip(axes.flat, panels):
        task = tasks[label.split(" ")[0]]
        src = [task.src_chars[i - 3] for i in ex["source"]]
        outc = [task.tgt_chars[i - 3] for i in ex["output"]] + (["<eos>"] if ex["finished"] else [])
        A = np.array(ex["attention"])                                     # (output, source)
        ax.imshow(A, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(src)), src, fontsize=7)
        ax.set_yticks(range(len(outc)), outc, fontsize=7)
        right = ex["output"] == ex["target"]
        ax.set_title(f"{label}: {'right' if right else 'wrong'}", fontsize=9)
        ax.set_xlabel("source")
        ax.set_ylabel("output")
    return _save(fig, path)
