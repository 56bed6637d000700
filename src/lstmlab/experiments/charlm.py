"""Character-level language models: the recipe, held-out scoring, sampling, and the search for
interpretable cells (Karpathy, Johnson & Fei-Fei 2015).

The recipe (:func:`charlm_config`, what ``lstmlab train charlm`` starts from): one-hot
characters, ``layers`` x ``hidden`` recurrent layers (default 2 x 256 LSTM), a softmax readout;
batch 32 streams, chunks of 100 steps with the state carried (truncated BPTT), Adam 3e-3 on a
cosine schedule down to 1/20 of it, global-norm clip 5, dropout 0.5 between the layers,
float32, one evaluation on the validation split per epoch, 20 epochs (5,260 updates on the
default corpus); cells with peepholes have their cell state clipped to [-5, 5]
(:data:`PEEPHOLE_CELL_CLIP`). Without dropout the 2 x 256 model fits the training text far
better than held-out text (after 30 epochs 1.17 bits per character on the one, 2.01 on the
other); with the dropout and the 20 epochs its held-out bpc is 6-8% lower (two seeds), and its
samples at temperature 0.5 end in a run of spaces less often, though still often (README.md).
The side-by-side with ``torch.nn.LSTM`` (``examples/char_language_model.py``) trains without
dropout, since the two libraries cannot draw the same masks, for 10 epochs. Bits per character
on held-out text are
``-sum_t log2 p(x_{t+1} | x_{<=t}) / N``, each held-out stream read from a zero state.

Sampling (:func:`generate`): the prime is read through the network, then each next character
is drawn from ``softmax(logits / temperature)``, optionally restricted to the ``top_k`` most
likely, with ``numpy.random.default_rng(seed)``: the same seed gives the same text.

Cells (:func:`cell_activations`, :func:`text_features`, :func:`search_cells`): every cell's
activation over held-out text (``tanh(c_t)`` for LSTM cells, ``h_t`` for GRU and RNN), and
its Pearson correlation with features computed from the text itself: inside double quotes,
bracket depth, indentation of the line, position in the line, inside a word.
"""
from __future__ import annotations

import math
import os
import re
import sys

import numpy as np

from ..core.spec import CellSpec
from ..train.config import TrainConfig

__all__ = ["charlm_config", "split_metrics", "generate", "word_stats", "cell_activations",
           "text_features", "search_cells", "FEATURES"]

#: The recipe's defaults (``lstmlab train charlm --help`` shows them).
DEFAULTS = dict(variant="lstm", layers=2, hidden=256, batch=32, seq_len=100, epochs=20,
                lr=3e-3, clip=5.0, dropout=0.5, dtype="float32")

#: Cells with peepholes train with their cell state clipped to [-5, 5]. Unclipped, the state
#: carried through an epoch (about 13,000 steps) runs away: w_cf * c_{t-1} with the sign of c
#: holds f at 1, w_ci * c_{t-1} holds i at 1, and c grows by about 1 a step (|c| 12,907 after
#: one epoch at 1 x 128), its gates saturated and out of reach of the gradient.
PEEPHOLE_CELL_CLIP = 5.0


def charlm_config(data: str | None = None, variant: str = DEFAULTS["variant"],
                  layers: int = DEFAULTS["layers"], hidden: int = DEFAULTS["hidden"],
                  batch: int = DEFAULTS["batch"], seq_len: int = DEFAULTS["seq_len"],
                  epochs: int = DEFAULTS["epochs"], seed: int = 0, **over) -> TrainConfig:
    """The recipe of the module doc as a TrainConfig: ``epochs`` passes over the training
    streams (``iters = epochs x chunks per epoch``), one validation per epoch. ``data`` is made
    absolute so the run rebuilds its text from any folder; ``over`` sets other fields."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive integer, got {epochs!r}")
    task_args = {"seq_len": seq_len}
    if data is not None:
        task_args["data"] = os.path.abspath(os.fspath(data))
    from ..tasks import make_task
    K = make_task("charlm", **task_args).chunks_per_epoch(batch)
    base = dict(task="charlm", task_args=task_args, variant=variant, layers=layers, hidden=hidden,
                batch=batch, seed=seed, iters=epochs * K, lr=DEFAULTS["lr"], schedule="cosine",
                lr_min_frac=0.05, clip=DEFAULTS["clip"], dropout=DEFAULTS["dropout"],
                forget_bias=1.0, eval_every=K, eval_size=8, checkpoint_every=K,
                dtype=DEFAULTS["dtype"])
    if variant not in ("gru", "rnn"):
        from ..core.spec import resolve_spec
        spec = resolve_spec(CellSpec.from_dict(variant) if isinstance(variant, dict) else variant)
        if spec.peephole and spec.cell_clip is None:
            base["cell_clip"] = PEEPHOLE_CELL_CLIP
    base.update(over)
    return TrainConfig(**base)


def split_metrics(run: dict, split: str = "test", streams: int = 8) -> dict:
    """Held-out metrics (``bpc``, ``xent``, ``accuracy``) of a loaded run on ``split``."""
    from ..tasks import make_task
    from ..train.loop import evaluate
    _check_run(run)
    task = make_task("charlm", **{**run["config"].task_args, "split": split})
    return evaluate(run["model"], task, task.sample(streams))


def _check_run(run):
    if run["config"].task != "charlm":
        raise ValueError(f"run_dir: {run['dir']} is a {run['config'].task} run, not a charlm run")


def _step_logits(model, ids, state):
    """Read token ids (n,) from ``state``; return the last step's logits (V,) and the state."""
    pred, state, _ = model.forward(np.asarray(ids, dtype=np.int64)[:, None], state)   # (n, 1, V)
    return pred[-1, 0].astype(np.float64), state


