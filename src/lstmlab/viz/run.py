"""Figures of any saved run folder (``lstmlab plot RUN_DIR``), of every task and cell.

Everything is read from the folder that :func:`lstmlab.train.train` wrote (``config.json``,
``metrics.jsonl``, ``weights.safetensors``, ``snapshots/``); the held-out sequences are the
run's own test set, regenerated from its seed. Figures:

* ``curves``: training loss and the test metrics against iterations;
* ``predictions``: one held-out sequence, its input, target and the model's output;
* ``gates``: heatmaps (cells x steps) of every gate (i, f, g, o; GRU r, z, n), the cell state
  and the output over that sequence, with the input above;
* ``peepholes``: the peephole weights w_ci, w_cf, w_co of every cell (peephole cells only);
* ``weights``: the input and recurrent weight matrices of each gate;
* ``gradflow``: the gradient-flow profile (:mod:`lstmlab.core.flow`) of this model, untrained
  and trained, beside an RNN and a GRU of the same size and initialisation, untrained;
* ``--gif``: one frame per weight snapshot: the output, the cell states and the test curve.
"""
from __future__ import annotations

import os

import numpy as np

from ..core.flow import gradient_flow, orders_lost
from ..core.io import load_arrays
from ..train.config import test_rng
from ..train.loop import SNAPSHOTS, build_model, load_run
from .timing import _plt

__all__ = ["FIGURES", "load_saved_run", "plot_run", "render_gif"]

FIGURES = ("curves", "predictions", "gates", "peepholes", "weights", "gradflow")
GATE_NAMES = {"lstm": "ifgo", "gru": "rzn", "rnn": "h"}
GATE_TITLES = {"i": "input gate i", "f": "forget gate f", "g": "cell input g", "o": "output gate o",
               "r": "reset gate r", "z": "update gate z", "n": "candidate n", "c": "cell state c",
               "h": "output h"}


def load_saved_run(run_dir) -> dict:
    """:func:`lstmlab.train.loop.load_run` (one-line ValueError for a missing or corrupt run)
    plus ``batch``, the run's own held-out set, regenerated from its seed."""
    run = load_run(run_dir)
    cfg = run["config"]
    run["batch"] = cfg.make_task(test=True).sample(cfg.eval_size, test_rng(cfg.seed))
    return run


def _lengths(batch) -> np.ndarray:
    """(B,) each sequence's length: one past its last step with a target (T if it has none)."""
    last = batch.T - 1 - np.argmax(batch.mask[::-1], axis=0)                # (B,)
    return np.where(batch.mask.any(axis=0), last + 1, batch.T)


def _sequence(run, n):
    """Held-out sequence n: (x of that one sequence, its batch column, its length)."""
    batch = run["batch"]
    B = batch.x.shape[1]
    if not 0 <= n < B:
        raise ValueError(f"sample: expected a sequence index in [0, {B}), got {n}")
    length = int(_lengths(batch)[n])
    return batch.x[:length, n:n + 1], n, length


def _label(run):
    cfg = run["config"]
    return f"{cfg.task} {cfg.variant_name} H={cfg.hidden} seed {cfg.seed}"


def _draw_input(ax, run, x, length):
    """The input of one sequence: real channels as lines, token ids as a step plot."""
    t = np.arange(length)
    if run["model"].tokens:
        ax.step(t, x[:, 0], where="mid", color="k", lw=1)
        ax.set_ylabel("input id")
    else:
        for j in range(x.shape[2]):
            ax.plot(t, x[:, 0, j], lw=1, label=f"x[{j}]")
        if x.shape[2] > 1:
            ax.legend(loc="upper right", fontsize=7, ncol=x.shape[2])
        ax.set_ylabel("input")
    ax.set_xlim(-0.5, length - 0.5)


def _rows(plt, n, figsize, heights=None):
    """n stacked panels sharing the time axis, each with its own colour-bar slot on the right
    (unused slots hidden), so every panel's time axis lines up."""
    fig = plt.figure(figsize=figsize)
    gs = fig.add_gridspec(n, 2, width_ratios=[40, 1], height_ratios=heights, hspace=0.55,
                          wspace=0.02)
    axes = [fig.add_subplot(gs[0, 0])]
    axes += [fig.add_subplot(gs[k, 0], sharex=axes[0]) for k in range(1, n)]
    caxes = [fig.add_subplot(gs[k, 1]) for k in range(n)]
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    caxes[0].set_visible(False)
    return fig, axes, caxes


