"""Time one training iteration of the character-level language model, lstmlab against nn.LSTM.

lstmlab's loop step (``lstmlab.train.loop._train_step``: token-id input, LSTM stack, softmax readout, backward,
clip, Adam) against the same model in ``torch.nn.LSTM``, float32, in one process.

Workloads (batch 32 streams, chunks of 100 characters, the default corpus's 109 characters):
C1 one layer of 128 units, C2 two layers of 256. The two paths are timed in turn
(``bench_train_step._time_round_robin``), so load from elsewhere drifts over both alike; the
table gives medians and the ratio lstmlab / torch.

    python benchmarks/bench_charlm.py                 # both workloads, 1 thread
    python benchmarks/bench_charlm.py --threads 2 --repeats 40
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import _time_round_robin  # noqa: E402

WORKLOADS = {"C1": (1, 128), "C2": (2, 256)}


def _config(layers, hidden):
    from lstmlab.experiments.charlm import charlm_config
    return charlm_config(None, "lstm", layers, hidden, epochs=1, dropout=0.0)   # as torch runs it


def lstmlab_step(cfg):
    from lstmlab.core.losses import LOSSES
    from lstmlab.train.loop import _optimizer, _train_step, build_model

    task = cfg.make_task()
    model = build_model(cfg, task)
    opt = _optimizer(cfg, model.params)
    state = {"s": None, "it": 0}

    def step():
        b = task.stream_batch(cfg.batch, state["it"])
        _, _, state["s"] = _train_step(model, LOSSES["softmax_ce"], opt, cfg, b, state["it"],
                                       None if b.info["reset"] else state["s"])
        state["it"] += 1
    return step


def torch_step(cfg):
    import torch
    from torch import nn
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
    from char_language_model import TorchCharLM

    task = cfg.make_task()
    torch.manual_seed(0)
    tm = TorchCharLM(task.input_size, cfg.hidden, cfg.layers)
    opt = torch.optim.Adam(tm.parameters(), lr=cfg.lr)
    loss_fn = nn.CrossEntropyLoss()
    st = {"s": None, "it": 0}

    def step():
        b = task.stream_batch(cfg.batch, st["it"])
        x, y = torch.from_numpy(b.x), torch.from_numpy(b.y)
        logits, s = tm(x, None if b.info["reset"] else st["s"])
        st["s"] = tuple(t.detach() for t in s)
        loss = loss_fn(logits.reshape(-1, task.output_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(tm.parameters(), cfg.clip)
        opt.step()
        st["it"] += 1
    return step


def run(workloads=("C1", "C2"), repeats=30, threads=1) -> list[dict]:
    """The rows of the table; torch's and NumPy's BLAS thread counts are ``threads`` while it
    runs and what they were afterwards."""
    import torch
    from lstmlab._blas import blas_threads, set_blas_threads
    before = torch.get_num_threads(), blas_threads()
    torch.set_num_threads(threads)
    set_blas_threads(threads)
    rows = []
    try:
        for name in workloads:
            cfg = _config(*WORKLOADS[name])
            times = _time_round_robin([lstmlab_step(cfg), torch_step(cfg)], repeats, warmup=3)
            ours, theirs = (statistics.median(t) * 1e3 for t in times)
            rows.append({"workload": name, "layers": cfg.layers, "hidden": cfg.hidden,
                         "batch": cfg.batch, "seq_len": cfg.task_args["seq_len"],
                         "threads": threads, "repeats": len(times[0]), "lstmlab_ms": ours,
                         "torch_ms": theirs, "ratio": ours / theirs})
    finally:
        torch.set_num_threads(before[0])
        if before[1] is not None:
            set_blas_threads(before[1])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="C1,C2",
                   help="comma-separated: C1 (1 x 128 units), C2 (2 x 256) (default both)")
    p.add_argument("--repeats", type=int, default=30, help="timed iterations per path (default 30)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for torch and the BLAS (default 1)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    a = p.parse_args(argv)
    names = [w for w in a.workloads.split(",") if w]
    bad = [w for w in names if w not in WORKLOADS]
    if bad or a.repeats < 1 or a.threads < 1:
        p.exit(2, f"{p.prog}: error: expected workloads among {', '.join(WORKLOADS)}, "
                  "--repeats and --threads >= 1\n")
    rows = run(names, a.repeats, a.threads)
    print("| workload | model | lstmlab ms | torch.nn.LSTM ms | ratio | threads | repeats |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['layers']} x {r['hidden']}, B {r['batch']}, T {r['seq_len']} | "
              f"{r['lstmlab_ms']:.1f} | {r['torch_ms']:.1f} | {r['ratio']:.2f} | {r['threads']} | "
              f"{r['repeats']} |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
