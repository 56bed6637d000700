"""Weight initialisation and parameter counting for the recurrent layers.

Schemes
-------
``uniform``  PyTorch's default: every weight and bias ~ U(-k, k), k = 1 / sqrt(H).
``xavier``   Glorot & Bengio (2010) per gate block: W ~ U(-a, a), a = sqrt(6 / (fan_in + H)); biases 0.

Then, for LSTM cells, the forget-gate bias is set to ``forget_bias`` (default 1.0, Jozefowicz et
al. 2015): ``b_ih[f] = forget_bias`` and ``b_hh[f] = 0``, so that f starts near sigmoid(1) = 0.73.
Peephole vectors start ``small`` (N(0, 0.1^2)) or ``zero``. Weight rows of gates that a variant
does not have (e.g. the input gate of ``nig``) are set to zero; they receive zero gradient.

Every (layer, direction) draws from its own stream ``default_rng([seed, layer, direction])`` and the
peephole and gate-recurrence weights from further streams, so a peephole and a plain LSTM built
with one seed share all their other initial weights.
"""
from __future__ import annotations

import numpy as np

from .spec import CellSpec

INIT_SCHEMES = ("uniform", "xavier")
PEEPHOLE_INITS = ("small", "zero")
GATES = "ifgo"
#: Gate blocks stacked in the rows of W_ih, W_hh and the biases of each cell kind.
GATE_BLOCKS = {"lstm": 4, "gru": 3, "rnn": 1}


def param_name(base: str, layer: int, direction: int) -> str:
    """PyTorch's name of a layer's parameter: ``weight_hh`` of layer 1, reverse direction ->
    ``weight_hh_l1_reverse`` (the engine, the torch front end and the ONNX export share it)."""
    return f"{base}_l{layer}" + ("_reverse" if direction == 1 else "")


def init_direction(kind: str, spec: CellSpec | None, input_size: int, H: int, layer: int,
                   direction: int, seed: int, dtype, scheme: str, forget_bias: float | None,
                   peephole_init: str) -> dict[str, np.ndarray]:
    """Initial parameters of one (layer, direction), keyed by PyTorch-style names without suffix."""
    G = GATE_BLOCKS[kind]
    rng = np.random.default_rng([seed, layer, direction])
    if scheme == "uniform":
        k = 1.0 / np.sqrt(H)
        p = {
            "weight_ih": rng.uniform(-k, k, (G * H, input_size)),
            "weight_hh": rng.uniform(-k, k, (G * H, H)),
            "bias_ih": rng.uniform(-k, k, G * H),
            "bias_hh": rng.uniform(-k, k, G * H),
        }
    elif scheme == "xavier":
        a_ih, a_hh = np.sqrt(6.0 / (input_size + H)), np.sqrt(6.0 / (2 * H))
        p = {
            "weight_ih": rng.uniform(-a_ih, a_ih, (G * H, input_size)),
            "weight_hh": rng.uniform(-a_hh, a_hh, (G * H, H)),
            "bias_ih": np.zeros(G * H),
            "bias_hh": np.zeros(G * H),
        }
    else:
        raise ValueError(f"init: expected one of {INIT_SCHEMES}, got {scheme!r}")
    if kind == "lstm":
        if forget_bias is not None:
            p["bias_ih"][H:2 * H] = forget_bias
            p["bias_hh"][H:2 * H] = 0.0
        if spec.peephole:
            if peephole_init not in PEEPHOLE_INITS:
                raise ValueError(f"peephole_init: expected one of {PEEPHOLE_INITS}, got {peephole_init!r}")
            prng = np.random.default_rng([seed, layer, direction, 1])
            for j, name in enumerate(("weight_ci", "weight_cf", "weight_co")):
                v = prng.normal(0.0, 0.1, H) if peephole_init == "small" else np.zeros(H)
                p[name] = v * spec.peephole_used[j]
        if spec.full_gate_recurrence:
            k = 1.0 / np.sqrt(H)
            p["weight_gg"] = np.random.default_rng([seed, layer, direction, 2]).uniform(-k, k, (3 * H, 3 * H))
        for j, used in enumerate(spec.gate_used):
            if not used:
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    p[name][j * H:(j + 1) * H] = 0.0
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in p.items()}


