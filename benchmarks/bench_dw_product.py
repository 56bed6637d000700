"""Time the char-LM backward's largest product alone: ``dW_hh = sum_t da_t^T h_{t-1}``.

With A (T*B, 4H) the gate errors of all steps and B (T*B, H) the hidden states, the product is
``A^T B``. It can be written ``A.T @ B`` or ``(B.T @ A).T`` (same flops); ``lstmlab.kernels``
uses the second (``_at_b``). This script times both with NumPy's BLAS, and ``A.T @ B`` with
torch's, at 1 and at 2 threads, on the bench_charlm workloads' shapes (batch 32, 100 steps),
float32, random data; medians of ``--repeats`` calls. Each row runs in a fresh process,
because NumPy's OpenBLAS was measured to keep a slow state for ``A.T @ B`` at C1's shape when
that was the first large product of the process, and a fast one after any other.

    python benchmarks/bench_dw_product.py                 # C1: (512 x 3200) (3200 x 128)
    python benchmarks/bench_dw_product.py --workloads C1,C2 --repeats 20
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_charlm import WORKLOADS  # noqa: E402

BATCH, STEPS = 32, 100
#: The timed expressions, by name: each is run alone in a fresh process.
FORMS = {"numpy A.T @ B": "A.T @ B", "numpy (B.T @ A).T": "np.ascontiguousarray((B.T @ A).T)",
         "torch A.T @ B": "tA.T @ tB"}

_CHILD = r"""
import statistics, sys, time
import numpy as np
H, threads, repeats, expr = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from lstmlab._blas import set_blas_threads
set_blas_threads(threads)
rng = np.random.default_rng(0)
A = rng.standard_normal((%d, 4 * H)).astype(np.float32)          # (T*B, 4H)
B = rng.standard_normal((%d, H)).astype(np.float32)              # (T*B, H)
if expr.startswith("tA"):
    import torch
    torch.set_num_threads(threads)
    tA, tB = torch.from_numpy(A), torch.from_numpy(B)
f = eval("lambda: " + expr)
f()                                                   # warm-up: thread pools, packing buffers
ts = []
for _ in range(repeats):
    t0 = time.perf_counter()
    f()
    ts.append(time.perf_counter() - t0)
print(statistics.median(ts) * 1e3)
""" % (STEPS * BATCH, STEPS * BATCH)


def _median_ms(H: int, threads: int, repeats: int, expr: str) -> float:
    r = subprocess.run([sys.executable, "-c", _CHILD, str(H), str(threads), str(repeats), expr],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"timing {expr!r} failed:\n{r.stderr}")
    return float(r.stdout.split()[-1])


def run(workloads=("C1",), repeats: int = 10) -> list[dict]:
    rows = []
    for name in workloads:
        H = WORKLOADS[name][1]
        for threads in (1, 2):
            row = {"workload": name, "shape": f"({4 * H} x {STEPS * BATCH}) ({STEPS * BATCH} x {H})",
                   "threads": threads, "repeats": repeats}
            row.update({form: _median_ms(H, threads, repeats, expr) for form, expr in FORMS.items()})
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="C1", help="comma-separated among C1, C2 (default C1)")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per row (default 10)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON to FILE")
    a = p.parse_args(argv)
    names = [w for w in a.workloads.split(",") if w]
    if not names or any(w not in WORKLOADS for w in names) or a.repeats < 1:
        p.exit(2, f"{p.prog}: error: expected --workloads among {', '.join(WORKLOADS)} and "
                  "--repeats >= 1\n")
    rows = run(names, a.repeats)
    print("| workload | product | threads | " + " | ".join(f"{f} ms" for f in FORMS) + " |")
    print("|---|---|---|" + "---|" * len(FORMS))
    for r in rows:
        print(f"| {r['workload']} | {r['shape']} | {r['threads']} | "
              + " | ".join(f"{r[f]:.1f}" for f in FORMS) + " |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
