"""Training-iteration benchmark of the PyTorch front end: lstmlab.torch.LSTM against torch.nn.LSTM
and against a peephole LSTM written as a per-step Python loop.

One training iteration, for every path: ``opt.zero_grad(); y, _ = rnn(x); loss = MSE(Linear(y),
target); loss.backward(); opt.step()`` with Adam, x of shape (T, B, D) time-major (not requiring
grad), in one process, timed round-robin (benchmarks/bench_train_step.py's ``_time_round_robin``)
so that load from elsewhere hits every path alike. Paths:

* ``torch.nn.LSTM``: PyTorch's fused LSTM (the ``lstm`` cell: it has no peepholes);
* ``lstmlab.torch (compiled)``: ``lstmlab.torch.LSTM(variant=...)``, the recurrence in lstmlab's
  compiled kernels through an autograd.Function, the input projection a torch product;
* ``lstmlab.torch (pure torch)``: the same module with ``backend="torch"``;
* ``per-step loop``: a peephole LSTM as tutorials write it (the approach of
  ``../shared/seeds/000_*.txt``): four ``nn.Linear`` gates on ``[x_t, h_{t-1}]``, peephole
  vectors, a Python loop over the steps, autograd through every step.

Workloads: W1 (T=150, B=32, D=1, H=8; Gers 2002) and W2 (T=100, B=64, D=64, H=256). Reported:
the median, min and max milliseconds per iteration over 50 timed iterations on W1 and 25 on W2
(``--repeats``; with 7 on W2 the ratio to torch moved by +-0.1 from run to run), and the ratio of
each path's median to torch.nn.LSTM float32's (>1: faster than torch).

    python benchmarks/bench_torch_module.py                     # W1 and W2, float32
    python benchmarks/bench_torch_module.py --workloads W1 --repeats 50 --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train_step import WORKLOADS, _time_round_robin, blas_threads, torch_iteration  # noqa: E402

import lstmlab.torch as lt  # noqa: E402


class StepwisePeepholeLSTM(nn.Module):
    """A peephole LSTM one step at a time in Python (the baseline): i, f see c_{t-1}, o sees c_t."""

    def __init__(self, D, H):
        super().__init__()
        self.H = H
        self.gate = nn.ModuleList(nn.Linear(D + H, H) for _ in "ifgo")
        self.peep = nn.Parameter(torch.randn(3, H) * 0.1)

    def forward(self, x):
        T, B, _ = x.shape
        h = c = x.new_zeros(B, self.H)
        ys = []
        for t in range(T):
            z = torch.cat([x[t], h], dim=1)
            i = torch.sigmoid(self.gate[0](z) + self.peep[0] * c)
            f = torch.sigmoid(self.gate[1](z) + self.peep[1] * c)
            c = f * c + i * torch.tanh(self.gate[2](z))
            o = torch.sigmoid(self.gate[3](z) + self.peep[2] * c)
            h = o * torch.tanh(c)
            ys.append(h)
        return torch.stack(ys), None


def paths(w, variant):
    """(name, variant, module) of every path timed on workload ``w``."""
    torch.manual_seed(0)
    return [
        ("torch.nn.LSTM", "lstm", nn.LSTM(w.D, w.H)),
        ("lstmlab.torch (compiled)", variant, lt.LSTM(w.D, w.H, variant=variant, backend="compiled")),
        ("lstmlab.torch (compiled)", "lstm", lt.LSTM(w.D, w.H, backend="compiled")),
        ("lstmlab.torch (pure torch)", variant, lt.LSTM(w.D, w.H, variant=variant, backend="torch")),
        ("per-step loop", "peephole", StepwisePeepholeLSTM(w.D, w.H)),
    ]


def run(workloads=("W1", "W2"), repeats=None, dtype="float32", variant="peephole", log=print):
    threads = blas_threads()
    torch.set_num_threads(threads)
    rows = []
    for name in workloads:
        w = WORKLOADS[name]
        n = repeats or {"W1": 50, "W2": 25}.get(name, w.repeats)
        ps = paths(w, variant)
        steps = [torch_iteration(m, w, dtype) for _, _, m in ps]
        log(f"{name}: timing {len(steps)} paths x {n} iterations ...")
        times = _time_round_robin(steps, n, block=w.block if name == "W1" else 1, budget_s=240)
        base = statistics.median(times[0])
        for (path, v, _), ts in zip(ps, times):
            ms = [1e3 * t for t in ts]
            rows.append({"workload": name, "shape": f"T={w.T} B={w.B} D={w.D} H={w.H}",
                         "path": path, "variant": v, "dtype": dtype,
                         "median_ms": statistics.median(ms), "min_ms": min(ms),
                         "max_ms": max(ms), "repeats": len(ms), "threads": threads,
                         "vs_torch": base / statistics.median(ts)})
    return rows


def table(rows) -> str:
    out = ["| workload | path | cell | dtype | median ms | min-max | n | vs torch.nn.LSTM |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['workload']} ({r['shape']}) | {r['path']} | {r['variant']} | "
                   f"{r['dtype']} | {r['median_ms']:.3f} | {r['min_ms']:.2f}-{r['max_ms']:.2f} | "
                   f"{r['repeats']} | {r['vs_torch']:.2f}x |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="W1,W2", help="comma-separated among W1, W2, W3")
    p.add_argument("--repeats", type=int, default=None, help="timed iterations per path")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--variant", default="peephole", help="lstmlab's cell (default peephole)")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args(argv)
    names = args.workloads.split(",")
    bad = [n for n in names if n not in WORKLOADS]
    if bad:
        p.error(f"--workloads: unknown {', '.join(bad)}; expected among {', '.join(WORKLOADS)}")
    if args.repeats is not None and args.repeats < 1:
        p.error("--repeats: expected a positive integer")
    rows = run(names, args.repeats, args.dtype, args.variant,
               log=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
