"""A character-level language model trained twice, side by side: lstmlab's NumPy engine (the
``lstmlab train charlm`` loop itself) and ``torch.nn.LSTM``, identically.

Identically means: the same model (one-hot characters -> ``--layers`` x ``--hidden`` LSTM -> a
linear softmax readout), the same initial weights (torch's modules load lstmlab's through the
state dict: the names are nn.LSTM's), the same batches (``CharLM.stream_batch``: 32 contiguous
streams, chunks of 100 characters, the state carried and detached between chunks, zeros at each
epoch's start), the same optimiser (Adam 3e-3, the cosine schedule of ``TrainConfig.lr_at``,
global-norm clip 5), float32, no dropout, and the same held-out scoring (the validation split as
8 streams, each read from a zero state). The two compute the same function and round
differently, so their trajectories part slowly; the script reports each one's validation
bits per character after every epoch, the test split at the end, and the seconds per epoch
(training plus that epoch's validation, one process, one thread each unless ``--threads``).

    python examples/char_language_model.py                   # 2 x 256, 10 epochs (README)
    python examples/char_language_model.py --hidden 128 --layers 1 --epochs 5
    python examples/char_language_model.py --quick           # a small smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

from lstmlab.experiments.charlm import charlm_config, split_metrics
from lstmlab.tasks import make_task
from lstmlab.train.loop import load_run, read_metrics, train


class TorchCharLM(nn.Module):
    """one-hot (T, B, V) -> nn.LSTM -> nn.Linear: lstmlab's SeqModel in torch modules."""

    def __init__(self, V, H, layers):
        super().__init__()
        self.V = V
        self.rnn = nn.LSTM(V, H, num_layers=layers)
        self.out = nn.Linear(H, V)

    def forward(self, ids, state=None):                        # ids (T, B) int64
        y, state = self.rnn(nn.functional.one_hot(ids, self.V).to(self.out.weight.dtype), state)
        return self.out(y), state                                 # (T, B, V) logits


def load_lstmlab_weights(tm: TorchCharLM, params: dict) -> None:
    """Copy lstmlab's ``rnn.*`` and ``out.*`` arrays into the torch modules (strict), in the
    modules' dtype."""
    dtype = tm.out.weight.dtype
    sd = {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(dtype) for k, v in params.items()}
    tm.load_state_dict(sd, strict=True)


