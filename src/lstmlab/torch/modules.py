"""``torch.nn`` modules for every cell of lstmlab: drop-in twins of nn.LSTM, nn.GRU, nn.RNN and
nn.LSTMCell with a ``variant=`` argument.

Constructor, forward signature, return values, parameter names, shapes and gate order are
PyTorch's (and the NumPy engine's), so one state dict moves between ``torch.nn.LSTM``,
``lstmlab.torch.LSTM`` and ``lstmlab.LSTM.params``. Variants add their own parameters under the
engine's names: ``weight_ci/cf/co_l{k}`` (H,) peepholes, ``weight_gg_l{k}`` (3H, 3H) full gate
recurrence.

A layer (k, direction d) computes, time-major,

    xp = x W_ih^T + b                # (T, B, G*H), one torch matrix product (b = b_ih + b_hh
                                     #  for LSTM and RNN, b_ih for GRU)
    Y, h_n[, c_n] = recurrence(xp, W_hh, ..., h0[, c0], mask)

with the recurrence on one of two paths that give the same numbers: on the CPU in float32 or
float64 the compiled kernels (:mod:`lstmlab.torch._compiled`), elsewhere (CUDA, other dtypes,
``torch.compile``, ``proj_size``, or ``backend="torch"``) the pure-torch equations of
:mod:`lstmlab.torch.functional`. The reverse direction runs each sequence reversed within its own
length; dropout (``training`` only) sits between layers, as in nn.LSTM.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..core.init import GATE_BLOCKS, param_name
from ..core.spec import cell_kind, resolve_spec
from . import functional as F_
from ._compiled import GRURecurrence, LSTMRecurrence, RNNRecurrence, kernels_available

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "BACKENDS"]

#: ``auto``: compiled kernels where they run (CPU, float32/float64, no projection), else pure
#: torch; ``torch``: always the pure-torch equations; ``compiled``: the kernels or a ValueError.
BACKENDS = ("auto", "torch", "compiled")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


def _check_bool(name, value):
    """True/False, or 1/0 as nn.LSTM takes them."""
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{name}: expected True or False, got {value!r}")


def _check_tensor(name, t, like):
    """``t`` a tensor of ``like``'s dtype and device (the module's parameters'), else ValueError."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype != like.dtype:
        raise ValueError(f"{name}: expected dtype {like.dtype} (the module's), got {t.dtype}")
    if t.device != like.device:
        raise ValueError(f"{name}: expected a tensor on {like.device} (the module's), got {t.device}")


def _spec_for(kind, variant):
    if kind == "lstm":
        if isinstance(variant, str) and variant in ("gru", "rnn"):
            raise ValueError(f"variant: {variant!r} is its own module, use "
                             f"lstmlab.torch.{variant.upper()}")
        return resolve_spec(variant)
    if cell_kind(variant) != kind:
        raise ValueError(f"variant: expected {kind!r} for lstmlab.torch.{kind.upper()}, got {variant!r}")
    return None


