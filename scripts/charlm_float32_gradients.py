"""Do lstmlab and torch.nn.LSTM train the char LM alike? Two checks behind README.md's
side-by-side (needs torch).

1. ``--updates N``: both train the recipe (``charlm_config``) for N updates in float64 from the
   same initial weights on the same batches; the largest difference of each parameter after them.
   Equal up to rounding (about 1e-13) means the same algorithm: loss, backward, clip, Adam,
   schedule and the carried state.
2. One batch's gradient of the 2 x 256 model at its initial weights, and at the batch of update
   100, in float32 for both, against the float64 gradient: ``|g32 - g64| / |g64|`` over all
   parameters (relative Frobenius norm) and per parameter: how closely each rounds.

    python scripts/charlm_float32_gradients.py                   # 20 updates at 2 x 64, then 2.
    python scripts/charlm_float32_gradients.py --updates 263 --layers 1
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from char_language_model import TorchCharLM, load_lstmlab_weights, torch_update  # noqa: E402

from lstmlab.core.losses import LOSSES  # noqa: E402
from lstmlab.experiments.charlm import charlm_config  # noqa: E402
from lstmlab.train.loop import build_model, load_run, train  # noqa: E402


def torch_model(params, V, H, L, dtype):
    tm = TorchCharLM(V, H, L).to(dtype)
    load_lstmlab_weights(tm, params)
    return tm


def float64_weight_differences(n, layers, hidden):
    """Max |difference| of each parameter after n float64 updates of both."""
    cfg = charlm_config(None, "lstm", layers, hidden, iters=n, eval_every=n, checkpoint_every=n,
                        dtype="float64", dropout=0.0)
    task = cfg.make_task()
    init = {k: v.copy() for k, v in build_model(cfg, task).params.items()}
    with tempfile.TemporaryDirectory() as d:
        train(cfg, d, quiet=True)
        ours = load_run(d)["model"].params
    tm = torch_model(init, task.input_size, hidden, layers, torch.float64)
    opt = torch.optim.Adam(tm.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
    state = None
    for it in range(n):
        state = torch_update(tm, opt, cfg, task, it, state)
    theirs = tm.state_dict()
    return {k: float(np.abs(np.asarray(ours[k], np.float64) - theirs[k].numpy()).max()) for k in ours}


def gradients(params, batch, layers, hidden, V, impl, dtype):
    """d loss / d params of one batch from a zero state, as float64 arrays."""
    if impl == "lstmlab":
        cfg = charlm_config(None, "lstm", layers, hidden, dtype=dtype, dropout=0.0)
        m = build_model(cfg, cfg.make_task())
        m.load_params({k: np.asarray(v, dtype=dtype) for k, v in params.items()})
        pred, _, cache = m.forward(batch.x, None, training=True)
        _, dpred = LOSSES["softmax_ce"](pred, batch.y, batch.mask)
        return {k: np.asarray(g, np.float64) for k, g in m.backward(dpred, cache).items()}
    tm = torch_model(params, V, hidden, layers, getattr(torch, dtype))
    logits, _ = tm(torch.from_numpy(batch.x))
    nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(batch.y).reshape(-1)).backward()
    return {k: p.grad.double().numpy() for k, p in tm.named_parameters()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=20, help="float64 updates of check 1 (default 20)")
    ap.add_argument("--layers", type=int, default=2, help="layers of check 1 (default 2)")
    ap.add_argument("--hidden", type=int, default=64, help="units of check 1 (default 64)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    diff = float64_weight_differences(a.updates, a.layers, a.hidden)
    print(f"1. float64, {a.layers} x {a.hidden}, {a.updates} updates: largest parameter difference "
          f"{max(diff.values()):.1e} ({max(diff, key=diff.get)})")
    cfg = charlm_config(None, "lstm", 2, 256, dropout=0.0)
    task = cfg.make_task()
    params = build_model(cfg, task).params
    for it in (0, 100):
        b = task.stream_batch(cfg.batch, it)
        ref = gradients(params, b, 2, 256, task.input_size, "lstmlab", "float64")
        got = {impl: gradients(params, b, 2, 256, task.input_size, impl, "float32")
               for impl in ("lstmlab", "torch")}

        def rel(g, keys):
            return np.sqrt(sum(((g[k] - ref[k]) ** 2).sum() for k in keys)
                           / sum((ref[k] ** 2).sum() for k in keys))
        print(f"2. 2 x 256, batch of update {it}, initial weights, float32 against float64: "
              f"lstmlab {rel(got['lstmlab'], ref):.1e}, torch {rel(got['torch'], ref):.1e}")
        for k in ref:
            print(f"     {k:18s} lstmlab {rel(got['lstmlab'], [k]):.1e}  torch {rel(got['torch'], [k]):.1e}")


if __name__ == "__main__":
    main()
