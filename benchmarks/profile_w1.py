"""Where a W1 training iteration (Gers 2002: T=150, B=32, input 1, H=8) spends its time.

Times each piece of the compiled path's iteration on its own (median of ``--repeats`` calls after
a warm-up): the whole iteration, the layer's forward and backward and, inside them, the LSTM
kernels and the input projection, the readout with the loss, and Adam. One thread for the kernels
unless ``--threads`` says otherwise.

    python benchmarks/profile_w1.py --dtype float64
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _median_ms(f, repeats: int) -> float:
    for _ in range(5):
        f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def profile(dtype: str = "float64", variant: str = "peephole", repeats: int = 300,
            threads: int = 1) -> dict[str, float]:
    """Median milliseconds of each piece of one W1 training iteration on the compiled path."""
    import lstmlab as ll
    from lstmlab import kernels

    kernels.set_num_threads(threads)
    T, B, D, H = 150, 32, 1, 8
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    target = rng.standard_normal((T, B, 1)).astype(dtype)
    lstm = ll.LSTM(D, H, variant=variant, dtype=dtype, seed=0, backend="compiled")
    readout = ll.Dense(H, 1, dtype=dtype, seed=1)
    opt = ll.Adam({**{"lstm." + k: v for k, v in lstm.params.items()},
                   **{"readout." + k: v for k, v in readout.params.items()}}, lr=1e-4)
    st: dict = {}

    def forward():
        st["y"], _, st["cache"] = lstm.forward(x)

    def readout_and_loss():
        pred, cache = readout.forward(st["y"])
        _, dpred = ll.mse_loss(pred, target)
        st["dy"], st["g_out"] = readout.backward(dpred, cache)

    def backward():
        _, _, st["g_lstm"] = lstm.backward(st["dy"], st["cache"], input_grad=False)

    def adam():
        opt.step({**{"lstm." + k: v for k, v in st["g_lstm"].items()},
                  **{"readout." + k: v for k, v in st["g_out"].items()}})

    def iteration():
        forward()
        readout_and_loss()
        backward()
        adam()

    out = {"whole iteration": _median_ms(iteration, repeats),
           "layer forward": _median_ms(forward, repeats),
           "readout + loss": _median_ms(readout_and_loss, repeats),
           "layer backward": _median_ms(backward, repeats),
           "Adam": _median_ms(adam, repeats)}
    p = lstm._direction_params(0, 0)
    bias = p["bias_ih"] + p["bias_hh"]
    xp = kernels.input_projection(x, p["weight_ih"], bias)
    h0 = np.zeros((B, H), dtype=dtype)
    W = (p["weight_hh"], p.get("peep"), p.get("weight_gg"))
    fwd = kernels.lstm_loop_forward(lstm.spec, xp, *W, h0, h0, None)
    dxp = kernels.lstm_loop_backward(lstm.spec, *fwd, *W, None, st["dy"], h0, h0)[0]
    out["kernel lstm_loop_forward"] = _median_ms(
        lambda: kernels.lstm_loop_forward(lstm.spec, xp, *W, h0, h0, None), repeats)
    out["kernel lstm_loop_backward"] = _median_ms(
        lambda: kernels.lstm_loop_backward(lstm.spec, *fwd, *W, None, st["dy"], h0, h0), repeats)
    out["input_projection"] = _median_ms(
        lambda: kernels.input_projection(x, p["weight_ih"], bias), repeats)
    out["input_projection_backward"] = _median_ms(
        lambda: kernels.input_projection_backward(dxp, x, p["weight_ih"], False), repeats)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--variant", default="peephole")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    for name, ms in profile(a.dtype, a.variant, a.repeats, a.threads).items():
        print(f"{name:28s} {ms:7.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
