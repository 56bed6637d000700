"""Cell specifications: one frozen dataclass of flags covers every LSTM variant.

The generalised LSTM cell (gate order i, f, g, o as in PyTorch) computes, for one step::

    a      = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                    # (B, 4H) = [a_i, a_f, a_g, a_o]
    i      = sigma(a_i + w_ci * c_{t-1} + R_i q_{t-1})                # input gate   (1 if not input_gate)
    f      = sigma(a_f + w_cf * c_{t-1} + R_f q_{t-1})                # forget gate  (1 if not forget_gate,
                                                                      #               1 - i if coupled)
    g      = tanh(a_g)                                                # cell input   (a_g if not input_activation)
    c_t    = clip(f * c_{t-1} + i * g, -cell_clip, cell_clip)
    o      = sigma(a_o + w_co * c_t + R_o q_{t-1})                    # output gate  (1 if not output_gate)
    h_t    = o * tanh(c_t)                                            # (o * c_t if not output_activation)

The peephole terms ``w_c* * c`` are present when ``peephole`` is set; ``q_{t-1} = [i, f, o]_{t-1}``
(the previous step's gate activations, zero at the first step) feeds every gate when
``full_gate_recurrence`` is set, through ``R`` of shape (3H, 3H).

Presets follow Greff et al. (2017), "LSTM: A Search Space Odyssey": every variant except ``lstm``
(their "NP") is a modification of the peephole cell (their "V", Gers et al. 2002).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["CellSpec", "PRESETS", "resolve_spec", "cell_kind"]


@dataclass(frozen=True)
class CellSpec:
    """Flags of the generalised LSTM cell (see the module docstring for the equations).

    Attributes
    ----------
    peephole : bool
        Diagonal connections ``w_ci * c_{t-1}``, ``w_cf * c_{t-1}``, ``w_co * c_t`` into i, f, o.
    input_gate, forget_gate, output_gate : bool
        When False the gate is fixed to 1.
    input_activation, output_activation : bool
        tanh on the cell input ``g`` and on the cell output; identity when False.
    coupled : bool
        Coupled input and forget gate, ``f = 1 - i`` (CIFG).
    full_gate_recurrence : bool
        Every gate also receives the previous step's activations of all three gates (FGR).
    cell_clip : float or None
        Clip the cell state to ``[-cell_clip, cell_clip]`` after each update.
    """

    peephole: bool = False
    input_gate: bool = True
    forget_gate: bool = True
    output_gate: bool = True
    input_activation: bool = True
    output_activation: bool = True
    coupled: bool = False
    full_gate_recurrence: bool = False
    cell_clip: float | None = None

    def __post_init__(self):
        if self.coupled and not (self.input_gate and self.forget_gate):
            raise ValueError("spec: coupled (f = 1 - i) needs both input_gate and forget_gate")
        if self.cell_clip is not None and not self.cell_clip > 0:
            raise ValueError(f"cell_clip: expected a positive number or None, got {self.cell_clip!r}")

    @property
    def gate_used(self) -> tuple[bool, bool, bool, bool]:
        """Which of the four row blocks (i, f, g, o) of the weights take part in the computation."""
        return (self.input_gate, self.forget_gate and not self.coupled, True, self.output_gate)

    @property
    def peephole_used(self) -> tuple[bool, bool, bool]:
        """Which of the peephole vectors (w_ci, w_cf, w_co) take part in the computation."""
        if not self.peephole:
            return (False, False, False)
        return (self.input_gate, self.forget_gate and not self.coupled, self.output_gate)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> "CellSpec":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"spec: unknown fields {sorted(unknown)}")
        return cls(**d)


_V = CellSpec(peephole=True)
PRESETS: dict[str, CellSpec] = {
    "lstm": CellSpec(),                                   # Greff's NP; PyTorch's nn.LSTM
    "peephole": _V,                                       # Greff's V; Gers et al. 2002
    "nig": replace(_V, input_gate=False),
    "nfg": replace(_V, forget_gate=False),                # the 1997 cell (plus peepholes)
    "nog": replace(_V, output_gate=False),
    "niaf": replace(_V, input_activation=False),
    "noaf": replace(_V, output_activation=False),
    "cifg": replace(_V, coupled=True),
    "fgr": replace(_V, full_gate_recurrence=True),
}
OTHER_CELLS = ("gru", "rnn")


def cell_kind(variant) -> str:
    """'lstm' for every generalised-LSTM variant (preset name or CellSpec), else 'gru' or 'rnn'."""
    if isinstance(variant, CellSpec):
        return "lstm"
    if variant in OTHER_CELLS:
        return variant
    return "lstm"


def resolve_spec(variant) -> CellSpec:
    """Turn a preset name or a CellSpec into a CellSpec; unknown names raise ValueError."""
    if isinstance(variant, CellSpec):
        return variant
    if isinstance(variant, str) and variant in PRESETS:
        return PRESETS[variant]
    names = ", ".join(list(PRESETS) + list(OTHER_CELLS))
    raise ValueError(f"variant: expected one of {names} or a CellSpec, got {variant!r}")
