"""Recurrent sequence layers (LSTM family, GRU, RNN): stacking, directions, lengths, dropout.

A layer is composed around a cell loop (flax-style): for each layer k and direction d

    xp  = x W_ih^T + b                          # (T, B, G*H): one matrix product for all steps
    Hs, ... = loop_forward(xp, W_hh, ..., h0, mask)      # the recurrence (reference or compiled)
    y   = mask * Hs[1:]                         # (T, B, H): padded steps give zeros

The reverse direction runs the same loop over each sequence reversed within its own length (as
PyTorch does for packed sequences), so its final state belongs to the first step. Directions are
concatenated (T, B, 2H); dropout (inverted, only with ``training=True``) sits between layers.

Arrays are time-major ``(T, B, D)``; states are ``(num_layers * num_directions, B, H)``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from . import cells
from .init import INIT_SCHEMES, count_params, init_direction, param_name
from .spec import PRESETS, cell_kind, resolve_spec
from .validate import (check_array, check_dtype, check_ids, check_lengths, check_positive_int,
                       is_ids)

__all__ = ["LSTM", "GRU", "RNN", "SequenceCache", "reverse_within_lengths", "BACKENDS"]

BACKENDS = ("auto", "reference", "compiled")


def reverse_within_lengths(a: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Reverse each sequence of ``a`` (T, B, ...) within its own length; padding stays in place.

    The permutation is its own inverse, so the same call maps a reversed sequence back.
    """
    if lengths is None:
        return a[::-1]
    T, B = a.shape[:2]
    t = np.arange(T)[:, None]                                              # (T, 1)
    idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)      # (T, B)
    return a[idx, np.arange(B)[None, :]]


_PARAM_BASES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_gg",
                "weight_ci", "weight_cf", "weight_co")


@functools.lru_cache(maxsize=256)
def _direction_names(keys: tuple, k: int, d: int) -> dict[str, str]:
    """Base name -> parameter name (``weight_hh`` -> ``weight_hh_l1_reverse``) of the parameters
    of layer k, direction d among ``keys`` (computed once per layer layout: the training loop
    asks twice per iteration). The dict is shared: read it, do not change it."""
    names = {b: param_name(b, k, d) for b in _PARAM_BASES}
    return {b: n for b, n in names.items() if n in keys}


@functools.cache
def _loops(backend: str):
    """The module that provides the loop functions: lstmlab.core.cells or lstmlab.kernels."""
    if backend == "reference":
        return cells
    try:
        from .. import kernels
    except ImportError:
        kernels = None
    if kernels is not None and kernels.available():
        return kernels
    if backend == "compiled":
        raise ValueError("backend: 'compiled' needs numba (pip install numba); use 'reference' or 'auto'")
    return cells


@dataclass
class _DirectionCache:
    x: np.ndarray              # (T, B, D) this direction's input (or (T, B) ids), in its order
    loop: tuple                # what the loop forward returned (Hs, Cs, G) / (Hs, G, HPn) / (Hs,)


@dataclass
class SequenceCache:
    """Everything the backward pass needs, and the internals users may want to look at.

    ``internals(layer, direction)`` returns the per-step hidden and cell states and gate
    activations of one layer and direction, in input time order, with zeros at padded steps.
    """
    kind: str
    hidden_size: int
    T: int
    B: int
    lengths: np.ndarray | None
    mask: np.ndarray | None                    # (T, B) 0/1 or None
    dirs: list = field(default_factory=list)   # [layer][direction] -> _DirectionCache
    dropout_masks: list = field(default_factory=list)  # [layer] -> (T, B, dirs*H) scale or None

    def internals(self, layer: int = 0, direction: int = 0) -> dict[str, np.ndarray]:
        """Per-step internals of one layer/direction: ``h``, plus ``c, i, f, g, o`` for LSTM cells
        or ``r, z, n`` for GRU; each (T, B, H), zero where a sequence is padded."""
        dc = self.dirs[layer][direction]
        H = self.hidden_size
        out = {"h": dc.loop[0][1:]}
        if self.kind == "lstm":
            out["c"] = dc.loop[1][1:]
            G = cells.lstm_gate_rows(dc.loop[2])                         # (T, B, 4H)
            for j, name in enumerate("ifgo"):
                out[name] = G[:, :, j * H:(j + 1) * H]
        elif self.kind == "gru":
            G = dc.loop[1]
            for j, name in enumerate("rzn"):
                out[name] = G[:, :, j * H:(j + 1) * H]
        m = np.ones((self.T, self.B), dtype=out["h"].dtype) if self.mask is None else self.mask
        result = {}
        for k, v in out.items():
            if direction == 1:
                v = reverse_within_lengths(v, self.lengths)
            result[k] = v * m[:, :, None]
        return result