def _save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


# -- the figures ----------------------------------------------------------------------------------

def plot_curves(run, path) -> str:
    """Training loss and every test metric against iterations (losses on a log scale)."""
    plt = _plt()
    recs = run["metrics"]
    if not recs:
        raise ValueError(f"{run['dir']}: metrics.jsonl is missing or empty")
    keys = [k for k in recs[-1] if k not in ("iter", "lr", "wall_s", "grad_norm")
            and isinstance(recs[-1][k], (int, float))]
    losses = [k for k in keys if k in ("train_loss", "mse", "xent", "nll") or k.startswith("baseline")]
    rates = [k for k in keys if k not in losses]
    fig, axes = plt.subplots(1, 2 if rates else 1, figsize=(11 if rates else 6, 3.8), squeeze=False)
    ax = axes[0, 0]
    for k in losses:
        its = [r["iter"] for r in recs if r.get(k) is not None]
        vals = [r[k] for r in recs if r.get(k) is not None]
        base = k.startswith("baseline")
        style = dict(ls="--", color="grey") if base else {}
        ax.plot(its, vals, label=f"{k} (the task's baseline)" if base else
                k if k == "train_loss" else f"test {k}", **style)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("losses (log scale)")
    ax.legend(fontsize=8)
    if rates:
        ax = axes[0, 1]
        for k in rates:
            ax.plot([r["iter"] for r in recs], [r.get(k, np.nan) for r in recs], label=k)
        ax.set_xlabel("iteration")
        ax.set_ylabel("test metric")
        ax.set_title("test metrics")
        ax.legend(fontsize=8)
    fig.suptitle(f"training curves: {_label(run)}")
    return _save(fig, path)


#: Outputs beyond this magnitude are not drawn (a linear cell that runs away reaches inf).
RUNAWAY = 1e6


def _blank_runaway(a: np.ndarray, time_axis: int) -> tuple[np.ndarray, int | None]:
    """``a`` with its values beyond :data:`RUNAWAY` or not finite set to NaN (matplotlib's tick
    code fails on values near the float64 maximum), and the first time step that has one
    (None when there is none)."""
    away = ~(np.abs(a) <= RUNAWAY)                                        # inf, NaN, huge
    if not away.any():
        return a, None
    other = tuple(i for i in range(a.ndim) if i != time_axis)
    return np.where(away, np.nan, a), int(np.flatnonzero(away.any(axis=other))[0])


def plot_predictions(run, path, sample=0) -> str:
    """One held-out sequence: its input, and the target beside the model's output."""
    plt = _plt()
    x, b, length = _sequence(run, sample)
    model, batch = run["model"], run["batch"]
    with np.errstate(over="ignore", invalid="ignore"):    # a linear cell may run away
        pred = model.forward(x)[0][:, 0]                                  # (L, K)
    y, mask = batch.y[:length, b], batch.mask[:length, b]
    t = np.arange(length)
    fig, (a1, a2), (_, c2) = _rows(plt, 2, (10, 5), heights=[1, 2])
    _draw_input(a1, run, x, length)
    a1.set_title(f"held-out sequence {sample}: input")
    if run["task"].loss == "softmax_ce":
        z = pred - pred.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)              # (L, K)
        im = a2.imshow(p.T, aspect="auto", origin="lower", cmap="Greys", vmin=0, vmax=1,
                       extent=(-0.5, length - 0.5, -0.5, p.shape[1] - 0.5), interpolation="nearest")
        a2.scatter(t[mask], y[mask], s=14, facecolors="none", edgecolors="tab:red", label="target")
        a2.set_ylabel("class")
        fig.colorbar(im, cax=c2, label="predicted probability")
        a2.legend(loc="upper left", fontsize=8)
    else:
        y = y.reshape(length, -1)
        pred, first = _blank_runaway(pred, time_axis=0)                  # (L, K)
        if first is not None:                  # not drawable; say where the output leaves
            a2.text(0.99, 0.97, f"output beyond ±{RUNAWAY:g} or not finite from step {first}",
                    transform=a2.transAxes, ha="right", va="top", fontsize=8, color="tab:red")
        for j in range(pred.shape[1]):
            a2.plot(t, pred[:, j], lw=1.2, label=f"output[{j}]" if pred.shape[1] > 1 else "output")
            a2.scatter(t[mask], y[mask, j], s=12, color="k", zorder=3,
                       label="target" if j == 0 else None)
        a2.set_ylabel("value")
        a2.legend(loc="upper left", fontsize=8)
        c2.set_visible(False)
    a2.set_xlabel("time step")
    a2.set_title("target (where the loss counts) and output")
    fig.suptitle(_label(run))
    return _save(fig, path)


