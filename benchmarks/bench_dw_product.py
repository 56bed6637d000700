"""Time the char-LM backward's largest product alone: ``dW_hh = sum_t da_t^T h_{t-1}``.

In ``lstmlab.kernels`` (the large path's ``lstm_loop_backward``) this is one product
``A^T B`` with A (T*B, 4H) the gate errors of all steps and B (T*B, H) the hidden states, A^T
a transposed view. This script times it with NumPy's BLAS and with torch's, at 1 and at 2
threads, on the bench_charlm workloads' shapes (batch 32, 100 steps), float32, random data;
medians of ``--repeats`` calls. It isolates why ``bench_charlm.py`` at one thread reads
differently on different processors.

    python benchmarks/bench_dw_product.py                 # C1: (512 x 3200) (3200 x 128)
    python benchmarks/bench_dw_product.py --workloads C1,C2 --repeats 20
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_charlm import WORKLOADS  # noqa: E402

BATCH, STEPS = 32, 100


def _median_ms(f, repeats: int) -> float:
    f()                                                   # warm-up: thread pools, packing buffers
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


def run(workloads=("C1",), repeats: int = 10) -> list[dict]:
    import torch
    from lstmlab._blas import set_blas_threads
    rng = np.random.default_rng(0)
    rows = []
    for name in workloads:
        H = WORKLOADS[name][1]
        A = rng.standard_normal((STEPS * BATCH, 4 * H)).astype(np.float32)   # (T*B, 4H)
        B = rng.standard_normal((STEPS * BATCH, H)).astype(np.float32)       # (T*B, H)
        tA, tB = torch.from_numpy(A), torch.from_numpy(B)
        for threads in (1, 2):
            set_blas_threads(threads)
            torch.set_num_threads(threads)
            rows.append({"workload": name, "shape": f"({4 * H} x {STEPS * BATCH}) ({STEPS * BATCH} x {H})",
                         "threads": threads, "repeats": repeats,
                         "numpy_ms": _median_ms(lambda: A.T @ B, repeats),
                         "torch_ms": _median_ms(lambda: tA.T @ tB, repeats)})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="C1", help="comma-separated among C1, C2 (default C1)")
    p.add_argument("--repeats", type=int, default=10, help="timed calls per row (default 10)")
    a = p.parse_args(argv)
    names = [w for w in a.workloads.split(",") if w]
    if not names or any(w not in WORKLOADS for w in names) or a.repeats < 1:
        p.exit(2, f"{p.prog}: error: expected --workloads among {', '.join(WORKLOADS)} and "
                  "--repeats >= 1\n")
    print("| workload | product | threads | NumPy (OpenBLAS) ms | torch ms |")
    print("|---|---|---|---|---|")
    for r in run(names, a.repeats):
        print(f"| {r['workload']} | {r['shape']} | {r['threads']} | {r['numpy_ms']:.1f} | "
              f"{r['torch_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