class _Recurrent:
    """Shared machinery of LSTM, GRU and RNN; subclasses set ``kind`` and the state convention."""

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, variant="lstm", num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, dtype=np.float64,
                 seed: int = 0, init: str = "uniform", forget_bias: float | None = 1.0,
                 peephole_init: str = "small", backend: str = "auto"):
        self.input_size = check_positive_int("input_size", input_size)
        self.hidden_size = check_positive_int("hidden_size", hidden_size)
        self.num_layers = check_positive_int("num_layers", num_layers)
        if cell_kind(variant) != self.kind:
            raise ValueError(f"variant: {variant!r} is not a {type(self).__name__} variant")
        self.spec = resolve_spec(variant) if self.kind == "lstm" else None
        self.variant = variant if isinstance(variant, str) else None
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise ValueError(f"bidirectional: expected True or False, got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.dtype = check_dtype(dtype)
        self.seed = check_positive_int("seed", seed, minimum=0)
        if init not in INIT_SCHEMES:
            raise ValueError(f"init: expected one of {INIT_SCHEMES}, got {init!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.init_options = {"init": init, "forget_bias": forget_bias, "peephole_init": peephole_init}
        self.dropout_rng = np.random.default_rng([self.seed, 2**31 - 1])
        self.params: dict[str, np.ndarray] = {}
        for k in range(self.num_layers):
            d_in = self.input_size if k == 0 else self.hidden_size * self.num_directions
            for d in range(self.num_directions):
                p = init_direction(self.kind, self.spec, d_in, self.hidden_size, k, d, self.seed,
                                   self.dtype, init, forget_bias, peephole_init)
                for name, value in p.items():
                    self.params[param_name(name, k, d)] = value

    # -- bookkeeping ---------------------------------------------------------------------------
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def config(self) -> dict:
        """Everything needed to rebuild this layer (the arrays aside), as JSON-able values."""
        return {
            "class": type(self).__name__,
            "input_size": self.input_size, "hidden_size": self.hidden_size,
            "variant": self.variant if self.variant is not None else self.spec.to_dict(),
            "num_layers": self.num_layers, "bidirectional": self.bidirectional,
            "dropout": self.dropout, "dtype": self.dtype.name, "seed": self.seed,
            **self.init_options,
        }

    def num_params(self, effective: bool = True) -> int:
        """See :func:`lstmlab.core.init.count_params`."""
        return count_params(self.spec if self.kind == "lstm" else self.kind, self.input_size,
                            self.hidden_size, self.num_layers, self.bidirectional, effective)

    def __repr__(self) -> str:
        v = self.variant or self.spec
        return (f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"variant={v!r}, num_layers={self.num_layers}, bidirectional={self.bidirectional}, "
                f"dropout={self.dropout}, dtype={self.dtype.name})")

    def _state_shape(self, B):
        return (self.num_layers * self.num_directions, B, self.hidden_size)

    def _unpack_state(self, state, B, name):
        """Validate a user state (tuple for LSTM, array otherwise) into a list of arrays."""
        shape = self._state_shape(B)
        names = ("h0", "c0") if self.kind == "lstm" else ("h0",)
        if name == "dstate":
            names = tuple("d" + n.replace("0", "_n") for n in names)
        if state is None:
            return [np.zeros(shape, dtype=self.dtype) for _ in names]
        if self.kind == "lstm":
            if not (isinstance(state, (tuple, list)) and len(state) == 2):
                raise ValueError(f"{name}: expected a pair ({names[0]}, {names[1]}) of arrays {shape}")
            return [check_array(n, s, shape, self.dtype) for n, s in zip(names, state)]
        return [check_array(names[0], state, shape, self.dtype)]

    def _pack_state(self, arrays):
        return tuple(arrays) if self.kind == "lstm" else arrays[0]

    # -- forward -------------------------------------------------------------------------------
    def forward(self, x, state=None, lengths=None, *, training: bool = False,
                rng: np.random.Generator | None = None):
        """Run the layer over a batch of sequences.

        Parameters
        ----------
        x : (T, B, input_size) time-major input, or (T, B) integer token ids in
            ``[0, input_size)`` standing for their one-hot vectors (the first layer's input
            projection is then a gather of columns of W_ih, and backward returns no dx).
        state : initial state, ``(h0, c0)`` for LSTM, ``h0`` for GRU/RNN, each
            (num_layers * num_directions, B, H); zeros when None.
        lengths : (B,) integers in [1, T] or None. Steps at and after a sequence's length are
            padding: their outputs are zero and they leave state and gradients alone.
        training : apply dropout between layers (inverted dropout with probability ``dropout``).
        rng : Generator for the dropout masks (default: the layer's own stream from its seed).

        Returns
        -------
        y : (T, B, num_directions * H) outputs of the top layer.
        state_n : final state, same structure and shapes as ``state``.
        cache : :class:`SequenceCache` for :meth:`backward` and for looking inside.
        """
        x = check_ids("x", x, self.input_size) if is_ids(x) else \
            check_array("x", x, (None, None, self.input_size), self.dtype)
        T, B = x.shape[:2]
        lengths = check_lengths(lengths, T, B)
        states = self._unpack_state(state, B, "state")
        mask = None
        if lengths is not None:
            mask = (np.arange(T)[:, None] < lengths[None, :]).astype(self.dtype)    # (T, B)
        loops = _loops(self.backend)
        cache = SequenceCache(self.kind, self.hidden_size, T, B, lengths, mask)
        finals = [np.empty(self._state_shape(B), dtype=self.dtype) for _ in states]
        layer_in = x
        for k in range(self.num_layers):
            outs, dcs = [], []
            for d in range(self.num_directions):
                j = k * self.num_directions + d
                xin = layer_in if d == 0 else reverse_within_lengths(layer_in, lengths)
                loop = self._loop_forward(loops, k, d, xin, [s[j] for s in states], mask)
                y_d = loop[0][1:] if mask is None else loop[0][1:] * mask[:, :, None]
                for f, s in zip(finals, self._final_states(loop)):
                    f[j] = s
                outs.append(y_d if d == 0 else reverse_within_lengths(y_d, lengths))
                dcs.append(_DirectionCache(xin, loop))
            cache.dirs.append(dcs)
            layer_in = outs[0] if len(outs) == 1 else np.concatenate(outs, axis=2)
            drop = None
            if training and self.dropout > 0 and k < self.num_layers - 1:
                gen = rng if rng is not None else self.dropout_rng
                keep = 1.0 - self.dropout
                drop = ((gen.random(layer_in.shape) < keep) / keep).astype(self.dtype)
                layer_in = layer_in * drop
            cache.dropout_masks.append(drop)
        return layer_in, self._pack_state(finals), cache

    def _final_states(self, loop):
        return (loop[0][-1], loop[1][-1]) if self.kind == "lstm" else (loop[0][-1],)

    def _loop_forward(self, loops, k, d, x, init, mask):
        p = self._direction_params(k, d)
        # input projection of all steps in one 2-D matrix product; the biases that add up front
        # (both for LSTM and RNN, only b_ih for GRU, whose b_hn sits under the reset gate)
        bias = p["bias_ih"] if self.kind == "gru" else p["bias_ih"] + p["bias_hh"]
        xp = loops.input_projection(x, p["weight_ih"], bias)                          # (T, B, G*H)
        if self.kind == "lstm":
            return loops.lstm_loop_forward(self.spec, xp, p["weight_hh"], p.get("peep"),
                                           p.get("weight_gg"), init[0], init[1], mask,
                                           overwrite_xp=True)   # xp is ours: G may take it
        if self.kind == "gru":
            return loops.gru_loop_forward(xp, p["weight_hh"], p["bias_hh"], init[0], mask)
        return (loops.rnn_loop_forward(xp, p["weight_hh"], init[0], mask),)

    def _direction_params(self, k, d) -> dict[str, np.ndarray]:
        """Layer k, direction d's arrays under their short names, the peepholes as one (3, H)."""
        names = _direction_names(tuple(self.params), k, d)
        p = {n: self.params[full] for n, full in names.items()}
        if self.kind == "lstm" and self.spec.peephole:
            p["peep"] = np.array([p.pop(n) for n in ("weight_ci", "weight_cf", "weight_co")])
        return p

    # -- backward ------------------------------------------------------------------------------
    def backward(self, dy, cache: SequenceCache, dstate=None, *, input_grad: bool = True,
                 return_internals: bool = False, peephole_error: bool = True):
        """Backpropagation through time.

        Parameters
        ----------
        dy : (T, B, num_directions * H) gradient of the loss with respect to ``y``.
        cache : what :meth:`forward` returned.
        dstate : gradient with respect to the final state (same structure as the state), or None.
        input_grad : False skips ``dx`` (returned as None), as PyTorch does for an input that
            does not require grad: the first layer of a model never needs the gradient of its
            data, and ``dx = dxp W_ih`` is one of the largest products of the backward pass.
        return_internals : also return the per-step state gradients (see below).
        peephole_error : False gives the truncated gradient of Gers et al. (2002): no error flows
            back through the peephole connections, i.e. the terms ``dz_o,t w_co`` of dL/dc_t and
            ``dz_i,t w_ci + dz_f,t w_cf`` of dL/dc_{t-1} are dropped, as if the gates read a
            constant copy of the cell state; the peephole weights still get ``sum dz c``. Not the
            gradient of the loss (a gradient check fails by design). Only for LSTM cells.

        Returns
        -------
        dx : (T, B, input_size), or None with ``input_grad=False`` or token ids for x;
        dstate0 : gradient with respect to the initial state; grads : dict with the same keys
        and shapes as ``params``.
        With ``return_internals=True`` a fourth item, ``step_grads[layer][direction]``: a dict
        with ``"h"`` (dL/dh_t, through the output and every later step) and, for LSTM cells,
        ``"c"`` (dL/dc_t of the cell state carried on, h_t held fixed), each (T, B, H) in input
        time order and zero at padded steps (:func:`lstmlab.core.cells.state_gradients`; the
        same numbers from either backend).
        """
        if not isinstance(cache, SequenceCache):
            raise ValueError("cache: expected the SequenceCache returned by forward()")
        if not peephole_error and self.kind != "lstm":
            raise ValueError(f"peephole_error: only LSTM cells have peepholes, not {self.kind}")
        T, B, H = cache.T, cache.B, self.hidden_size
        dy = check_array("dy", dy, (T, B, self.num_directions * H), self.dtype)
        dfinal = self._unpack_state(dstate, B, "dstate")
        loops = _loops(self.backend)
        grads: dict[str, np.ndarray] = {}           # one entry per parameter, from _loop_backward
        dinit = [np.empty(self._state_shape(B), dtype=self.dtype) for _ in dfinal]
        dlayer = dy
        step_grads = [[None] * self.num_directions for _ in range(self.num_layers)]
        for k in range(self.num_layers - 1, -1, -1):
            if cache.dropout_masks[k] is not None:
                dlayer = dlayer * cache.dropout_masks[k]
            dx = None
            for d in range(self.num_directions):
                j = k * self.num_directions + d
                dy_d = dlayer[:, :, d * H:(d + 1) * H]
                if d == 1:
                    dy_d = reverse_within_lengths(dy_d, cache.lengths)
                dx_d, d0, sg = self._loop_backward(loops, k, d, cache.dirs[k][d], cache.mask,
                                                   dy_d, [s[j] for s in dfinal], grads,
                                                   input_grad or k > 0, return_internals,
                                                   peephole_error)
                if sg is not None:
                    step_grads[k][d] = sg if d == 0 else \
                        {n: reverse_within_lengths(v, cache.lengths) for n, v in sg.items()}
                for dst, src in zip(dinit, d0):
                    dst[j] = src
                if dx_d is None:
                    continue
                if d == 1:
                    dx_d = reverse_within_lengths(dx_d, cache.lengths)
                dx = dx_d if dx is None else dx + dx_d
            dlayer = dx
        result = (dlayer, self._pack_state(dinit), {name: grads[name] for name in self.params})
        return (*result, step_grads) if return_internals else result

    def _loop_backward(self, loops, k, d, dc: _DirectionCache, mask, dY, dfinal, grads,
                       input_grad, step_grads=False, peephole_error=True):
        """BPTT of layer k, direction d; puts the gradients of that direction's parameters into
        ``grads`` (fresh arrays, each parameter once) and returns dx (or None), dstate0 and the
        per-step state gradients (None unless ``step_grads``)."""
        p = self._direction_params(k, d)
        if not peephole_error and "peep" in p:
            # the backward loops use the peephole weights only to carry error back into c
            # (the gates are stored from the forward), so zeros there cut exactly that flow
            p["peep"] = np.zeros_like(p["peep"])
        g = {}
        if self.kind == "lstm":
            Hs, Cs, G = dc.loop
            dxp, g["weight_hh"], dpeep, dR, dh0, dc0 = loops.lstm_loop_backward(
                self.spec, Hs, Cs, G, p["weight_hh"], p.get("peep"), p.get("weight_gg"), mask,
                dY, dfinal[0], dfinal[1])
            if dpeep is not None:
                g["weight_ci"], g["weight_cf"], g["weight_co"] = dpeep
            if dR is not None:
                g["weight_gg"] = dR
            d0 = (dh0, dc0)
        elif self.kind == "gru":
            Hs, G, HPn = dc.loop
            dxp, g["weight_hh"], g["bias_hh"], dh0 = loops.gru_loop_backward(
                Hs, G, HPn, p["weight_hh"], mask, dY, dfinal[0])
            d0 = (dh0,)
        else:
            dxp, g["weight_hh"], dh0 = loops.rnn_loop_backward(dc.loop[0], p["weight_hh"], mask, dY,
                                                               dfinal[0])
            d0 = (dh0,)
        sg = None
        if step_grads:          # before input_projection_backward, which may reuse dxp's memory
            sg = cells.state_gradients(self.kind, self.spec, dc.loop, dxp, p["weight_hh"],
                                       p.get("peep"), mask, dY, dfinal)
        dx, g["weight_ih"], db = loops.input_projection_backward(dxp, dc.x, p["weight_ih"],
                                                                 input_grad)
        g["bias_ih"] = db
        if self.kind != "gru":                 # b_ih and b_hh add up front: the same gradient
            g["bias_hh"] = db.copy()          # (a copy: in-place clipping must not apply twice)
        names = _direction_names(tuple(self.params), k, d)
        for n, v in g.items():
            grads[names[n]] = np.asarray(v, dtype=self.dtype)
        return dx, d0, sg

    # -- PyTorch interchange -------------------------------------------------------------------
    _torch_class = "LSTM"

    @classmethod
    def from_torch(cls, module, **kwargs):
        """Copy a ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (tanh, with biases) into a new layer."""
        import torch  # noqa: F401  (imported here only)

        tname = type(module).__name__
        if tname != cls._torch_class:
            raise ValueError(f"module: expected torch.nn.{cls._torch_class}, got {tname}")
        if not module.bias or getattr(module, "batch_first", False) or getattr(module, "proj_size", 0):
            raise ValueError("module: only bias=True, batch_first=False, proj_size=0 are supported")
        if cls.kind == "rnn" and module.nonlinearity != "tanh":
            raise ValueError("module: only nonlinearity='tanh' is supported")
        sd = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
        dtype = kwargs.pop("dtype", sd["weight_ih_l0"].dtype)
        if dtype not in (np.float32, np.float64):
            dtype = np.float64
        layer = cls(module.input_size, module.hidden_size, num_layers=module.num_layers,
                    bidirectional=module.bidirectional, dropout=float(module.dropout), dtype=dtype,
                    **kwargs)
        if set(sd) != set(layer.params):
            raise ValueError(f"module: parameter names {sorted(sd)} do not match {sorted(layer.params)}")
        for k, v in sd.items():
            layer.params[k] = np.ascontiguousarray(v, dtype=layer.dtype)
        return layer

    def to_torch(self):
        """A ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with a copy of these weights (same dtype)."""
        import torch

        if self.kind == "lstm" and self.spec != PRESETS["lstm"]:
            raise ValueError(f"variant: torch.nn.LSTM has no {self.variant or self.spec!r} cell; only 'lstm' converts")
        tdtype = torch.float64 if self.dtype == np.float64 else torch.float32
        m = getattr(torch.nn, self._torch_class)(self.input_size, self.hidden_size,
                                                 num_layers=self.num_layers,
                                                 bidirectional=self.bidirectional,
                                                 dropout=self.dropout, dtype=tdtype)
        m.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self.params.items()})
        return m