def count_params(variant="lstm", input_size: int = 1, hidden_size: int = 1, num_layers: int = 1,
                 bidirectional: bool = False, effective: bool = True) -> int:
    """Number of parameters of a recurrent layer.

    With ``effective=True`` (default) only independent parameters count: the two bias vectors of
    PyTorch's layout act as one (their sum is all that matters, except GRU's ``b_hn``, which the
    reset gate multiplies), and weights of gates a variant lacks are left out. For one LSTM layer
    with n units and d inputs this gives the textbook ``4n(n + d + 1)``, plus ``3n`` with
    peepholes. ``effective=False`` counts every stored number, as ``sum(p.numel())`` in PyTorch.
    """
    from .spec import cell_kind, resolve_spec

    kind = cell_kind(variant)
    n, dirs = hidden_size, 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        d = input_size if layer == 0 else n * dirs
        if kind == "lstm":
            spec = resolve_spec(variant)
            gates = sum(spec.gate_used) if effective else 4
            per = gates * n * (n + d) + gates * n * (1 if effective else 2)
            per += (sum(spec.peephole_used) if effective else 3 * spec.peephole) * n
            per += 9 * n * n if spec.full_gate_recurrence else 0
        elif kind == "gru":
            per = 3 * n * (n + d) + (4 * n if effective else 6 * n)
        else:
            per = n * (n + d) + (n if effective else 2 * n)
        total += per * dirs
    return total


def apply_init_levers(layer, init_range: float | None = None, zero_bias: bool = False,
                      gate_bias: dict | None = None) -> None:
    """Recipe levers on a built LSTM layer's initial weights, in place, every layer and direction.

    ``init_range = r``
        rescales the uniform scheme's U(-1/sqrt(H), 1/sqrt(H)) weights and biases to U(-r, r)
        (the paper's r = 0.1 in Gers et al. 2002) and sets the forget bias again afterwards;
    ``zero_bias``
        starts every bias at 0 except the forget gate's, so a cell stays quiet (c = h = 0) until
        input arrives;
    ``gate_bias = {"i": 0.0, "f": -2.0, "o": 2.0}``
        sets the summed bias ``b_ih + b_hh`` of the named gate blocks (``b_ih = value``,
        ``b_hh = 0``), for the gates the variant has.

    GRU and RNN layers accept only the defaults (the levers are LSTM gate settings).
    """
    gate_bias = dict(gate_bias or {})
    bad = set(gate_bias) - set(GATES)
    if bad:
        raise ValueError(f"gate_bias: keys must be among i, f, g, o; got {sorted(bad)}")
    if init_range is not None and not init_range > 0:
        raise ValueError(f"init_range: expected a positive number or None, got {init_range!r}")
    if layer.kind != "lstm":
        if init_range is not None or zero_bias or gate_bias:
            raise ValueError(f"init_range, zero_bias, gate_bias: LSTM settings, not for {layer.kind}")
        return
    H = layer.hidden_size
    forget_bias = layer.init_options["forget_bias"]
    for k in range(layer.num_layers):
        for d in range(layer.num_directions):
            name = lambda base: param_name(base, k, d)  # noqa: E731
            if init_range is not None:              # U(-1/sqrt(H), 1/sqrt(H)) -> U(-r, r)
                scale = init_range * np.sqrt(H) if layer.init_options["init"] == "uniform" else 1.0
                for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    layer.params[name(base)] *= scale
                if forget_bias is not None:
                    layer.params[name("bias_ih")][H:2 * H] = forget_bias
            if zero_bias:
                for base in ("bias_ih", "bias_hh"):
                    f_block = layer.params[name(base)][H:2 * H].copy()
                    layer.params[name(base)][...] = 0.0
                    layer.params[name(base)][H:2 * H] = f_block
            for gate, value in gate_bias.items():
                j = GATES.index(gate)
                if layer.spec.gate_used[j]:
                    layer.params[name("bias_ih")][j * H:(j + 1) * H] = value
                    layer.params[name("bias_hh")][j * H:(j + 1) * H] = 0.0