def torch_update(tm, opt, cfg, task, it, state):
    """Update ``it`` of the recipe: chunk ``it`` of the streams from ``state`` (zeros at an
    epoch's start), the scheduled learning rate, cross-entropy, global-norm clip, one Adam step.
    Returns the final state, detached (truncated BPTT)."""
    b = task.stream_batch(cfg.batch, it)
    if b.info["reset"]:
        state = None
    for g in opt.param_groups:
        g["lr"] = cfg.lr_at(it)
    logits, state = tm(torch.from_numpy(b.x), state)
    loss = nn.functional.cross_entropy(logits.reshape(-1, task.output_size),
                                       torch.from_numpy(b.y).reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(tm.parameters(), cfg.clip)
    opt.step()
    return tuple(s.detach() for s in state)


def torch_bpc(tm, task, streams=8, steps=256) -> float:
    """Bits per character of the task's split, as lstmlab's evaluate scores it."""
    b = task.sample(streams)
    x, y = torch.from_numpy(b.x), torch.from_numpy(b.y)
    total, state = 0.0, None
    with torch.no_grad():
        for s in range(0, x.shape[0], steps):
            logits, state = tm(x[s:s + steps], state)
            lp = torch.log_softmax(logits.double(), dim=2)
            total += -lp.gather(2, y[s:s + steps, :, None]).sum().item()
    return total / y.numel() / np.log(2)


def train_torch(cfg, init_params, log) -> dict:
    task = cfg.make_task()
    valid = make_task("charlm", **{**cfg.task_args, "split": "valid"})
    test = make_task("charlm", **{**cfg.task_args, "split": "test"})
    tm = TorchCharLM(task.input_size, cfg.hidden, cfg.layers)
    load_lstmlab_weights(tm, init_params)
    opt = torch.optim.Adam(tm.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    curve, epoch_s, state, t0 = [], [], None, time.perf_counter()
    for it in range(cfg.iters):
        state = torch_update(tm, opt, cfg, task, it, state)
        if (it + 1) % cfg.eval_every == 0 or it + 1 == cfg.iters:      # as lstmlab's loop
            curve.append({"iter": it + 1, "bpc": torch_bpc(tm, valid)})
            epoch_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            log(f"torch   epoch {len(curve)}: valid bpc {curve[-1]['bpc']:.4f} ({epoch_s[-1]:.1f} s)")
    return {"curve": curve, "epoch_s": epoch_s, "test_bpc": torch_bpc(tm, test)}


def train_lstmlab(cfg, out, log) -> dict:
    s = train(cfg, out, quiet=True)
    metrics = [m for m in read_metrics(os.path.join(out, "metrics.jsonl")) if m["iter"] > 0]
    walls = [0.0] + [m["wall_s"] for m in metrics]
    for i, m in enumerate(metrics):
        log(f"lstmlab epoch {i + 1}: valid bpc {m['bpc']:.4f} ({walls[i + 1] - walls[i]:.1f} s)")
    return {"curve": [{"iter": m["iter"], "bpc": m["bpc"]} for m in metrics],
            "epoch_s": list(np.diff(walls)), "test_bpc": split_metrics(load_run(out), "test")["bpc"],
            "wall_s": s["wall_s"]}


def plot(res, path) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name, style in (("lstmlab", "-o"), ("torch", "--s")):
        c = res[name]["curve"]
        ax.plot([i + 1 for i in range(len(c))], [p["bpc"] for p in c], style, ms=4,
                label=f"{name} (test {res[name]['test_bpc']:.3f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation bits per character")
    ax.set_title(f"char LM, {res['layers']} x {res['hidden']} LSTM, same weights, batches, Adam")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights (default 0)")
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    p.add_argument("--out", default="runs/charlm-side-by-side",
                   help="folder of lstmlab's run, results.json and curves.png")
    p.add_argument("--quick", action="store_true", help="1 x 32 units, 40 iterations: a smoke run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    a = p.parse_args(argv)
    for n in ("layers", "hidden", "epochs", "threads"):
        if getattr(a, n) < 1:
            p.exit(2, f"{p.prog}: error: --{n}: expected a positive integer\n")
    torch.set_num_threads(a.threads)
    from lstmlab._blas import set_blas_threads
    set_blas_threads(a.threads)
    over = {"dropout": 0.0}           # not the recipe's 0.5: torch cannot draw lstmlab's masks
    if a.quick:
        a.layers, a.hidden = 1, 32
        over.update(iters=40, eval_every=20, checkpoint_every=20)
    cfg = charlm_config(None, "lstm", a.layers, a.hidden, epochs=a.epochs, seed=a.seed, **over)
    log = (lambda m: None) if a.json else (lambda m: print(m, file=sys.stderr, flush=True))
    from lstmlab.train.loop import build_model
    init = build_model(cfg, cfg.make_task()).params              # what train() starts from
    init = {k: v.copy() for k, v in init.items()}
    os.makedirs(a.out, exist_ok=True)
    ours = train_lstmlab(cfg, os.path.join(a.out, "lstmlab-run"), log)
    theirs = train_torch(cfg, init, log)
    res = {"layers": a.layers, "hidden": a.hidden, "epochs": a.epochs, "iters": cfg.iters,
           "seed": a.seed, "threads": a.threads, "torch": theirs, "lstmlab": ours,
           "test_ratio": ours["test_bpc"] / theirs["test_bpc"],
           "epoch_time_ratio": float(np.median(ours["epoch_s"]) / np.median(theirs["epoch_s"]))}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=2)
    res["figure"] = plot(res, os.path.join(a.out, "curves.png"))
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"test bpc: lstmlab {ours['test_bpc']:.4f}, torch {theirs['test_bpc']:.4f} "
              f"(ratio {res['test_ratio']:.4f}); median s/epoch: lstmlab "
              f"{np.median(ours['epoch_s']):.1f}, torch {np.median(theirs['epoch_s']):.1f} "
              f"(ratio {res['epoch_time_ratio']:.2f}); {res['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