class _RecurrentBase(nn.Module):
    """Shared machinery of LSTM, GRU and RNN (``kind`` set by the subclass)."""

    kind = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None,
                 variant=None, backend="auto"):
        super().__init__()
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.num_layers = _check_int("num_layers", num_layers, 1)
        self.bias = _check_bool("bias", bias)
        self.batch_first = _check_bool("batch_first", batch_first)
        self.bidirectional = _check_bool("bidirectional", bidirectional)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1], got {dropout!r}")
        self.dropout = float(dropout)
        self.proj_size = _check_int("proj_size", proj_size, 0)
        if self.proj_size and self.kind != "lstm":
            raise ValueError(f"proj_size: only LSTM has a projection, got {proj_size!r}")
        if self.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size: expected less than hidden_size ({hidden_size}), got {proj_size}")
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
        self.backend = backend
        variant = self.kind if variant is None else variant
        self.spec = _spec_for(self.kind, variant)
        self.variant = variant if isinstance(variant, str) else self.spec
        factory = {"device": device, "dtype": dtype}
        G, H = GATE_BLOCKS[self.kind], self.hidden_size
        out = self.proj_size or H
        for k in range(self.num_layers):
            d_in = self.input_size if k == 0 else out * self.num_directions
            for d in range(self.num_directions):
                shapes = {"weight_ih": (G * H, d_in), "weight_hh": (G * H, out)}
                if self.bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                if self.proj_size:
                    shapes["weight_hr"] = (self.proj_size, H)
                if self.spec is not None and self.spec.peephole:
                    shapes.update(weight_ci=(H,), weight_cf=(H,), weight_co=(H,))
                if self.spec is not None and self.spec.full_gate_recurrence:
                    shapes["weight_gg"] = (3 * H, 3 * H)
                for base, shape in shapes.items():
                    self.register_parameter(param_name(base, k, d),
                                            nn.Parameter(torch.empty(shape, **factory)))
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters of each layer and direction, as nn.LSTM's ``all_weights``."""
        return [[p for n, p in self.named_parameters() if n.endswith(param_name("", k, d))]
                for k in range(self.num_layers) for d in range(self.num_directions)]

    def flatten_parameters(self) -> None:
        """Nothing to do (nn.LSTM compacts its weights for cuDNN here); kept so training
        scripts that call it run unchanged."""

    def reset_parameters(self) -> None:
        """PyTorch's initialisation: every parameter ~ U(-1/sqrt(H), 1/sqrt(H))."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.kind == "lstm":
            s += f", variant={self.variant!r}"
        for name, default in (("num_layers", 1), ("bias", True), ("batch_first", False),
                              ("dropout", 0.0), ("bidirectional", False), ("proj_size", 0),
                              ("backend", "auto")):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    # -- which path --------------------------------------------------------------------------
    def _compiled_ok(self, x) -> str | None:
        """None when the compiled kernels can run this input, else why not."""
        if x.device.type != "cpu":
            return f"the input is on {x.device}, the kernels run on the CPU"
        if x.dtype not in (torch.float32, torch.float64):
            return f"the kernels take float32 or float64, not {x.dtype}"
        if self.proj_size:
            return "the kernels have no projection (proj_size)"
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return "tracing or compiling runs the pure-torch equations"
        if not kernels_available():
            return "numba is not installed"
        return None

    def _use_compiled(self, x) -> bool:
        if self.backend == "torch":
            return False
        why = self._compiled_ok(x)
        if why is not None and self.backend == "compiled":
            raise ValueError(f"backend: 'compiled' cannot run here: {why}")
        return why is None

    # -- input and state ---------------------------------------------------------------------
    def _check_x(self, x, name="input"):
        _check_tensor(name, x, self.weight_ih_l0)

    def _state_sizes(self):
        n = self.num_layers * self.num_directions
        if self.kind == "lstm":
            return (("h_0", n, self.proj_size or self.hidden_size), ("c_0", n, self.hidden_size))
        return (("h_0", n, self.hidden_size),)

    def _states(self, hx, B, batched, like):
        """The initial states as (L*dirs, B, size) tensors (zeros when hx is None)."""
        sizes = self._state_sizes()
        if hx is None:
            return [like.new_zeros((n, B, size)) for _, n, size in sizes]
        if self.kind == "lstm":
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise ValueError("hx: expected a pair (h_0, c_0) of tensors")
            parts = list(hx)
        else:
            parts = [hx]
        out = []
        for (name, n, size), s in zip(sizes, parts):
            want = (n, B, size) if batched else (n, size)
            self._check_x(s, f"hx ({name})")
            if tuple(s.shape) != want:
                raise ValueError(f"hx ({name}): expected shape {want}, got {tuple(s.shape)}")
            out.append(s if batched else s.unsqueeze(1))
        return out

    # -- forward -----------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """``out, (h_n, c_n) = lstm(input, (h_0, c_0))`` (GRU and RNN: ``out, h_n``), as nn.LSTM:
        ``input`` (T, B, D), (B, T, D) with ``batch_first``, (T, D) unbatched, or a
        PackedSequence (then ``out`` is one too); states (num_layers * num_directions, B, H),
        (.., H) unbatched; ``out`` (T, B, num_directions * H) (P instead of H with proj_size)."""
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            self._check_x(input.data)
            x, lengths_cpu = pad_packed_sequence(input)                    # (T, B, D), original order
            lengths = lengths_cpu.to(x.device)
            batched = True
        else:
            self._check_x(input)
            if input.dim() not in (2, 3):
                raise ValueError(f"input: expected 3 dimensions (batched) or 2 (unbatched), got "
                                 f"shape {tuple(input.shape)}")
            batched = input.dim() == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"input: expected {self.input_size} features (input_size), got "
                             f"shape {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"input: empty sequence batch of shape {tuple(x.shape)}")
        T, B = x.shape[:2]
        states = self._states(hx, B, batched, x)
        mask = None
        if lengths is not None:
            mask = (torch.arange(T, device=x.device)[:, None] < lengths[None, :]).to(x.dtype)
        compiled = self._use_compiled(x)
        finals = [[] for _ in states]
        layer_in = x
        for k in range(self.num_layers):
            outs = []
            for d in range(self.num_directions):
                j = k * self.num_directions + d
                xin = layer_in if d == 0 else F_.reverse_within_lengths(layer_in, lengths)
                y, fin = self._direction(k, d, xin, [s[j] for s in states], mask, compiled)
                for f, s in zip(finals, fin):
                    f.append(s)
                outs.append(y if d == 0 else F_.reverse_within_lengths(y, lengths))
            layer_in = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
            if self.dropout > 0 and self.training and k < self.num_layers - 1:
                layer_in = nn.functional.dropout(layer_in, self.dropout, training=True)
        state_n = [torch.stack(f) for f in finals]                         # (L*dirs, B, size)
        if packed:
            order = input.sorted_indices
            ys = layer_in if order is None else layer_in.index_select(1, order)
            ls = lengths_cpu if order is None else lengths_cpu[order.cpu()]
            data = pack_padded_sequence(ys, ls, enforce_sorted=True).data
            out = PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                 input.unsorted_indices)
        elif not batched:
            out = layer_in.squeeze(1)
            state_n = [s.squeeze(1) for s in state_n]
        else:
            out = layer_in.transpose(0, 1) if self.batch_first else layer_in
        return out, (tuple(state_n) if self.kind == "lstm" else state_n[0])

    def _p(self, base, k, d):
        return getattr(self, param_name(base, k, d), None)

    def _direction(self, k, d, x, init, mask, compiled):
        """One layer and direction: (Y (T, B, out), final states)."""
        p = lambda base: self._p(base, k, d)                               # noqa: E731
        b_ih, b_hh = p("bias_ih"), p("bias_hh")
        H = self.hidden_size
        if self.kind == "gru":
            xp = nn.functional.linear(x, p("weight_ih"), b_ih)             # (T, B, 3H)
            bh = b_hh if b_hh is not None else x.new_zeros(3 * H)
            if compiled:
                y, h = GRURecurrence.apply(xp, p("weight_hh"), bh, init[0], mask)
            else:
                y, h = F_.gru_recurrence(xp, p("weight_hh"), bh, init[0], mask)
            return y, (h,)
        xp = nn.functional.linear(x, p("weight_ih"), None if b_ih is None else b_ih + b_hh)
        if self.kind == "rnn":
            if compiled:
                y, h = RNNRecurrence.apply(xp, p("weight_hh"), init[0], mask)
            else:
                y, h = F_.rnn_recurrence(xp, p("weight_hh"), init[0], mask)
            return y, (h,)
        peep = None
        if self.spec.peephole:
            peep = torch.stack([p("weight_ci"), p("weight_cf"), p("weight_co")])   # (3, H)
        R = p("weight_gg")
        if compiled:
            y, h, c = LSTMRecurrence.apply(self.spec, xp, p("weight_hh"), peep, R, init[0],
                                           init[1], mask)
        else:
            y, h, c = F_.lstm_recurrence(self.spec, xp, p("weight_hh"), peep, R, init[0], init[1],
                                         mask, p("weight_hr"))
        return y, (h, c)


class LSTM(_RecurrentBase):
    """``torch.nn.LSTM`` with every lstmlab cell: ``variant`` is a preset name (``lstm``,
    ``peephole``, ``nig``, ``nfg``, ``nog``, ``niaf``, ``noaf``, ``cifg``, ``fgr``) or a
    :class:`lstmlab.CellSpec` (equations in :func:`lstmlab.torch.functional.lstm_cell`).
    ``proj_size`` (LSTMP, ``weight_hr_l{k}``) works for every variant on the pure-torch path.
    ``backend``: see :data:`BACKENDS`."""

    kind = "lstm"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None,
                 variant="lstm", backend="auto"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, variant, backend)


class GRU(_RecurrentBase):
    """``torch.nn.GRU`` (gate order r, z, n) on lstmlab's paths."""

    kind = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None, variant="gru",
                 backend="auto"):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, variant, backend)


