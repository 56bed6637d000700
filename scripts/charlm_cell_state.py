"""Step the char-LM recipe and watch the carried cell state, the subnormal float values and the
step time (the peephole runaway of README.md's character-LM section).

    python scripts/charlm_cell_state.py --variant peephole --layers 1 --hidden 128 --iters 130
    python scripts/charlm_cell_state.py --variant peephole --cell-clip none      # unclipped

Every ``--every`` iterations one line: iteration, step seconds (median since the last line),
training loss, max |c| of the carried state, and the number of subnormal values (0 < |x| < the
smallest normal number of the dtype) in the carried state, the gates of the last chunk, the
parameters and Adam's two moments; then the range of each peephole vector.
"""
import argparse
import time

import numpy as np

from lstmlab.experiments.charlm import charlm_config
from lstmlab.train import loop


def subnormal(a) -> int:
    a = np.abs(np.asarray(a))
    return int(((a > 0) & (a < np.finfo(a.dtype).tiny)).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="peephole")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--iters", type=int, default=130)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--cell-clip", default=None, help="a number, or none; default: the recipe's")
    ap.add_argument("--peephole-init", default="small", choices=("small", "zero"))
    ap.add_argument("--data", help="a UTF-8 text file (default: the built-in corpus)")
    ap.add_argument("--epochs", type=int, help="epochs of the schedule (default: the recipe's)")
    a = ap.parse_args()
    over = {} if a.cell_clip is None else {"cell_clip": None if a.cell_clip == "none" else float(a.cell_clip)}
    if a.epochs is not None:
        over["epochs"] = a.epochs
    cfg = charlm_config(a.data, variant=a.variant, layers=a.layers, hidden=a.hidden, dtype=a.dtype,
                        peephole_init=a.peephole_init, **over)
    task = cfg.make_task()
    task.chunks_per_epoch(cfg.batch)
    model = loop.build_model(cfg, task)
    opt = loop._optimizer(cfg, model.params)
    loss_fn = loop.LOSSES[task.loss]
    forward, last = model.forward, {}

    def keep_cache(*args, **kw):
        out = forward(*args, **kw)
        last["cache"] = out[2]
        return out

    model.forward = keep_cache
    print(f"{a.variant} {a.layers} x {a.hidden} {a.dtype} cell_clip {cfg.cell_clip}")
    state, times = None, []
    for it in range(a.iters):
        opt.lr = cfg.lr_at(it)
        batch = task.stream_batch(cfg.batch, it)
        t = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            loss, _, state = loop._train_step(model, loss_fn, opt, cfg, batch, it,
                                              None if batch.info["reset"] else state)
        times.append(time.perf_counter() - t)
        if (it + 1) % a.every and it:
            continue
        parts = state if isinstance(state, tuple) else (state,)
        rc = last["cache"][1]
        gates = sum(subnormal(v) for layer in range(a.layers)
                    for v in rc.internals(layer, 0).values())
        line = (f"iter {it + 1:5d}  step {np.median(times[-a.every:]):.3f} s  loss {loss:.3f}  "
                f"max|c| {np.abs(parts[-1]).max():9.1f}  subnormal: state {sum(map(subnormal, parts))} "
                f"gates {gates} params {sum(map(subnormal, model.params.values()))} "
                f"adam m {sum(map(subnormal, opt.m.values()))} v {sum(map(subnormal, opt.v.values()))}")
        peep = {k.split(".")[-1]: (float(v.min()), float(v.max())) for k, v in model.params.items()
                if ".weight_c" in k}
        print(line + "".join(f"  {k} [{lo:.2f}, {hi:.2f}]" for k, (lo, hi) in peep.items()), flush=True)


if __name__ == "__main__":
    main()
