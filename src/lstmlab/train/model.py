"""The model of every experiment: an input stage, a stack of recurrent layers, a readout.

    u    = x                      real-valued input (T, B, D)
         | onehot(x)              token ids (T, B), which the layers take as they are: the
                                  first layer's x W_ih^T is a gather of columns of W_ih
         | E[x]                   token ids (T, B) -> (T, B, E), a learned embedding
    y, state_n, cache = rnn.forward(u, state)   # (T, B, dirs*H): ``layers`` stacked layers
    pred = y W_out^T + b_out                     # (T, B, K): outputs, logits for the losses
                                                 #   softmax_ce and bernoulli_nll
         | sigma(y W_out^T + b_out)              # readout "sigmoid" (squared-error tasks):
                                                 #   d pred / d a = pred (1 - pred)

Its ``params`` is one dict with prefixed names (``embed.weight``, ``rnn.weight_ih_l0``, ...,
``out.weight``, ``out.bias``) holding the layers' own arrays, so an optimiser that updates
``params`` in place updates the layers. The recipe levers (``init_range``, ``zero_bias``,
``gate_bias``) are :func:`lstmlab.core.init.apply_init_levers`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.dense import Dense, Embedding
from ..core.init import apply_init_levers
from ..core.io import copy_params
from ..core.layers import GRU, LSTM, RNN
from ..core.spec import CellSpec, resolve_spec
from ..core.validate import check_ids
from .config import TrainConfig

__all__ = ["SeqModel", "Seq2SeqModel"]


class SeqModel:
    """``SeqModel(cfg, input_size, output_size, tokens=False)``; with ``tokens=True`` the input
    is (T, B) integer ids in ``[0, input_size)``, one-hot encoded or embedded (``cfg.embed``)."""

    def __init__(self, cfg: TrainConfig, input_size: int, output_size: int, tokens: bool = False):
        self.cfg = cfg
        self.tokens = bool(tokens)
        self.vocab = input_size if tokens else None
        dtype = np.dtype(cfg.dtype)
        self.embed = None
        rnn_in = input_size
        if tokens and cfg.embed:
            self.embed = Embedding(input_size, cfg.embed, dtype=dtype, seed=cfg.seed)
            rnn_in = cfg.embed
        common = dict(seed=cfg.seed, dtype=dtype, init=cfg.init, backend=cfg.backend,
                      num_layers=cfg.layers, dropout=cfg.dropout)
        if cfg.variant in ("gru", "rnn"):
            self.rnn = (GRU if cfg.variant == "gru" else RNN)(rnn_in, cfg.hidden, **common)
        else:
            variant = CellSpec.from_dict(cfg.variant) if isinstance(cfg.variant, dict) else cfg.variant
            if cfg.identity_squash:
                variant = replace(resolve_spec(variant), input_activation=False, output_activation=False)
            if cfg.cell_clip is not None:
                variant = replace(resolve_spec(variant), cell_clip=cfg.cell_clip)
            self.rnn = LSTM(rnn_in, cfg.hidden, variant=variant, forget_bias=cfg.forget_bias,
                            peephole_init=cfg.peephole_init, **common)
        apply_init_levers(self.rnn, cfg.init_range, cfg.zero_bias, cfg.gate_bias)
        # the paper's truncated gradient (cfg.peephole_grad == "cut"): LSTM layers only
        self._truncation = {"peephole_error": False} if (
            cfg.peephole_grad == "cut" and self.rnn.kind == "lstm") else {}
        self.out = Dense(cfg.hidden, output_size, dtype=dtype, seed=cfg.seed)
        if cfg.readout_bias is not None:
            self.out.params["bias"][...] = cfg.readout_bias
        self.params: dict[str, np.ndarray] = {}
        for prefix, layer in (("embed", self.embed), ("rnn", self.rnn), ("out", self.out)):
            for k, v in (layer.params.items() if layer is not None else ()):
                self.params[f"{prefix}.{k}"] = v

    def initial_state(self, B: int):
        """Zero state of the recurrent stack for B sequences (what ``forward`` uses for None)."""
        shape = (self.rnn.num_layers * self.rnn.num_directions, B, self.rnn.hidden_size)
        z = np.zeros(shape, dtype=self.rnn.dtype)
        return (z, z.copy()) if self.rnn.kind == "lstm" else z

    def rnn_inputs(self, x):
        """The recurrent stack's input (T, B, D) for x, and the embedding's cache (or None)."""
        if not self.tokens:
            return (x * self.cfg.input_scale if self.cfg.input_scale != 1.0 else x), None
        ids = np.asarray(x)
        if self.embed is not None:
            return self.embed.forward(ids)
        return check_ids("x", ids, self.vocab), None       # (T, B): the layers' one-hot input

    def forward(self, x, state=None, *, training: bool = False, rng=None):
        """x (T, B, D) or ids (T, B) -> pred (T, B, K), the final state and the backward cache."""
        u, ecache = self.rnn_inputs(x)
        y, state_n, rcache = self.rnn.forward(u, state, training=training, rng=rng)  # (T, B, H)
        pred, dcache = self.out.forward(y)                                         # (T, B, K)
        if self.cfg.readout == "sigmoid":
            pred = 0.5 * (1.0 + np.tanh(0.5 * pred))          # sigma(a), without overflow
            dcache = (dcache, pred)
        return pred, state_n, (ecache, rcache, dcache)

    def backward(self, dpred, cache, dstate=None) -> dict[str, np.ndarray]:
        """Gradients of every entry of ``params`` given d loss / d pred (and d loss / d state_n)."""
        ecache, rcache, dcache = cache
        if self.cfg.readout == "sigmoid":
            dcache, pred = dcache
            dpred = dpred * pred * (1.0 - pred)                                    # (T, B, K)
        dy, g_out = self.out.backward(dpred, dcache)
        du, _, g_rnn = self.rnn.backward(dy, rcache, dstate, input_grad=self.embed is not None,
                                         **self._truncation)
        grads = {}
        if self.embed is not None:
            grads.update({f"embed.{k}": v for k, v in self.embed.backward(du, ecache)[1].items()})
        grads.update({f"rnn.{k}": v for k, v in g_rnn.items()})
        grads.update({f"out.{k}": v for k, v in g_out.items()})
        return grads

    def predict(self, x, chunk: int = 512, steps: int | None = None) -> np.ndarray:
        """Predictions for a large batch, ``chunk`` sequences at a time and, with ``steps``,
        that many time steps at a time with the state carried (bounded memory, same result)."""
        def run(xs):                                                   # (T, b, ...) -> (T, b, K)
            if not steps or xs.shape[0] <= steps:
                return self.forward(xs)[0]
            out, state = [], None
            for t in range(0, xs.shape[0], steps):
                pred, state, _ = self.forward(xs[t:t + steps], state)
                out.append(pred)
            return np.concatenate(out, axis=0)
        parts = [run(x[:, s:s + chunk]) for s in range(0, x.shape[1], chunk)]
        return np.concatenate(parts, axis=1)

    def load_params(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy arrays into ``params`` in place; names and shapes must match exactly."""
        copy_params(self.params, arrays, "weights")

    def config(self) -> dict:
        layers = {"rnn": self.rnn.config(), "out": self.out.config()}
        if self.embed is not None:
            layers["embed"] = self.embed.config()
        return layers


