"""The training loop, readable top to bottom, with checkpoints and exact resume.

A run folder holds::

    config.json              the TrainConfig (rebuilds the run)
    metrics.jsonl            one JSON record per evaluation: iter, lr, train_loss, grad_norm,
                             test metrics of the task (mse, solve_rate, ...), wall_s
    checkpoint.safetensors   params + Adam state + iteration (atomic; the last good one), and
                             for stream tasks the recurrent state carried into the next chunk
    data.json                for tasks that read a file (charlm): vocabulary, splits, hashes
    weights.safetensors      final params with the model config
    best.safetensors         with ``patience``: the params of the best evaluation so far
    summary.json             final metrics, status, wall time
    snapshots/ITER.safetensors   with ``snapshot_every``: the params at iteration 0 and every
                             N iterations (for lstmlab plot --gif)

Resume is exact because everything a step uses is either in the checkpoint (params, Adam
moments and step count) or a pure function of the config and the iteration number (the
training batch ``train_rng(seed, i)``, the learning rate ``cfg.lr_at(i)``).

Stream tasks (``task.stream``, the character LM) read contiguous text: batch ``i`` is
``task.stream_batch(B, i)``, the next chunk of B parallel streams, and the recurrent state
carries over from one iteration to the next (truncated BPTT across iterations; zeros where
``batch.info["reset"]``, the start of an epoch). The carried state is in the checkpoint too.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace

import numpy as np

from ..core.io import atomic_write_bytes, atomic_write_json, load_arrays, save_arrays
from ..core.losses import LOSSES
from ..core.optim import SGD, Adam, clip_global_norm
from .config import TrainConfig, dropout_rng, noise_rng, test_rng, train_rng
from .model import Seq2SeqModel, SeqModel
from .progress import Progress, show_progress

__all__ = ["train", "TrainingDiverged", "evaluate", "load_run", "read_metrics", "build_model", "CHECKPOINT",
           "WEIGHTS", "BEST", "SNAPSHOTS"]

CHECKPOINT = "checkpoint.safetensors"
DATA = "data.json"
WEIGHTS = "weights.safetensors"
BEST = "best.safetensors"
SNAPSHOTS = "snapshots"


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the weights become NaN or infinite."""


def build_model(cfg: TrainConfig, task) -> SeqModel | Seq2SeqModel:
    """The model ``cfg`` describes, sized for ``task`` (its input and output sizes, token input);
    an encoder-decoder for the tasks of ``kind`` ``seq2seq``."""
    if getattr(task, "kind", None) == "seq2seq":
        return Seq2SeqModel(cfg, task)
    return SeqModel(cfg, task.input_size, task.output_size, tokens=task.tokens)


def _optimizer(cfg: TrainConfig, params):
    if cfg.optimizer == "sgd":
        return SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    return Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def _chunks(T: int, tbptt: int) -> list[tuple[int, int]]:
    """Step ranges of the truncated-BPTT chunks of a T-step batch (one chunk without tbptt)."""
    if not tbptt or tbptt >= T:
        return [(0, T)]
    return [(s, min(s + tbptt, T)) for s in range(0, T, tbptt)]


