"""ONNX export of lstmlab's recurrent layers (the engine's and their torch twins).

``export(model, path)`` writes a float32 graph with the engine's interface::

    inputs   x (T, B, D)                       time-major; T and B are dynamic
             h0, c0 (L * dirs, B, H)           with ``initial_state=True`` (c0 for LSTM cells)
             lengths (B,) int64                with ``lengths=True``: steps at and after a
                                               sequence's length are padding
    outputs  y (T, B, dirs * H)                zeros at padded steps
             h_n, c_n (L * dirs, B, H)         the state at each sequence's last valid step

Each layer and direction is one ONNX operator where the operator expresses the cell, else a
``Scan`` of elementary operators over the same equations:

- ``LSTM`` (one node per layer, both directions in it): ``lstm``; ``peephole`` (input ``P``,
  rows w_ci, w_co, w_cf); ``cifg`` (``input_forget=1``: f = 1 - i); ``niaf`` and ``noaf``
  (``Affine`` with alpha 1, beta 0, the identity, as the g or h activation), and their
  combinations. Weights are reordered from PyTorch's gate order i, f, g, o to ONNX's i, o, f, c.
- ``GRU`` with ``linear_before_reset=1`` (PyTorch's GRU; gates r, z, n reordered to z, r, h) and
  ``RNN`` (tanh).
- ``Scan`` for ``nig``, ``nfg``, ``nog`` (a gate fixed to 1, which no activation of the operator
  gives), ``fgr`` (gates fed back) and any spec with ``cell_clip``: the operator's ``clip``
  clips the activations' inputs, not the cell state. The reverse direction runs on each sequence
  reversed within its own length (``ReverseSequence``), as the engine does.
"""
from __future__ import annotations

import numpy as np

from .core.init import GATE_BLOCKS, param_name
from .core.spec import CellSpec

__all__ = ["export", "uses_operator", "OPSET"]

OPSET = 17
_F32 = np.float32


def uses_operator(spec: CellSpec) -> bool:
    """Whether ONNX's LSTM operator expresses the cell ``spec`` (else it exports as a Scan)."""
    return (spec.input_gate and spec.forget_gate and spec.output_gate
            and not spec.full_gate_recurrence and spec.cell_clip is None)


# ----------------------------------------------------------------------------------------------
# What is exported: a uniform description of the engine's and the torch twins' layers
# ----------------------------------------------------------------------------------------------

def _describe(model) -> dict:
    """kind, spec, sizes and the parameters (the engine's names, float32 NumPy) of ``model``."""
    from .core.layers import _Recurrent
    if isinstance(model, _Recurrent):
        params = {k: np.asarray(v, dtype=_F32) for k, v in model.params.items()}
        return dict(kind=model.kind, spec=model.spec, D=model.input_size, H=model.hidden_size,
                    L=model.num_layers, dirs=model.num_directions, params=params)
    try:
        from .torch.modules import _RecurrentBase
    except ImportError:                                        # torch missing: not a twin
        _RecurrentBase = ()
    if not (_RecurrentBase and isinstance(model, _RecurrentBase)):
        raise ValueError(f"model: expected lstmlab.LSTM, GRU or RNN or their lstmlab.torch "
                         f"twins, got {type(model).__name__}")
    if model.proj_size:
        raise ValueError("model: proj_size has no ONNX export (the LSTM operator has no projection)")
    params = {k: v.detach().cpu().double().numpy().astype(_F32)
              for k, v in model.state_dict().items()}
    G = GATE_BLOCKS[model.kind]
    for k in range(model.num_layers):
        for d in range(model.num_directions):
            for b in ("bias_ih", "bias_hh"):
                params.setdefault(param_name(b, k, d), np.zeros(G * model.hidden_size, dtype=_F32))
    return dict(kind=model.kind, spec=model.spec, D=model.input_size, H=model.hidden_size,
                L=model.num_layers, dirs=model.num_directions, params=params)


# ----------------------------------------------------------------------------------------------
# Graph building
# ----------------------------------------------------------------------------------------------