def plot_gates(run, path, sample=0) -> str:
    """Heatmaps of every gate, the cell state and the output over one held-out sequence."""
    plt = _plt()
    x, _, length = _sequence(run, sample)
    model = run["model"]
    u, _ = model.rnn_inputs(x)
    with np.errstate(over="ignore", invalid="ignore"):    # a linear cell may run away
        _, _, cache = model.rnn.forward(u)
    ins = cache.internals(0, 0)                                           # name -> (L, 1, H)
    kind = model.rnn.kind
    names = [n for n in GATE_NAMES[kind] if n != "h"] + (["c"] if kind == "lstm" else []) + ["h"]
    fig, axes, caxes = _rows(plt, len(names) + 1, (10, 1.6 + 1.45 * len(names)))
    _draw_input(axes[0], run, x, length)
    axes[0].set_title(f"held-out sequence {sample}: input (layer 0, forward direction below)")
    spec = model.rnn.spec
    absent = {"i": spec and not spec.input_gate, "f": spec and not spec.forget_gate and not spec.coupled,
              "o": spec and not spec.output_gate}
    for ax, cax, n in zip(axes[1:], caxes[1:], names):
        a = ins[n][:, 0].T                                                 # (H, L)
        first = None
        if n in "ifozr":
            kw = dict(cmap="viridis", vmin=0, vmax=1)
        else:
            a, first = _blank_runaway(a, time_axis=1)                      # (H, L), blank where away
            m = float(np.nanmax(np.abs(a), initial=0.0)) or 1.0
            kw = dict(cmap="RdBu_r", vmin=-m, vmax=m)
        im = ax.imshow(a, aspect="auto", origin="lower", interpolation="nearest",
                       extent=(-0.5, length - 0.5, -0.5, a.shape[0] - 0.5), **kw)
        title = GATE_TITLES[n] + (" (absent in this cell: constant 1)" if absent.get(n) else "")
        if first is not None:
            title += f" (beyond ±{RUNAWAY:g} or not finite from step {first}: blank)"
        if n == "f" and spec is not None and spec.coupled:
            title += " (coupled: 1 - i)"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("cell")
        fig.colorbar(im, cax=cax)
    axes[-1].set_xlabel("time step")
    fig.suptitle(f"gates and states: {_label(run)}")
    return _save(fig, path)