def _train_step(model, loss_fn, opt, cfg, batch, it, state=None, prefix=None):
    """One iteration on ``batch`` from ``state`` (None: zeros): forward, loss, backward, clip,
    update, once per chunk of ``cfg.tbptt`` steps with the state carried between chunks (an
    encoder-decoder: once, on the whole batch, its targets the decoder's inputs); with
    ``prefix`` (the task's ``training_prefix``, ``cfg.first_error``) the loss counts only the
    steps it keeps. Returns (mean loss, mean gradient norm, final state) or raises _NonFinite."""
    if getattr(model, "decoder", False):     # encoder-decoder: the targets feed the decoder
        pred, cache = model.forward(batch.x, batch.y, rng=dropout_rng(cfg.seed, it))  # (T, B, V)
        loss, dpred = loss_fn(pred, batch.y, batch.mask)
        return loss, _update(model, opt, cfg, loss, dpred, cache), None
    rng = dropout_rng(cfg.seed, it) if cfg.dropout > 0 else None
    if cfg.input_noise > 0 and not getattr(model, "tokens", False):
        x = batch.x
        batch = replace(batch, x=x + cfg.input_noise * noise_rng(cfg.seed, it).standard_normal(x.shape))
    losses, norms = [], []
    state_in = state                             # first_error (no tbptt): the one chunk's start
    for s, e in _chunks(batch.T, cfg.tbptt):
        x, y, mask = batch.x[s:e], batch.y[s:e], batch.mask[s:e]
        pred, state_n, cache = model.forward(x, state, training=True, rng=rng)   # (t, B, K)
        state = state_n                          # fresh arrays: the next chunk starts from them
        if prefix is not None:                   # the stream ends at its first wrong output
            with np.errstate(invalid="ignore"):
                mask = mask & prefix(pred, replace(batch, x=x, y=y, mask=mask))     # (t, B)
            L = int(np.flatnonzero(mask.any(axis=1))[-1]) + 1 if mask.any() else 0
            if 0 < L < len(mask):                # again on the prefix alone: the steps after
                x, y, mask = x[:L], y[:L], mask[:L]       # a failure may overflow (linear cells)
                pred, _, cache = model.forward(x, state_in, training=True, rng=rng)
        if not mask.any():                       # nothing to learn here: carry the state on
            continue
        loss, dpred = loss_fn(pred, y, mask)
        norms.append(_update(model, opt, cfg, loss, dpred, cache))
        losses.append(loss)
    if not losses:
        raise ValueError("task: a training batch has no step with a target (its mask is all False)")
    return float(np.mean(losses)), float(np.mean(norms)), state


def _update(model, opt, cfg, loss, dpred, cache) -> float:
    """Backward from d loss / d pred, clip, one optimiser step; the gradient norm (before the
    clip). Raises _NonFinite for a NaN or infinite loss or gradient."""
    if not (math.isfinite(loss) and np.isfinite(dpred).all()):
        raise _NonFinite(loss)
    grads = model.backward(dpred, cache)
    gnorm = clip_global_norm(grads, cfg.clip) if cfg.clip > 0 else \
        float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
    if not math.isfinite(gnorm):
        raise _NonFinite(gnorm)
    opt.step(grads)
    return gnorm


class _NonFinite(Exception):
    """A loss or gradient norm that is NaN or infinite (the value is the argument)."""


def evaluate(model: SeqModel, task, batch) -> dict:
    """The task's metrics (``mse``, ``solve_rate``, ...) of the model on a held-out batch (long
    streams ``task.eval_steps`` steps at a time, the state carried: the same numbers)."""
    with np.errstate(over="ignore", invalid="ignore"):
        pred = model.predict(batch.x, steps=getattr(task, "eval_steps", None))
        return {k: float(v) for k, v in task.evaluate(pred, batch).items()}


def _state_arrays(state) -> dict:
    """The carried recurrent state as named arrays: LSTM (h, c) or one array (GRU, RNN)."""
    if state is None:
        return {}
    parts = state if isinstance(state, tuple) else (state,)
    return {f"state/{i}": np.asarray(p) for i, p in enumerate(parts)}


def _save_checkpoint(path, model, opt, cfg, it, wall_s, running=(0.0, 0.0, 0), state=None) -> None:
    arrays = {f"param/{k}": v for k, v in model.params.items()}
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in opt.state_dict().items()})
    arrays.update(_state_arrays(state))
    save_arrays(path, arrays, {"iter": it, "wall_s": wall_s, "running": list(running),
                               "train_config": cfg.to_dict()})


def _load_checkpoint(path, model, opt, cfg) -> tuple[int, float, tuple, object]:
    arrays, meta = load_arrays(path)
    saved = dict(meta.get("train_config", {}))
    mine = cfg.to_dict()
    diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k) and k != "iters")
    if diff:
        raise ValueError(f"resume: the checkpoint was made with a different config ({', '.join(diff)} differ)")
    model.load_params({k[6:]: v for k, v in arrays.items() if k.startswith("param/")})
    opt.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("optim/")})
    running = tuple(meta.get("running", (0.0, 0.0, 0)))
    parts = [arrays[f"state/{i}"] for i in range(2) if f"state/{i}" in arrays]
    state = None if not parts else (tuple(parts) if len(parts) == 2 else parts[0])
    return int(meta["iter"]), float(meta.get("wall_s", 0.0)), running, state