class RNN(_RecurrentBase):
    """``torch.nn.RNN`` with ``nonlinearity="tanh"`` (the only one) on lstmlab's paths."""

    kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None,
                 variant="rnn", backend="auto"):
        if nonlinearity != "tanh":
            raise ValueError(f"nonlinearity: only 'tanh' is supported, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, variant, backend)
        self.nonlinearity = nonlinearity


class LSTMCell(nn.Module):
    """``torch.nn.LSTMCell`` with every lstmlab cell except ``fgr`` (whose gates read the
    previous step's gates, which an (h, c) state does not carry: use :class:`LSTM`). Parameters
    ``weight_ih`` (4H, D), ``weight_hh`` (4H, H), ``bias_ih``, ``bias_hh``, and for peephole
    cells ``weight_ci/cf/co`` (H,). ``h_1, c_1 = cell(input, (h_0, c_0))``; input (B, D) or (D,).
    One step is a handful of torch operations: it runs on the pure-torch path."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None,
                 variant="lstm"):
        super().__init__()
        self.input_size = _check_int("input_size", input_size, 1)
        self.hidden_size = _check_int("hidden_size", hidden_size, 1)
        self.bias = _check_bool("bias", bias)
        self.spec = _spec_for("lstm", variant)
        if self.spec.full_gate_recurrence:
            raise ValueError("variant: fgr feeds the previous step's gates back, which an (h, c) "
                             "state cannot carry; use lstmlab.torch.LSTM")
        self.variant = variant if isinstance(variant, str) else self.spec
        factory = {"device": device, "dtype": dtype}
        H = hidden_size
        shapes = {"weight_ih": (4 * H, input_size), "weight_hh": (4 * H, H)}
        if bias:
            shapes.update(bias_ih=(4 * H,), bias_hh=(4 * H,))
        if self.spec.peephole:
            shapes.update(weight_ci=(H,), weight_cf=(H,), weight_co=(H,))
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        k = 1.0 / math.sqrt(H)
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, variant={self.variant!r}" + \
            ("" if self.bias else ", bias=False")

    def forward(self, input, hx=None):
        _check_tensor("input", input, self.weight_ih)
        if input.dim() not in (1, 2) or input.shape[-1] != self.input_size:
            raise ValueError(f"input: expected shape (B, {self.input_size}) or ({self.input_size},), "
                             f"got {tuple(input.shape)}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        B, H = x.shape[0], self.hidden_size
        if hx is None:
            h0 = c0 = x.new_zeros((B, H))
        else:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise ValueError("hx: expected a pair (h_0, c_0) of tensors")
            want = (B, H) if batched else (H,)
            for name, s in zip(("h_0", "c_0"), hx):
                _check_tensor(f"hx ({name})", s, self.weight_ih)
                if tuple(s.shape) != want:
                    raise ValueError(f"hx ({name}): expected shape {want}, got {tuple(s.shape)}")
            h0, c0 = (s if batched else s.unsqueeze(0) for s in hx)
        b = self.bias_ih + self.bias_hh if self.bias else None
        a = nn.functional.linear(x, self.weight_ih, b) + h0 @ self.weight_hh.T    # (B, 4H)
        peep = None
        if self.spec.peephole:
            peep = torch.stack([self.weight_ci, self.weight_cf, self.weight_co])
        h, c, _ = F_.lstm_cell(self.spec, a, c0, None, peep, None)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))

