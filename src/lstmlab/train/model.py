"""A small sequence model: one recurrent layer and a linear readout at every step.

    y, _, cache = rnn.forward(x)          # (T, B, H)
    pred        = y W_out^T + b_out       # (T, B, K)

Its ``params`` is one dict with prefixed names (``rnn.weight_ih_l0``, ..., ``out.weight``,
``out.bias``) holding the layers' own arrays, so an optimiser that updates ``params`` in place
updates the layers.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.dense import Dense
from ..core.layers import GRU, LSTM, RNN
from ..core.spec import CellSpec, resolve_spec
from .config import GATES, TrainConfig

__all__ = ["SeqModel"]


class SeqModel:
    def __init__(self, cfg: TrainConfig, input_size: int, output_size: int):
        self.cfg = cfg
        dtype = np.dtype(cfg.dtype)
        common = dict(seed=cfg.seed, dtype=dtype, init=cfg.init, backend=cfg.backend)
        if cfg.variant in ("gru", "rnn"):
            self.rnn = (GRU if cfg.variant == "gru" else RNN)(input_size, cfg.hidden, **common)
        else:
            variant = CellSpec.from_dict(cfg.variant) if isinstance(cfg.variant, dict) else cfg.variant
            if cfg.identity_squash:
                variant = replace(resolve_spec(variant), input_activation=False, output_activation=False)
            self.rnn = LSTM(input_size, cfg.hidden, variant=variant, forget_bias=cfg.forget_bias,
                            peephole_init=cfg.peephole_init, **common)
            H = cfg.hidden
            if cfg.init_range is not None:                     # U(-1/sqrt(H), 1/sqrt(H)) -> U(-r, r)
                scale = cfg.init_range * np.sqrt(H) if cfg.init == "uniform" else 1.0
                for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                    self.rnn.params[k] *= scale
                if cfg.forget_bias is not None:
                    self.rnn.params["bias_ih_l0"][H:2 * H] = cfg.forget_bias
            if cfg.zero_bias:
                for k in ("bias_ih_l0", "bias_hh_l0"):
                    f_block = self.rnn.params[k][H:2 * H].copy()
                    self.rnn.params[k][...] = 0.0
                    self.rnn.params[k][H:2 * H] = f_block
            for gate, value in cfg.gate_bias.items():        # the summed bias b_ih + b_hh of a gate
                j = GATES.index(gate)
                if self.rnn.spec.gate_used[j]:
                    self.rnn.params["bias_ih_l0"][j * H:(j + 1) * H] = value
                    self.rnn.params["bias_hh_l0"][j * H:(j + 1) * H] = 0.0
        self.out = Dense(cfg.hidden, output_size, dtype=dtype, seed=cfg.seed)
        if cfg.readout_bias is not None:
            self.out.params["bias"][...] = cfg.readout_bias
        self.params: dict[str, np.ndarray] = {}
        for prefix, layer in (("rnn", self.rnn), ("out", self.out)):
            for k, v in layer.params.items():
                self.params[f"{prefix}.{k}"] = v

    def forward(self, x):
        """x (T, B, D) -> pred (T, B, K) and the cache for :meth:`backward`."""
        if self.cfg.input_scale != 1.0:
            x = x * self.cfg.input_scale
        y, _, rcache = self.rnn.forward(x)                   # (T, B, H)
        pred, dcache = self.out.forward(y)                   # (T, B, K)
        return pred, (rcache, dcache)

    def backward(self, dpred, cache) -> dict[str, np.ndarray]:
        """Gradients of every entry of ``params`` given d loss / d pred."""
        rcache, dcache = cache
        dy, g_out = self.out.backward(dpred, dcache)
        _, _, g_rnn = self.rnn.backward(dy, rcache, input_grad=False)      # x is data
        grads = {f"rnn.{k}": v for k, v in g_rnn.items()}
        grads.update({f"out.{k}": v for k, v in g_out.items()})
        return grads

    def predict(self, x, chunk: int = 512) -> np.ndarray:
        """Predictions for a large batch, ``chunk`` sequences at a time (bounded memory)."""
        parts = [self.forward(x[:, s:s + chunk])[0] for s in range(0, x.shape[1], chunk)]
        return np.concatenate(parts, axis=1)

    def load_params(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy arrays into ``params`` in place; names and shapes must match exactly."""
        if set(arrays) != set(self.params):
            raise ValueError(f"weights: names {sorted(set(arrays) ^ set(self.params))} do not match the model")
        for k, v in arrays.items():
            if v.shape != self.params[k].shape:
                raise ValueError(f"weights: {k!r} has shape {v.shape}, expected {self.params[k].shape}")
            self.params[k][...] = v

    def config(self) -> dict:
        return {"rnn": self.rnn.config(), "out": self.out.config()}