def _reached(cfg: TrainConfig, task, record: dict | None) -> bool:
    """Whether an evaluation record meets the config's ``stop_at`` on the task's headline."""
    if cfg.stop_at is None or not record or task.headline not in record:
        return False
    v = record[task.headline]
    return v >= cfg.stop_at if task.maximize else v <= cfg.stop_at


def _better(task, a, b) -> bool:
    """Whether headline value ``a`` is better than ``b`` (None: no value yet)."""
    return b is None or (a > b if task.maximize else a < b)


def _best_so_far(task, records) -> tuple[dict | None, int]:
    """The best record of ``records`` (the first of equals) and the number of evaluations
    after it (``patience`` counts them)."""
    best, since = None, 0
    for r in records:
        if r.get(task.headline) is None:
            continue
        if best is None or _better(task, r[task.headline], best[task.headline]):
            best, since = r, 0
        else:
            since += 1
    return best, since


def read_metrics(path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file ([] when there is none); ValueError (one line)
    for a line that is not JSON."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise ValueError(f"{path}: line {n} is not JSON") from None
    return out


def _last_record(path) -> dict | None:
    records = read_metrics(path)
    return records[-1] if records else None


def _truncate_metrics(path, last_iter: int) -> None:
    """Keep the records up to ``last_iter`` (those after it will be written again)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and json.loads(line)["iter"] <= last_iter:
                keep.append(line + "\n")
    atomic_write_bytes(path, [s.encode() for s in keep])


def train(cfg: TrainConfig, out_dir=None, *, resume: bool = False, quiet: bool = False,
          stop_after: int | None = None, label: str | None = None, snapshot_every: int = 0) -> dict:
    """Train one model as ``cfg`` says; returns the summary (also written to summary.json).

    Parameters
    ----------
    out_dir : run folder (created); None trains without writing anything.
    resume : continue from ``out_dir/checkpoint.safetensors`` (same config required, ``iters``
        may grow); the result is bit-identical to an uninterrupted run.
    quiet : no progress bar (there is none anyway when stderr is not a terminal).
    stop_after : stop, without saving, once this many iterations are done (simulates a kill).
    snapshot_every : keep the params at iteration 0 and every this many iterations in
        ``out_dir/snapshots/`` (the frames of ``lstmlab plot --gif``); 0 keeps none. Not part of
        the config: snapshots change nothing about the run.

    Raises
    ------
    TrainingDiverged : the loss or weights became NaN/inf; the last good checkpoint is kept.
    """
    cfg.validate()
    task, test_task = cfg.make_task(), cfg.make_task(test=True)
    model = build_model(cfg, task)
    opt = _optimizer(cfg, model.params)
    loss_fn = LOSSES[task.loss]
    key = task.headline                     # what the progress bar and the summary report
    stream = getattr(task, "stream", False)
    prefix = task.training_prefix if cfg.first_error else None
    if stream:
        task.chunks_per_epoch(cfg.batch)    # the text holds at least one batch (ValueError)
    test_batch = test_task.sample(cfg.eval_size, test_rng(cfg.seed))
    carried = None                          # stream tasks: the state after the last chunk

    ckpt = metrics_path = None
    start, wall_before, running = 0, 0.0, (0.0, 0.0, 0)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        ckpt = os.path.join(out_dir, CHECKPOINT)
        metrics_path = os.path.join(out_dir, "metrics.jsonl")
        if resume:
            if not os.path.exists(ckpt):
                raise ValueError(f"resume: no checkpoint in {out_dir}")
            start, wall_before, running, carried = _load_checkpoint(ckpt, model, opt, cfg)
            _truncate_metrics(metrics_path, start if start > 0 else -1)   # iter 0 is logged again
            if start > 0:
                stopped = _last_record(metrics_path)
                best, since = _best_so_far(test_task, read_metrics(metrics_path))
                if stopped and stopped["iter"] == start and (
                        _reached(cfg, test_task, stopped) or (cfg.patience and since >= cfg.patience)):
                    start = cfg.iters                 # it had stopped there: nothing to do
        else:
            if os.path.exists(metrics_path):
                os.unlink(metrics_path)
            _save_checkpoint(ckpt, model, opt, cfg, 0, 0.0)      # a good state exists from the start
        cfg.to_json(os.path.join(out_dir, "config.json"))
        if hasattr(task, "describe"):
            atomic_write_json(os.path.join(out_dir, DATA), task.describe())
    elif resume:
        raise ValueError("resume: needs a run folder (out_dir)")
    if not isinstance(snapshot_every, int) or snapshot_every < 0:
        raise ValueError(f"snapshot_every: expected an integer >= 0, got {snapshot_every!r}")
    if snapshot_every and out_dir is None:
        raise ValueError("snapshot_every: needs a run folder (out_dir)")

    def snapshot(done, last=False):
        if snapshot_every and (done % snapshot_every == 0 or done == cfg.iters or last):
            save_arrays(os.path.join(out_dir, SNAPSHOTS, f"{done:08d}.safetensors"), model.params,
                        {"iter": done})

    def log(record):
        if metrics_path is not None:
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    best, since = (None, 0) if start == 0 else _best_so_far(test_task, read_metrics(metrics_path))

    def patience_out(record) -> bool:
        """Early stopping: note a new best (and keep its weights); whether patience ran out."""
        nonlocal best, since
        if not cfg.patience:
            return False
        if _better(test_task, record[key], None if best is None else best[key]):
            best, since = record, 0
            if out_dir is not None:
                save_arrays(os.path.join(out_dir, BEST), model.params, {"iter": record["iter"]})
        else:
            since += 1
        return since >= cfg.patience

    t0 = time.perf_counter()
    wall = lambda: wall_before + time.perf_counter() - t0  # noqa: E731
    last_good = start
    if start == 0:
        snapshot(0)
        first = {"iter": 0, "lr": cfg.lr_at(0), "train_loss": None, "grad_norm": None,
                 **evaluate(model, test_task, test_batch), "wall_s": 0.0}
        log(first)
        patience_out(first)
    loss_sum, gnorm_sum, n_sum = running       # train loss / grad norm since the last evaluation
    last = None
    done = start
    name = label or f"{cfg.task} {cfg.variant_name} seed {cfg.seed}"
    with Progress(cfg.iters, name, enabled=show_progress(quiet), start=start) as bar:
        for it in range(start, cfg.iters):
            if stop_after is not None and it >= stop_after:
                return {"status": "stopped", "iters": it}
            # one step: batch i is a pure function of (seed, i)
            opt.lr = cfg.lr_at(it)
            if stream:          # the next chunk of the text; zeros at the start of an epoch
                batch = task.stream_batch(cfg.batch, it)
                state_in = None if batch.info["reset"] else carried
            else:
                batch, state_in = task.sample(cfg.batch, train_rng(cfg.seed, it)), None
            with np.errstate(over="ignore", invalid="ignore"):
                try:
                    loss, gnorm, state_out = _train_step(model, loss_fn, opt, cfg, batch, it, state_in,
                                                         prefix)
                    carried = state_out if stream else None
                except _NonFinite as e:
                    _diverged(out_dir, cfg, it, e.args[0], last_good, wall())
            loss_sum, gnorm_sum, n_sum = loss_sum + loss, gnorm_sum + gnorm, n_sum + 1
            done = it + 1
            snapshot(done)
            if done % max(cfg.eval_every, 1) == 0 or done == cfg.iters:
                if not all(np.isfinite(p).all() for p in model.params.values()):
                    _diverged(out_dir, cfg, it, float("nan"), last_good, wall())
                last = {"iter": done, "lr": opt.lr, "train_loss": loss_sum / n_sum,
                        "grad_norm": gnorm_sum / n_sum, **evaluate(model, test_task, test_batch),
                        "wall_s": round(wall(), 3)}
                if not math.isfinite(last["train_loss"]):    # the weights were checked above
                    _diverged(out_dir, cfg, it, last["train_loss"], last_good, wall())
                log(last)
                loss_sum, gnorm_sum, n_sum = 0.0, 0.0, 0
                bar.update(done, f"loss {last['train_loss']:.2e} test {key} {last[key]:.4g}",
                           force=True)
            else:
                bar.update(done, f"loss {loss:.2e}")
            if _reached(cfg, test_task, last) or (last is not None and last["iter"] == done
                                                  and patience_out(last)):
                snapshot(done, last=True)                 # the GIF ends on the final weights
                break                                     # solved, or no better for a while
            if ckpt is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0 \
                    and done < cfg.iters:
                if all(np.isfinite(p).all() for p in model.params.values()):
                    _save_checkpoint(ckpt, model, opt, cfg, done, wall(), (loss_sum, gnorm_sum, n_sum),
                                     carried)
                    last_good = done

    if last is None:                          # resumed a finished (or stopped) run
        last = _last_record(metrics_path) if start == cfg.iters and metrics_path else None
        if not last or last.get("train_loss") is None:
            last = {"iter": done, **evaluate(model, test_task, test_batch), "wall_s": wall()}
        done = last["iter"]
    summary = {"status": "done", "task": cfg.task, "variant": cfg.variant_name, "seed": cfg.seed,
               "iters": cfg.iters, "iters_run": done, "sequences_seen": done * cfg.batch,
               "stopped_early": done < cfg.iters, "wall_s": round(wall(), 3), "headline": key,
               **{k: v for k, v in last.items() if k not in ("iter", "wall_s")}}
    if cfg.patience and best is not None:
        summary.update({"best_iter": best["iter"], f"best_{key}": best[key]})
    if out_dir is not None:
        _save_checkpoint(ckpt, model, opt, cfg, done, wall(), state=carried)
        save_arrays(os.path.join(out_dir, WEIGHTS), model.params,
                    {"model": model.config(), "train_config": cfg.to_dict()})
        atomic_write_json(os.path.join(out_dir, "summary.json"), summary)
    summary["params"] = model.params
    return summary


def _diverged(out_dir, cfg, it, loss, last_good, wall_s):
    where = ""
    if out_dir is not None:
        where = (f"; the last good checkpoint (iteration {last_good}) is kept in "
                 f"{os.path.join(out_dir, CHECKPOINT)}")
        atomic_write_json(os.path.join(out_dir, "summary.json"),
                    {"status": "diverged", "task": cfg.task, "variant": cfg.variant_name,
                     "seed": cfg.seed, "diverged_at": it, "last_good_iter": last_good,
                     "wall_s": round(wall_s, 3)})
    raise TrainingDiverged(f"training diverged at iteration {it} (loss {loss}): try a smaller --lr "
                           f"(now {cfg.lr:g}) or --clip{where}")


def _read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: {what} cannot be read ({e})") from None


def load_run(run_dir, best: bool = False) -> dict:
    """What a finished run folder holds: dir, config, metrics (list), summary, task, model (its
    final weights loaded; with ``best``, those of the best evaluation, which runs with
    ``patience`` keep).

    Raises ValueError (one line) for a missing folder, config or weights, or a corrupt file: a
    model without its weights would be a silently wrong result.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise ValueError(f"{run_dir}: no such run folder")
    cp = os.path.join(run_dir, "config.json")
    if not os.path.exists(cp):
        raise ValueError(f"{run_dir}: not a run folder (no config.json)")
    try:
        cfg = TrainConfig.from_dict(_read_json(cp, "the config"))
        cfg.validate()
    except TypeError as e:
        raise ValueError(f"{cp}: not a training config ({e})") from None
    wp = os.path.join(run_dir, WEIGHTS)
    if not os.path.exists(wp):
        raise ValueError(f"{run_dir}: no {WEIGHTS} (the run has not finished; "
                         f"lstmlab train --resume --out {run_dir} finishes it)")
    if best:
        if not cfg.patience:
            raise ValueError(f"best: {run_dir} was trained without patience, so it keeps no best weights")
        wp = os.path.join(run_dir, BEST)
    try:
        arrays, _ = load_arrays(wp)
    except (OSError, ValueError) as e:
        raise ValueError(f"{wp}: cannot be read ({str(e).splitlines()[0]})") from None
    metrics = read_metrics(os.path.join(run_dir, "metrics.jsonl"))
    sp = os.path.join(run_dir, "summary.json")
    summary = _read_json(sp, "the summary") if os.path.exists(sp) else {}
    task = cfg.make_task()
    dp = os.path.join(run_dir, DATA)
    if hasattr(task, "check_description") and os.path.exists(dp):
        task.check_description(_read_json(dp, "the data description"), where=dp)
    model = build_model(cfg, task)
    model.load_params(arrays)
    return {"dir": run_dir, "config": cfg, "metrics": metrics, "summary": summary,
            "model": model, "task": task}
