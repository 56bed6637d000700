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


def init_direction(kind: str, spec: CellSpec | None, input_size: int, H: int, layer: int,
                   direction: int, seed: int, dtype, scheme: str, forget_bias: float | None,
                   peephole_init: str) -> dict[str, np.ndarray]:
    """Initial parameters of one (layer, direction), keyed by PyTorch-style names without suffix."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
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