class Seq2SeqModel:
    """The loop's view of :class:`lstmlab.core.seq2seq.Seq2Seq` for the tasks of ``kind``
    ``seq2seq``: ``forward(x, y, ...)`` runs teacher-forced (``cfg.teacher_forcing``) logits
    for the targets y, ``backward(dlogits, cache)`` the gradients, and ``predict(x)`` greedy
    decoding, (T', B) ids with EOS and PAD after (what the task's ``evaluate`` scores). Source
    lengths are read off the PAD ids that end each source sequence."""

    decoder = True                          # the loop passes the targets to forward

    def __init__(self, cfg: TrainConfig, task):
        from ..core.seq2seq import Seq2Seq
        self.cfg = cfg
        cell = CellSpec.from_dict(cfg.variant) if isinstance(cfg.variant, dict) else cfg.variant
        if cfg.cell_clip is not None:
            cell = replace(resolve_spec(cell), cell_clip=cfg.cell_clip)
        self.net = Seq2Seq(task.input_size, task.output_size, embed=cfg.embed or cfg.hidden,
                           hidden=cfg.hidden, layers=cfg.layers, cell=cell, attention=cfg.attention,
                           bidirectional=cfg.bidirectional, bridge=cfg.bridge,
                           dtype=np.dtype(cfg.dtype), seed=cfg.seed)
        self.params = self.net.params

    @staticmethod
    def src_lengths(x) -> np.ndarray:
        """(B,) the steps of each source sequence before its PAD (id 0) padding."""
        from ..core.seq2seq import PAD
        return (np.asarray(x) != PAD).sum(axis=0)

    def forward(self, x, y, *, rng=None):
        return self.net.forward(x, y, self.src_lengths(x), self.cfg.teacher_forcing, rng)

    def backward(self, dlogits, cache) -> dict[str, np.ndarray]:
        return self.net.backward(dlogits, cache)

    def predict(self, x, chunk: int = 512, steps: int | None = None) -> np.ndarray:
        """Greedy decoding of the sources x (S, B), ``chunk`` sequences at a time."""
        from ..core.seq2seq import EOS, PAD
        outs = []
        for s in range(0, x.shape[1], chunk):
            xs = x[:, s:s + chunk]
            outs += [r["tokens"] + ([EOS] if r["finished"] else [])
                     for r in self.net.greedy(xs, self.src_lengths(xs))]
        pred = np.full((max(len(o) for o in outs), len(outs)), PAD, dtype=np.int64)
        for b, o in enumerate(outs):
            pred[:len(o), b] = o
        return pred

    def load_params(self, arrays: dict[str, np.ndarray]) -> None:
        copy_params(self.params, arrays, "weights")

    def config(self) -> dict:
        n = self.net
        return {"class": "Seq2Seq", "src_vocab": n.src_vocab, "tgt_vocab": n.tgt_vocab,
                "embed": n.embed, "hidden": n.hidden, "layers": n.layers,
                "attention": n.attention, "bidirectional": n.bidirectional, "bridge": n.bridge,
                "dtype": n.dtype.name}