def plot_peepholes(run, path) -> str:
    """The peephole weights of every cell of layer 0 (forward direction)."""
    plt = _plt()
    rnn = run["model"].rnn
    if rnn.kind != "lstm" or not rnn.spec.peephole:
        raise ValueError(f"peepholes: the {run['config'].variant_name} cell has no peephole weights")
    H = rnn.hidden_size
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * H + 2), 3.5))
    w = 0.27
    for j, name in enumerate(("weight_ci_l0", "weight_cf_l0", "weight_co_l0")):
        ax.bar(np.arange(H) + (j - 1) * w, rnn.params[name], width=w,
               label=f"w_{name[8:10]} ({'input' if j == 0 else 'forget' if j == 1 else 'output'} gate)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(np.arange(H))
    ax.set_xlabel("cell")
    ax.set_ylabel("peephole weight")
    ax.set_title(f"peephole weights: {_label(run)}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_weights(run, path) -> str:
    """W_ih and W_hh of layer 0 (forward direction), one panel per gate, one colour scale per row."""
    plt = _plt()
    rnn = run["model"].rnn
    gates = GATE_NAMES[rnn.kind]
    H = rnn.hidden_size
    mats = [rnn.params["weight_ih_l0"], rnn.params["weight_hh_l0"]]           # (G*H, D), (G*H, H)
    fig, axes = plt.subplots(2, len(gates), figsize=(2.8 * len(gates) + 1.5, 6), squeeze=False,
                             layout="constrained")
    for r, (a, what) in enumerate(zip(mats, ("input weights W_ih", "recurrent weights W_hh"))):
        m = float(np.abs(a).max()) or 1.0
        for j, g in enumerate(gates):
            ax = axes[r, j]
            im = ax.imshow(a[j * H:(j + 1) * H], cmap="RdBu_r", vmin=-m, vmax=m, aspect="auto",
                           interpolation="nearest")
            ax.set_title(f"{what.split()[-1]}, gate {g}", fontsize=9)
            ax.set_xlabel("input unit" if r == 0 else "from cell", fontsize=8)
            if r == 0 and a.shape[1] <= 12:
                ax.set_xticks(range(a.shape[1]))
            if j == 0:
                ax.set_ylabel("to cell")
        fig.colorbar(im, ax=axes[r].tolist(), label=what, shrink=0.9)
    fig.suptitle(f"weights per gate: {_label(run)}")
    return _save(fig, path)


def gradient_flow_profiles(run, n_seq: int = 64) -> dict:
    """Profiles on the run's first ``n_seq`` held-out sequences: this model trained and
    untrained (its initial weights, rebuilt from the config), and an RNN and a GRU of the same
    size and initialisation, untrained. Returns label -> profile."""
    cfg, model, batch = run["config"], run["model"], run["batch"]
    x = batch.x[:, :n_seq]
    lengths = _lengths(batch)[:n_seq]
    task = cfg.make_task()
    out = {}
    models = [(f"{cfg.variant_name} trained", model),
              (f"{cfg.variant_name} untrained", build_model(cfg, task))]
    for v in ("rnn", "gru"):       # the LSTM-only init levers do not apply to these
        if v != cfg.variant:
            other = cfg.replace(variant=v, init_range=None, zero_bias=False, gate_bias={},
                                identity_squash=False)
            models.append((f"{v} untrained", build_model(other, task)))
    for label, m in models:
        u, _ = m.rnn_inputs(x)
        out[label] = gradient_flow(m.rnn, u, lengths, probes=2, seed=cfg.seed)
    return out


def plot_gradient_flow(run, path) -> str:
    """||dL/dh_t|| (solid) and ||dL/dc_t|| (dashed, LSTM cells) against the steps back from a
    probe at the last step, log scale; the orders of magnitude lost over 100 steps in the legend."""
    plt = _plt()
    profiles = gradient_flow_profiles(run)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for j, (label, p) in enumerate(profiles.items()):
        color = f"C{j}"
        steps = min(100, len(p["h"]) - 1)
        lost = orders_lost(p, steps)
        ax.plot(p["distance"], p["h"], color=color, label=f"{label}: dL/dh, -{lost:.1f} orders / {steps} steps")
        if "c" in p:
            ax.plot(p["distance"][1:], p["c"][1:], color=color, ls="--", lw=1, label=f"{label}: dL/dc")
    ax.set_yscale("log")
    ax.set_xlabel("steps back from the probe at the last step")
    ax.set_ylabel("RMS gradient norm (log)")
    ax.set_title(f"gradient flow: {_label(run)}", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_run(run_dir, what=None, sample: int = 0, out=None, gif: bool = False, log=None) -> list[str]:
    """Draw the figures ``what`` (default: all that apply) of the run in ``run_dir`` into
    ``out`` (default ``RUN_DIR/figures``); with ``gif`` also the training animation. Returns
    the paths written."""
    what = list(FIGURES) if what is None else list(what)
    bad = [w for w in what if w not in FIGURES]
    if bad:
        raise ValueError(f"what: unknown figure {bad[0]!r} (expected some of {', '.join(FIGURES)})")
    run = load_saved_run(run_dir)
    out = os.path.join(run_dir, "figures") if out is None else os.fspath(out)
    if getattr(run["task"], "kind", None) == "seq2seq":     # an encoder-decoder: curves only
        other = [w for w in what if w != "curves"] if what != list(FIGURES) else []
        if other or gif:
            raise ValueError(f"what: {'--gif' if gif and not other else other[0]} is not drawn for "
                             "sequence-to-sequence runs (only curves; lstmlab translate RUN TEXT "
                             "--attention prints the attention weights)")
        what, sample = ["curves"], None
    else:
        _sequence(run, sample)                              # the checks first, then the drawing
    if gif:
        _snapshot_files(run_dir)
    paths = []
    explicit = what != list(FIGURES)
    for w in what:
        path = os.path.join(out, f"{w}.png")
        if w == "peepholes" and not explicit:
            rnn = run["model"].rnn
            if rnn.kind != "lstm" or not rnn.spec.peephole:
                continue                                                  # nothing to draw
        fn = {"curves": plot_curves, "predictions": plot_predictions, "gates": plot_gates,
              "peepholes": plot_peepholes, "weights": plot_weights,
              "gradflow": plot_gradient_flow}[w]
        args = (run, path, sample) if w in ("predictions", "gates") else (run, path)
        paths.append(fn(*args))
        if log:
            log(f"wrote {path}")
    if gif:
        paths.append(render_gif(run, os.path.join(out, "training.gif"), sample))
        if log:
            log(f"wrote {paths[-1]}")
    return paths


def _snapshot_files(run_dir) -> list[str]:
    snap_dir = os.path.join(run_dir, SNAPSHOTS)
    files = sorted(f for f in os.listdir(snap_dir) if f.endswith(".safetensors")) \
        if os.path.isdir(snap_dir) else []
    if not files:
        raise ValueError(f"{run_dir}: no weight snapshots (train with --snapshot-every N)")
    return files


def render_gif(run, path, sample=0, fps: int = 4) -> str:
    """One frame per weight snapshot (``train --snapshot-every``): the held-out sequence's
    output against its target, the cell states (hidden states for GRU/RNN) and the test
    headline metric up to that iteration. Written with matplotlib's Pillow writer."""
    plt = _plt()
    from matplotlib.animation import FuncAnimation, PillowWriter

    snap_dir = os.path.join(run["dir"], SNAPSHOTS)
    files = _snapshot_files(run["dir"])
    cfg, batch = run["config"], run["batch"]
    model = build_model(cfg, cfg.make_task())
    x, b, length = _sequence(run, sample)
    y, mask = batch.y[:length, b], batch.mask[:length, b]
    key = run["task"].headline
    recs = [r for r in run["metrics"] if r.get(key) is not None]
    frames = []
    for f in files:
        try:
            arrays, meta = load_arrays(os.path.join(snap_dir, f))
        except (OSError, ValueError) as e:
            raise ValueError(f"{os.path.join(snap_dir, f)}: cannot be read ({str(e).splitlines()[0]})") from None
        model.load_params(arrays)
        u, _ = model.rnn_inputs(x)
        yr, _, cache = model.rnn.forward(u)
        pred = model.out.forward(yr)[0][:, 0]                              # (L, K)
        state = cache.internals(0, 0)["c" if model.rnn.kind == "lstm" else "h"][:, 0].T
        frames.append((int(meta.get("iter", 0)), pred, state))
    smax = max(float(np.abs(s).max()) for _, _, s in frames) or 1.0
    t = np.arange(length)
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(8, 7), gridspec_kw={"height_ratios": [2, 2, 1.4]})
    classify = run["task"].loss == "softmax_ce"

    def draw(k):
        it, pred, state = frames[k]
        for ax in (a1, a2, a3):
            ax.clear()
        if classify:
            a1.plot(t, pred.argmax(axis=1), lw=1, label="predicted class")
            a1.scatter(t[mask], y[mask], s=10, color="k", label="target")
        else:
            a1.plot(t, pred[:, 0], lw=1.2, label="output")
            a1.scatter(t[mask], y.reshape(length, -1)[mask, 0], s=10, color="k", label="target")
        a1.set_xlim(-0.5, length - 0.5)
        a1.set_title(f"{_label(run)}: iteration {it}", fontsize=10)
        a1.set_ylabel("output")
        a1.legend(loc="upper left", fontsize=7)
        a2.imshow(state, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-smax, vmax=smax,
                  interpolation="nearest", extent=(-0.5, length - 0.5, -0.5, state.shape[0] - 0.5))
        a2.set_ylabel("cell")
        a2.set_xlabel("time step")
        a2.set_title("cell states c_t" if model.rnn.kind == "lstm" else "hidden states h_t", fontsize=9)
        a3.plot([r["iter"] for r in recs], [r[key] for r in recs], color="lightgrey")
        seen = [r for r in recs if r["iter"] <= it]
        a3.plot([r["iter"] for r in seen], [r[key] for r in seen], color="tab:blue")
        if key in ("mse", "xent", "nll"):
            a3.set_yscale("log")
        a3.axvline(it, color="tab:red", lw=0.8)
        a3.set_xlabel("iteration")
        a3.set_ylabel(f"test {key}")
        fig.tight_layout()

    anim = FuncAnimation(fig, draw, frames=len(frames))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    anim.save(path, writer=PillowWriter(fps=fps), dpi=80)
    plt.close(fig)
    return path
