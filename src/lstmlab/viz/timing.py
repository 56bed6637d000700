"""Figures of the timing experiments, each drawn from saved run folders.

* :func:`plot_training_curves`: test MSE (log) and solve rate against iterations, per variant,
  mean over seeds with a min-max band (reads ``metrics.jsonl``).
* :func:`plot_predictions`: held-out sequences with input spikes, target and each model's output
  (loads ``weights.safetensors``; the sequences come from the run's test stream).
* :func:`plot_generated_streams`: the first and last cycles of a generated test stream (the
  paper's generation tasks gts and pfg), one row per run.
* :func:`plot_cell_state`: one model's cell states ``c_t`` (H x T heatmap) over one sequence, with
  the input, target and output below.
"""
from __future__ import annotations

import json
import os

import numpy as np

__all__ = ["have_matplotlib", "plot_training_curves", "plot_predictions", "plot_cell_state",
           "plot_generated_streams"]

COLORS = {"peephole": "tab:blue", "lstm": "tab:red"}


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("figures need matplotlib (pip install 'lstmlab[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_training_curves(runs: dict[str, list[str]], path: str, title: str = "") -> str:
    """``runs``: variant -> run folders (one per seed). Writes ``path``; returns it."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    for variant, dirs in runs.items():
        recs = [_metrics(d) for d in dirs if os.path.exists(os.path.join(d, "metrics.jsonl"))]
        if not recs:
            continue
        n = min(len(r) for r in recs)
        its = np.array([r["iter"] for r in recs[0][:n]])
        color = COLORS.get(variant)
        for ax, key in ((a1, "mse"), (a2, "solve_rate")):
            v = np.array([[r[key] for r in rec[:n]] for rec in recs], dtype=float)   # (seeds, n)
            ax.plot(its, v.mean(axis=0), color=color, label=f"{variant} (mean of {len(recs)})")
            ax.fill_between(its, v.min(axis=0), v.max(axis=0), color=color, alpha=0.15, lw=0)
    a1.set_yscale("log")
    a1.set_ylabel("test MSE (per step)")
    a2.set_ylabel("exact-timing solve rate")
    a2.set_ylim(-0.02, 1.02)
    for ax in (a1, a2):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title or "training curves (band: min-max over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _test_batch(run, n):
    from ..train.config import test_rng
    cfg = run["config"]
    return cfg.make_task(test=True).sample(n, test_rng(cfg.seed))


def plot_predictions(run_dirs: dict[str, str], path: str, n: int = 4) -> str:
    """``run_dirs``: variant -> one run folder (same seed and task). Plots ``n`` test sequences."""
    from ..train.loop import load_run
    plt = _plt()
    runs = {v: load_run(d) for v, d in run_dirs.items()}
    first = next(iter(runs.values()))
    batch = _test_batch(first, n)
    preds = {v: r["model"].predict(batch.x)[:, :, 0] for v, r in runs.items()}
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.0 * n), sharex=True)
    axes = np.atleast_1d(axes)
    t = np.arange(batch.T)
    for b, ax in enumerate(axes):
        ax.vlines(t[batch.x[:, b, 0] != 0], 0, batch.x[batch.x[:, b, 0] != 0, b, 0], color="0.5",
                  lw=2, label="input spikes")
        ax.plot(t, batch.y[:, b, 0], color="tab:green", lw=1.5, label="target")
        for v, p in preds.items():
            ax.plot(t, p[:, b], color=COLORS.get(v), lw=1.2, ls="-" if v == "peephole" else "--",
                    label=f"{v} output")
        info = {k: int(np.asarray(val)[b]) for k, val in batch.info.items() if np.ndim(val) == 1}
        if "t_target" in info:
            ax.set_title(f"t1={info['t1']}, t2={info['t2']}, D={info['D']}, target at {info['t_target']}",
                         fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, ncol=4)
    axes[-1].set_xlabel("time step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_cell_state(run_dir: str, path: str, index: int | None = None) -> str:
    """Cell states of the run's model over one test sequence (default: the one with longest D)."""
    from ..train.loop import load_run
    plt = _plt()
    run = load_run(run_dir)
    model = run["model"]
    batch = _test_batch(run, 64)
    if index is None:
        index = int(np.argmax(batch.info["D"])) if "D" in batch.info else 0
    x = batch.x[:, index:index + 1]
    y, _, cache = model.rnn.forward(x)
    c = cache.internals(0, 0)["c"][:, 0, :]                                   # (T, H)
    o = cache.internals(0, 0)["o"][:, 0, :]                                   # (T, H)
    pred = model.out.forward(y)[0][:, 0, 0]
    fig, axes = plt.subplots(3, 1, figsize=(10, 7), sharex=True,
                             gridspec_kw={"height_ratios": [1, 3, 1.3]})
    t = np.arange(batch.T)
    axes[0].plot(t, x[:, 0, 0], color="0.4")
    axes[0].set_ylabel("input")
    lim = float(np.abs(c).max()) or 1.0
    im = axes[1].imshow(c.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                        extent=(-0.5, batch.T - 0.5, c.shape[1] - 0.5, -0.5))
    axes[1].set_ylabel("cell")
    fig.colorbar(im, ax=axes[1], orientation="horizontal", fraction=0.05, pad=0.02, label="c_t")
    axes[2].plot(t, batch.y[:, index, 0], color="tab:green", label="target")
    axes[2].plot(t, pred, color=COLORS.get(run["config"].variant_name, "k"), label="output")
    axes[2].plot(t, o.mean(axis=1), color="0.6", lw=0.8, label="mean output gate")
    axes[2].legend(fontsize=8, loc="upper left")
    axes[2].set_xlabel("time step")
    for ax in axes:
        if "t2" in batch.info:
            for key, ls in (("t1", ":"), ("t2", ":"), ("t_target", "--")):
                ax.axvline(int(batch.info[key][index]), color="k", lw=0.7, ls=ls)
    cfg = run["config"]
    fig.suptitle(f"{cfg.variant_name} cell states, seed {cfg.seed} (dotted: input spikes, dashed: target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_generated_streams(runs: dict[str, str], path: str, cycles: int = 3) -> str:
    """For each ``label -> run folder`` (a run of gts, pfg or msd), the first and the last
    ``cycles`` cycles of its test stream (the held-out stream the run was scored on): the
    network's output against the target (dashed; circles where the task scores only some
    steps, as msd scores the spike steps)."""
    from ..train.config import test_rng
    from ..train.loop import load_run
    plt = _plt()
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 2.2 * len(runs)), squeeze=False)
    for row, (label, run_dir) in zip(axes, runs.items()):
        run = load_run(run_dir)
        cfg = run["config"]
        batch = cfg.make_task(test=True).sample(1, test_rng(cfg.seed))
        with np.errstate(over="ignore", invalid="ignore"):
            pred = run["model"].predict(batch.x)[:, 0, 0]                  # (T,)
        y = batch.y[:, 0, 0]                                                # (T,)
        scored = batch.mask[:, 0]                                           # (T,) bool
        F = cfg.task_args["F"]
        n = cycles * F
        for ax, (lo, which) in zip(row, ((0, "first"), (len(y) - n, "last"))):
            t = np.arange(lo, lo + n)
            if scored.all():
                ax.plot(t, y[lo:lo + n], "k--", lw=1, label="target")
            else:                       # msd: a target only at the spike steps, none between
                at = t[scored[lo:lo + n]]
                ax.plot(at, y[at], "ko", ms=4, mfc="none", label="target (at spikes)")
            ax.plot(t, pred[lo:lo + n], color=COLORS["peephole"], lw=1.5, label="network")
            ax.set_title(f"{label} (seed {cfg.seed}): {which} {cycles} of {len(y) // F} cycles",
                         fontsize=9)
            ax.set_xlabel("step")
        row[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