class LSTM(_Recurrent):
    """A (stacked, optionally bidirectional) layer of generalised LSTM cells.

    ``variant`` is a preset name (``lstm``, ``peephole``, ``nig``, ``nfg``, ``nog``, ``niaf``,
    ``noaf``, ``cifg``, ``fgr``) or a :class:`~lstmlab.core.spec.CellSpec`. Parameters follow
    ``torch.nn.LSTM``'s names and layouts (gate order i, f, g, o), plus ``weight_ci/cf/co_l{k}``
    (H,) for peepholes and ``weight_gg_l{k}`` (3H, 3H) for full gate recurrence.
    The state is ``(h, c)``.
    """

    kind = "lstm"
    _torch_class = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, variant="lstm", **kwargs):
        if isinstance(variant, str) and variant in ("gru", "rnn"):
            raise ValueError(f"variant: {variant!r} is its own class, use lstmlab.{variant.upper()}")
        super().__init__(input_size, hidden_size, variant, **kwargs)


class GRU(_Recurrent):
    """A (stacked, optionally bidirectional) GRU layer with ``torch.nn.GRU``'s equations and
    parameter layout (gate order r, z, n). The state is ``h``."""

    kind = "gru"
    _torch_class = "GRU"

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        kwargs.setdefault("variant", "gru")
        super().__init__(input_size, hidden_size, **kwargs)


class RNN(_Recurrent):
    """A (stacked, optionally bidirectional) tanh Elman RNN with ``torch.nn.RNN``'s layout.
    The state is ``h``."""

    kind = "rnn"
    _torch_class = "RNN"

    def __init__(self, input_size: int, hidden_size: int, **kwargs):
        kwargs.setdefault("variant", "rnn")
        super().__init__(input_size, hidden_size, **kwargs)