def generate(run: dict, prime: str = "\n", length: int = 500, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, write=None, echo_prime: bool = False) -> str:
    """``length`` characters sampled after ``prime`` (see the module doc); ``write(str)`` gets
    each character as it is drawn (streaming), and first the prime with ``echo_prime`` (once
    every argument is checked, so a bad one writes nothing). Returns the generated text
    (without the prime)."""
    _check_run(run)
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length: expected a positive integer, got {length!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature: expected a positive number, got {temperature!r}")
    corpus = run["task"].corpus
    V = len(corpus.vocab)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k: expected a positive integer, got {top_k!r}")
    if not prime:
        raise ValueError("prime: expected at least one character")
    ids = corpus.encode(prime, "prime")
    if echo_prime and write is not None:
        write(prime)
    rng = np.random.default_rng(seed)
    model = run["model"]
    logits, state = _step_logits(model, ids, None)
    out = []
    for _ in range(length):
        z = logits / temperature
        if top_k is not None and top_k < V:
            cut = np.partition(z, V - top_k)[V - top_k]
            z = np.where(z >= cut, z, -np.inf)
        p = np.exp(z - z.max())
        p /= p.sum()
        nxt = int(rng.choice(V, p=p))
        ch = corpus.vocab[nxt]
        out.append(ch)
        if write is not None:
            write(ch)
        logits, state = _step_logits(model, [nxt], state)
    return "".join(out)


#: A word of :func:`word_stats`: letters, digits and underscores (Unicode), starting with a letter
#: or underscore at a word boundary: an English word or a Python name, never part of a number
#: such as ``0xff`` or ``1e10``.
WORD = re.compile(r"\b[^\W\d]\w*")


def word_stats(run: dict, text: str, prime: str = "") -> dict:
    """How many of the words of ``text`` (a sample drawn after ``prime``) the model saw in its
    training split.

    Words are :data:`WORD` matches in ``prime + text`` that lie in ``text``: a word that began in
    the prime, or that runs to the end of ``text`` (it may be cut), is left out. Returns
    ``words`` (how many), ``known`` (how many of them occur as words of the training split),
    ``share`` (known / words, NaN without words) and ``invented`` (the distinct others, in order
    of first appearance)."""
    _check_run(run)
    if not isinstance(text, str) or not isinstance(prime, str):
        raise ValueError(f"text: expected strings for text and prime, got {type(text).__name__} "
                         f"and {type(prime).__name__}")
    train = run["task"].corpus
    lo, hi = train.bounds[0]
    seen = set(WORD.findall(train.text[lo:hi]))
    full, start = prime + text, len(prime)
    words = [m.group() for m in WORD.finditer(full) if start <= m.start() and m.end() < len(full)]
    invented = list(dict.fromkeys(w for w in words if w not in seen))
    known = sum(w in seen for w in words)
    return {"words": len(words), "known": known,
            "share": known / len(words) if words else float("nan"), "invented": invented}


def cell_activations(run: dict, n_chars: int = 20000, split: str = "valid",
                     steps: int = 256) -> tuple[str, np.ndarray, list[str]]:
    """Held-out text (the first ``n_chars`` of ``split``), the activation of every cell of every
    layer while reading it, (n, layers x H), and the cells' names (``L{layer}.{cell}``). The
    activation at position t is the cell's value after reading character t."""
    _check_run(run)
    model, corpus = run["model"], run["task"].corpus
    ids = corpus.split(split)[:n_chars]
    kind, H, layers = model.rnn.kind, model.rnn.hidden_size, model.rnn.num_layers
    parts, state = [], None
    for s in range(0, len(ids), steps):
        x = ids[s:s + steps, None]                                             # (t, 1)
        u, _ = model.rnn_inputs(x)
        _, state, cache = model.rnn.forward(u, state)
        acts = []
        for layer in range(layers):
            ins = cache.internals(layer, 0)
            acts.append(np.tanh(ins["c"][:, 0]) if kind == "lstm" else ins["h"][:, 0])   # (t, H)
        parts.append(np.concatenate(acts, axis=1))                           # (t, layers H)
    names = [f"L{layer}.{j}" for layer in range(layers) for j in range(H)]
    return corpus.decode(ids), np.concatenate(parts, axis=0).astype(np.float64), names


#: Text features the search correlates with (name -> description).
FEATURES = {
    "in_quotes": "inside a double-quoted string (a \" opens or closes it; a newline closes it)",
    "bracket_depth": "nesting depth of ( [ { at this character",
    "indent": "leading spaces of the current line",
    "line_position": "characters since the last newline",
    "in_word": "the character is a letter, digit or underscore",
}


def text_features(text: str) -> dict[str, np.ndarray]:
    """The :data:`FEATURES` of every position of ``text``, each (n,) float."""
    n = len(text)
    out = {k: np.zeros(n) for k in FEATURES}
    quote, depth, col, indent, leading = False, 0, 0, 0, True
    for t, ch in enumerate(text):
        if ch == "\n":
            quote, col, indent, leading = False, 0, 0, True
        else:
            col += 1
            if leading and ch == " ":
                indent += 1
            elif leading:
                leading = False
        if ch == '"':
            quote = not quote
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        out["in_quotes"][t] = quote or ch == '"'
        out["bracket_depth"][t] = depth + (ch in ")]}")
        out["indent"][t] = indent
        out["line_position"][t] = col
        out["in_word"][t] = ch.isalnum() or ch == "_"
    return out


def search_cells(acts: np.ndarray, features: dict[str, np.ndarray], names: list[str],
                 top: int = 1) -> list[dict]:
    """For each feature, the ``top`` cells whose activation correlates best (by |r|, Pearson)
    with it: records ``feature``, ``cell``, ``index``, ``r``. acts (n, C)."""
    A = acts - acts.mean(axis=0)
    sa = np.sqrt((A * A).sum(axis=0))                                           # (C,)
    out = []
    for name, f in features.items():
        fc = f - f.mean()
        sf = math.sqrt(float(fc @ fc))
        if sf == 0:
            continue                                       # constant on this text: no correlation
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(sa > 0, (fc @ A) / (sf * sa), 0.0)                     # (C,)
        for j in np.argsort(-np.abs(r))[:top]:
            out.append({"feature": name, "cell": names[j], "index": int(j), "r": float(r[j])})
    return out


def stream_write(ch: str) -> None:
    """Write one character to stdout at once (``lstmlab sample`` streams)."""
    sys.stdout.write(ch)
    sys.stdout.flush()


def cells_page(run: dict, out_dir, chosen: list[str] | None = None, n_chars: int = 20000,
               show_chars: int = 2500) -> dict:
    """The search over the first ``n_chars`` of the validation split, written to
    ``out_dir/cells.json``, and the HTML page ``out_dir/cells.html`` of the first ``show_chars``
    characters coloured by the ``chosen`` cells (names ``L{layer}.{cell}``; default: the best
    cell of each feature, the strongest |r| first). Returns {"search": records, "html": path, "json": path}."""
    from ..core.io import atomic_write_json
    from ..viz.cells import write_cells_html

    text, acts, names = cell_activations(run, n_chars)
    found = search_cells(acts, text_features(text), names)
    if chosen:
        bad = [c for c in chosen if c not in names]
        if bad:
            raise ValueError(f"cells: no cell {bad[0]!r} in this model (names L0.0 .. {names[-1]})")
        by_cell = {r["cell"]: r for r in found}
        picks = [{"cell": c, "caption": (f"best for {by_cell[c]['feature']} (r = {by_cell[c]['r']:+.2f})"
                                         if c in by_cell else "chosen on the command line")}
                 for c in chosen]
    else:
        picks, seen = [], set()
        for r in sorted(found, key=lambda r: -abs(r["r"])):     # the strongest cell first
            if r["cell"] not in seen:
                seen.add(r["cell"])
                picks.append({"cell": r["cell"], "caption": f"best for {r['feature']} "
                              f"({FEATURES[r['feature']]}): r = {r['r']:+.2f}"})
    cols = [names.index(p["cell"]) for p in picks]
    cfg = run["config"]
    title = (f"cells of {cfg.variant_name} {cfg.layers}x{cfg.hidden} on "
             f"{os.path.basename(run['task'].corpus.source)}: held-out text")
    os.makedirs(out_dir, exist_ok=True)
    page = write_cells_html(os.path.join(out_dir, "cells.html"), text[:show_chars],
                            acts[:show_chars, cols], picks, title)
    js = os.path.join(out_dir, "cells.json")
    atomic_write_json(js, {"variant": cfg.variant_name, "layers": cfg.layers, "hidden": cfg.hidden,
                           "n_chars": len(text), "activation": "tanh(c)" if run["model"].rnn.kind
                           == "lstm" else "h", "features": FEATURES, "search": found,
                           "shown": picks})
    return {"search": found, "html": page, "json": js}