class _Builder:
    """Nodes and initialisers of one (sub)graph, with fresh names."""

    def __init__(self, prefix=""):
        from onnx import helper
        self.h = helper
        self.nodes, self.inits = [], []
        self.prefix, self.n = prefix, 0

    def name(self, base):
        self.n += 1
        return f"{self.prefix}{base}_{self.n}"

    def const(self, value, base="c", dtype=_F32):
        from onnx import numpy_helper
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type, inputs, n_out=1, base=None, **attrs):
        outs = [self.name(base or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _blocks(a, order, G):
    """Reorder the G gate blocks of a (G*H, ...) array (or (G*H,) vector) into ``order``."""
    parts = np.split(a, G, axis=0)
    return np.concatenate([parts[j] for j in order], axis=0)


_IFGO_TO_IOFC = (0, 3, 1, 2)
_RZN_TO_ZRH = (1, 0, 2)


def _operator_layer(g: _Builder, desc, k, x, seq_lens_i32, init_h, init_c):
    """One layer, both directions, as ONNX's LSTM / GRU / RNN node. Returns y (T, B, dirs*H) and
    the final states, each (dirs, B, H)."""
    kind, spec, H, dirs, p = desc["kind"], desc["spec"], desc["H"], desc["dirs"], desc["params"]
    sfx = [param_name("", k, d) for d in range(dirs)]                           # "_l{k}"[, "_reverse"]
    G = GATE_BLOCKS[kind]
    order = {"lstm": _IFGO_TO_IOFC, "gru": _RZN_TO_ZRH, "rnn": (0,)}[kind]
    W = np.stack([_blocks(p["weight_ih" + s], order, G) for s in sfx])          # (dirs, G*H, Din)
    R = np.stack([_blocks(p["weight_hh" + s], order, G) for s in sfx])          # (dirs, G*H, H)
    Bias = np.stack([np.concatenate([_blocks(p["bias_ih" + s], order, G),
                                     _blocks(p["bias_hh" + s], order, G)]) for s in sfx])
    inputs = [x, g.const(W, "W"), g.const(R, "R"), g.const(Bias, "B"), seq_lens_i32 or "",
              init_h or ""]
    attrs = dict(hidden_size=H, direction="bidirectional" if dirs == 2 else "forward")
    if kind == "lstm":
        inputs.append(init_c or "")
        if spec.peephole:
            P = np.stack([np.concatenate([p["weight_ci" + s], p["weight_co" + s], p["weight_cf" + s]])
                          for s in sfx])                                         # (dirs, 3H)
            inputs.append(g.const(P, "P"))
        acts, alpha, beta = [], [], []
        for _ in sfx:
            acts.append("Sigmoid")
            for used in (spec.input_activation, spec.output_activation):
                acts.append("Tanh" if used else "Affine")
                if not used:
                    alpha.append(1.0)
                    beta.append(0.0)
        attrs["activations"] = acts
        if alpha:
            attrs.update(activation_alpha=alpha, activation_beta=beta)
        if spec.coupled:
            attrs["input_forget"] = 1
        Y, Y_h, Y_c = g.op("LSTM", inputs, 3, base=f"lstm_l{k}", **attrs)
        finals = (Y_h, Y_c)
    elif kind == "gru":
        Y, Y_h = g.op("GRU", inputs, 2, base=f"gru_l{k}", linear_before_reset=1, **attrs)
        finals = (Y_h,)
    else:
        Y, Y_h = g.op("RNN", inputs, 2, base=f"rnn_l{k}", activations=["Tanh"] * dirs, **attrs)
        finals = (Y_h,)
    Yt = g.op("Transpose", [Y], perm=[0, 2, 1, 3])                              # (T, B, dirs, H)
    y = g.op("Reshape", [Yt, g.const(np.array([0, 0, -1]), "shape", np.int64)])  # (T, B, dirs*H)
    return y, finals


def _scan_body(spec: CellSpec, p, s, H, masked: bool):
    """The Scan body of one direction: state (h, c[, q]), scan inputs (xp_t[, m_t]); outputs the
    new state and y_t. Equations of :func:`lstmlab.torch.functional.lstm_cell`."""
    from onnx import TensorProto
    b = _Builder("body_")
    h = b.h
    fg = spec.full_gate_recurrence
    f32 = TensorProto.FLOAT
    state = ["h_prev", "c_prev"] + (["q_prev"] if fg else [])
    scans = ["xp_t"] + (["m_t"] if masked else [])
    a = b.op("Add", ["xp_t", b.op("MatMul", ["h_prev", b.const(p["weight_hh" + s].T, "WhhT")])])
    split4 = b.const(np.array([H] * 4), "split", np.int64)
    a_i, a_f, a_g, a_o = b.op("Split", [a, split4], 4, axis=1)
    if fg:
        r = b.op("MatMul", ["q_prev", b.const(p["weight_gg" + s].T, "RT")])        # (B, 3H)
        r_i, r_f, r_o = b.op("Split", [r, b.const(np.array([H] * 3), "split", np.int64)], 3, axis=1)
        a_i, a_f, a_o = b.op("Add", [a_i, r_i]), b.op("Add", [a_f, r_f]), b.op("Add", [a_o, r_o])
    if spec.peephole:
        a_i = b.op("Add", [a_i, b.op("Mul", ["c_prev", b.const(p["weight_ci" + s], "wci")])])
        a_f = b.op("Add", [a_f, b.op("Mul", ["c_prev", b.const(p["weight_cf" + s], "wcf")])])
    one = b.const(np.float32(1.0), "one")
    ones = b.op("Add", [b.op("Mul", ["c_prev", b.const(np.float32(0.0), "zero")]), one])
    i = b.op("Sigmoid", [a_i]) if spec.input_gate else ones
    if spec.coupled:
        f = b.op("Sub", [one, i])
    else:
        f = b.op("Sigmoid", [a_f]) if spec.forget_gate else ones
    gg = b.op("Tanh", [a_g]) if spec.input_activation else a_g
    c = b.op("Add", [b.op("Mul", [f, "c_prev"]), b.op("Mul", [i, gg])])
    if spec.cell_clip is not None:
        c = b.op("Clip", [c, b.const(np.float32(-spec.cell_clip), "lo"),
                          b.const(np.float32(spec.cell_clip), "hi")])
    if spec.output_gate:
        if spec.peephole:
            a_o = b.op("Add", [a_o, b.op("Mul", [c, b.const(p["weight_co" + s], "wco")])])
        o = b.op("Sigmoid", [a_o])
    else:
        o = ones
    sc = b.op("Tanh", [c]) if spec.output_activation else c
    hh = b.op("Mul", [o, sc])
    new = [hh, c] + ([b.op("Concat", [i, f, o], axis=1)] if fg else [])
    if masked:                                         # m * new + (1 - m) * old, per row
        keep = b.op("Sub", [one, "m_t"])
        new = [b.op("Add", [b.op("Mul", ["m_t", n]), b.op("Mul", [keep, old])])
               for n, old in zip(new, state)]
        y = b.op("Mul", ["m_t", new[0]])
    else:
        y = b.op("Identity", [new[0]])
    outs = [b.op("Identity", [n], base=f"{nm}_next") for n, nm in zip(new, "hcq")]
    widths = [H, H, 3 * H]
    vi = lambda n, w: h.make_tensor_value_info(n, f32, ["B", w])               # noqa: E731
    graph = h.make_graph(
        b.nodes, f"scan_{s}",
        [vi(n, w) for n, w in zip(state, widths)] + [vi("xp_t", 4 * H)]
        + ([vi("m_t", 1)] if masked else []),
        [vi(n, w) for n, w in zip(outs, widths)] + [vi(y, H)], b.inits)
    return graph, len(state), len(scans)


def _scan_layer(g: _Builder, desc, k, x, lengths, mask, init_h, init_c, zeros_bh):
    """One layer as one Scan per direction. Returns y (T, B, dirs*H) and finals (dirs, B, H)."""
    spec, H, dirs, p = desc["spec"], desc["H"], desc["dirs"], desc["params"]
    ys, hs, cs = [], [], []
    for d in range(dirs):
        s = param_name("", k, d)
        W1 = np.concatenate([p["weight_ih" + s].T, (p["bias_ih" + s] + p["bias_hh" + s])[None]])
        xin = x
        if d == 1 and lengths is not None:
            xin = g.op("ReverseSequence", [x, lengths], batch_axis=1, time_axis=0)
        ones = g.op("ConstantOfShape", [g.op("Shape", [g.op("Slice", [xin,
                    g.const([0], "s", np.int64), g.const([1], "e", np.int64),
                    g.const([2], "ax", np.int64)])])], value=g.h.make_tensor("one", 1, [1], [1.0]))
        xp = g.op("MatMul", [g.op("Concat", [xin, ones], axis=2), g.const(W1, "W1")])  # (T,B,4H)
        body, n_state, n_scan = _scan_body(spec, p, s, H, lengths is not None)
        pick = lambda s0: g.op("Gather", [s0, g.const(d, "d", np.int64)], axis=0)  # noqa: E731
        h0 = pick(init_h) if init_h else zeros_bh(H)                              # (B, H)
        c0 = pick(init_c) if init_c else zeros_bh(H)
        state0 = [h0, c0] + ([zeros_bh(3 * H)] if spec.full_gate_recurrence else [])
        scans = [xp] + ([mask] if lengths is not None else [])
        rev = int(d == 1 and lengths is None)
        outs = g.op("Scan", state0 + scans, n_state + 1, base=f"scan_l{k}", body=body,
                    num_scan_inputs=n_scan, scan_input_directions=[rev] * n_scan,
                    scan_output_directions=[rev])
        y = outs[-1]
        if d == 1 and lengths is not None:
            y = g.op("ReverseSequence", [y, lengths], batch_axis=1, time_axis=0)
        ys.append(y)
        axis0 = g.const([0], "ax", np.int64)
        hs.append(g.op("Unsqueeze", [outs[0], axis0]))
        cs.append(g.op("Unsqueeze", [outs[1], axis0]))
    y = ys[0] if dirs == 1 else g.op("Concat", ys, axis=2)
    cat = lambda a: a[0] if dirs == 1 else g.op("Concat", a, axis=0)        # noqa: E731
    return y, (cat(hs), cat(cs))


def build(model, *, initial_state: bool = False, lengths: bool = False, opset: int = OPSET):
    """The ONNX ModelProto of ``model`` (see :func:`export`)."""
    import onnx
    from onnx import TensorProto
    desc = _describe(model)
    for name, flag in (("initial_state", initial_state), ("lengths", lengths)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: expected True or False, got {flag!r}")
    if not (isinstance(opset, int) and opset >= 14):
        raise ValueError(f"opset: expected an integer >= 14, got {opset!r}")
    kind, spec, D, H, L, dirs = (desc[k] for k in ("kind", "spec", "D", "H", "L", "dirs"))
    g = _Builder()
    h = g.h
    n = L * dirs
    f32 = TensorProto.FLOAT
    inputs = [h.make_tensor_value_info("x", f32, ["T", "B", D])]
    names = ("h0", "c0") if kind == "lstm" else ("h0",)
    if initial_state:
        inputs += [h.make_tensor_value_info(nm, f32, [n, "B", H]) for nm in names]
    if lengths:
        inputs.append(h.make_tensor_value_info("lengths", TensorProto.INT64, ["B"]))
    lens = "lengths" if lengths else None
    lens32 = g.op("Cast", ["lengths"], to=TensorProto.INT32) if lengths else None
    mask = None
    if lengths:                                                      # (T, B, 1) float 0/1
        T_ = g.op("Gather", [g.op("Shape", ["x"]), g.const(0, "i", np.int64)], axis=0)
        steps = g.op("Range", [g.const(0, "zero", np.int64), T_, g.const(1, "one", np.int64)])
        less = g.op("Less", [g.op("Unsqueeze", [steps, g.const([1], "ax", np.int64)]),
                             g.op("Unsqueeze", ["lengths", g.const([0], "ax", np.int64)])])
        mask = g.op("Unsqueeze", [g.op("Cast", [less], to=f32), g.const([2], "ax", np.int64)])
    B_ = g.op("Slice", [g.op("Shape", ["x"]), g.const([1], "s", np.int64),
                        g.const([2], "e", np.int64)])

    def zeros_bh(width):
        shape = g.op("Concat", [B_, g.const([width], "w", np.int64)], axis=0)
        return g.op("ConstantOfShape", [shape], value=h.make_tensor("zero", f32, [1], [0.0]))

    scan = kind == "lstm" and not uses_operator(spec)
    layer_in, finals = "x", [[] for _ in names]
    for k in range(L):
        sl = lambda nm: g.op("Slice", [nm, g.const([k * dirs], "s", np.int64),         # noqa: E731
                                       g.const([(k + 1) * dirs], "e", np.int64),
                                       g.const([0], "ax", np.int64)]) if initial_state else None
        init_h, init_c = sl("h0"), (sl("c0") if kind == "lstm" else None)
        if scan:
            y, fin = _scan_layer(g, desc, k, layer_in, lens, mask, init_h, init_c, zeros_bh)
        else:
            y, fin = _operator_layer(g, desc, k, layer_in, lens32, init_h, init_c)
        if mask is not None:
            y = g.op("Mul", [y, mask])
        layer_in = y
        for f, s in zip(finals, fin):
            f.append(s)
    g.nodes.append(h.make_node("Identity", [layer_in], ["y"]))
    outputs = [h.make_tensor_value_info("y", f32, ["T", "B", dirs * H])]
    for nm, parts in zip(("h_n", "c_n"), finals):
        g.nodes.append(h.make_node("Concat", parts, [nm], axis=0) if len(parts) > 1
                       else h.make_node("Identity", parts, [nm]))
        outputs.append(h.make_tensor_value_info(nm, f32, [n, "B", H]))
    graph = h.make_graph(g.nodes, f"lstmlab_{kind}", inputs, outputs, g.inits)
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)],
                     producer_name="lstmlab")
    onnx.checker.check_model(m, full_check=True)
    return m


def export(model, path, *, initial_state: bool = False, lengths: bool = False,
           opset: int = OPSET):
    """Write ``model`` (``lstmlab.LSTM/GRU/RNN`` or an ``lstmlab.torch`` twin) to ``path`` as an
    ONNX model (float32; interface in the module docstring), checked with ``onnx.checker``;
    returns the ModelProto. ``initial_state`` adds the inputs h0 (and c0), ``lengths`` the
    (B,) int64 lengths. A torch twin's ``batch_first`` does not carry over: the graph is
    time-major, as the engine."""
    import onnx
    m = build(model, initial_state=initial_state, lengths=lengths, opset=opset)
    onnx.save(m, str(path))
    return m

