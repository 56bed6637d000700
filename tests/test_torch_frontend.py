"""lstmlab.torch: nn.LSTM's twin for every cell, on the compiled and the pure-torch path.

Oracles: torch.nn.LSTM / GRU / RNN / LSTMCell for the cells they have (same state dict), and the
NumPy engine (lstmlab.LSTM, itself held to torch and to finite differences) for every preset.
"""
import subprocess
import sys

import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core.spec import PRESETS

from conftest import randomize

torch = pytest.importorskip("torch")
lt = pytest.importorskip("lstmlab.torch")

T, B, D, H = 6, 3, 2, 4
F64, F32 = torch.float64, torch.float32
TOL = {F64: 1e-10, F32: 1e-5}
BACKENDS = ("compiled", "torch")
CLASSES = {"lstm": (lt.LSTM, torch.nn.LSTM), "gru": (lt.GRU, torch.nn.GRU),
           "rnn": (lt.RNN, torch.nn.RNN)}


def _maxdiff(a, b):
    return float((a.detach().double() - b.detach().double()).abs().max())


def _states(kind, n, Bn, dtype, gen, unbatched=False):
    shape = (n, H) if unbatched else (n, Bn, H)
    s = [torch.randn(shape, dtype=dtype, generator=gen) for _ in range(2 if kind == "lstm" else 1)]
    return tuple(s) if kind == "lstm" else s[0]


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def _run(module, x, hx, weights, lengths=None):
    """Outputs, final states and the gradients of a fixed random functional of them with respect
    to the input, the initial states and every parameter (``lengths``: packed input)."""
    x = x.detach().clone().requires_grad_()
    hx = tuple(s.detach().clone().requires_grad_() for s in _flat(hx))
    xin = x if lengths is None else \
        torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, state = module(xin, hx if len(hx) == 2 else hx[0])
    data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    states = _flat(state)
    loss = (data * weights[0][:data.numel()].view_as(data)).sum()
    for s, w in zip(states, weights[1:]):
        loss = loss + (s * w[:s.numel()].view_as(s)).sum()
    names = [n for n, _ in module.named_parameters()]
    grads = torch.autograd.grad(loss, [x, *hx, *module.parameters()])
    return [data, *states], dict(zip(["x", *[f"s{i}" for i in range(len(hx))], *names], grads))


def _compare(mine, ref, tol):
    (a_out, a_grads), (b_out, b_grads) = mine, ref
    for a, b in zip(a_out, b_out):
        assert a.shape == b.shape and _maxdiff(a, b) < tol
    assert set(b_grads) <= set(a_grads)
    for k in b_grads:
        assert _maxdiff(a_grads[k], b_grads[k]) < tol, k


def _weights(dtype, gen):
    return [torch.randn(4096, dtype=dtype, generator=gen) for _ in range(3)]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layout", ["time", "batch_first", "packed", "unbatched"])
def test_equals_torch_nn(kind, dtype, backend, layout):
    """Outputs, final states and every gradient equal torch.nn's with the same state dict: two
    layers, both directions, dropout off; time-major, batch-first, packed and unbatched input."""
    gen = torch.Generator().manual_seed(7)
    mine_cls, ref_cls = CLASSES[kind]
    kw = dict(num_layers=2, bidirectional=True, batch_first=layout == "batch_first", dtype=dtype)
    ref = ref_cls(D, H, **kw)
    mine = mine_cls(D, H, backend=backend, **kw)
    mine.load_state_dict(ref.state_dict())
    n = 4
    if layout == "unbatched":
        x, hx = torch.randn(T, D, dtype=dtype, generator=gen), _states(kind, n, 1, dtype, gen, True)
    else:
        x = torch.randn(T, B, D, dtype=dtype, generator=gen)
        hx = _states(kind, n, B, dtype, gen)
        if layout == "batch_first":
            x = x.transpose(0, 1).contiguous()
    w = _weights(dtype, gen)
    lengths = torch.tensor([4, T, 2]) if layout == "packed" else None
    _compare(_run(mine, x, hx, w, lengths), _run(ref, x, hx, w, lengths), TOL[dtype])


def _engine_and_module(variant, backend, rng, hidden=H, **kw):
    cls = {"gru": ll.GRU, "rnn": ll.RNN}.get(variant, ll.LSTM)
    eng = randomize(cls(D, hidden, variant=variant, num_layers=2, bidirectional=True, seed=2,
                        backend="reference", **kw), rng)
    tcls = {"gru": lt.GRU, "rnn": lt.RNN}.get(variant, lt.LSTM)
    mod = tcls(D, hidden, num_layers=2, bidirectional=True, dtype=F64, variant=variant,
               backend=backend)
    mod.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in eng.params.items()})
    return eng, mod


@pytest.mark.parametrize("variant", list(PRESETS) + ["gru", "rnn"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_preset_equals_the_engine(variant, backend, rng):
    """Both paths equal the NumPy engine to 1e-10 in float64: outputs, final states, gradients of
    input, states and every parameter; 2 layers, both directions, sequences of unequal length."""
    _assert_equals_engine(variant, backend, rng, H)


@pytest.mark.parametrize("variant", ["peephole", "fgr", "cifg"])
def test_large_lstm_runs_its_steps_on_torchs_team(variant, rng, monkeypatch):
    """H = 40 (the kernels' per-step BLAS path) on two torch threads: each step's elementwise
    kernel runs on torch's OpenMP team (the team's run is called), and the module still equals
    the NumPy engine to 1e-10."""
    from lstmlab.kernels import OpenMPTeam
    from lstmlab.torch import _compiled

    if _compiled._gomp_parallel() is None:
        pytest.skip("this torch ships no libgomp (torch/lib/libgomp.so.1)")
    calls = []
    run = OpenMPTeam.run
    monkeypatch.setattr(OpenMPTeam, "run", lambda self, *a: (calls.append(self.threads),
                                                             run(self, *a)))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _assert_equals_engine(variant, "compiled", rng, 40)
    finally:
        torch.set_num_threads(threads)
    assert calls and set(calls) == {2}          # 2 layers x 2 directions x T steps, both ways
    assert len(calls) == 2 * 2 * 2 * T


def _assert_equals_engine(variant, backend, rng, H):
    eng, mod = _engine_and_module(variant, backend, rng, H)
    lengths = np.array([T, 2, 5])
    x = rng.normal(size=(T, B, D))
    kind = "lstm" if variant not in ("gru", "rnn") else variant
    state = [rng.normal(size=(4, B, H)) for _ in range(2 if kind == "lstm" else 1)]
    pack_state = (lambda s: tuple(s)) if kind == "lstm" else (lambda s: s[0])
    Ry = rng.normal(size=(T, B, 2 * H)) * (np.arange(T)[:, None] < lengths)[:, :, None]
    Rs = [rng.normal(size=(4, B, H)) for _ in state]
    y, sn, cache = eng.forward(x, pack_state(state), lengths)
    dx, d0, grads = eng.backward(Ry, cache, pack_state(Rs))

    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in state]
    packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), enforce_sorted=False)
    out, tsn = mod(packed, pack_state(ts))
    ty, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    loss = (ty * torch.tensor(Ry)).sum() + sum((s * torch.tensor(R)).sum()
                                               for s, R in zip(_flat(tsn), Rs))
    tg = torch.autograd.grad(loss, [tx, *ts, *mod.parameters()], allow_unused=True)
    tol = 1e-10
    assert np.abs(y - ty.detach().numpy()).max() < tol
    for a, b in zip(_flat(sn), _flat(tsn)):
        assert np.abs(a - b.detach().numpy()).max() < tol
    assert np.abs(dx - tg[0].numpy()).max() < tol
    for a, b in zip(_flat(d0), tg[1:1 + len(ts)]):
        assert np.abs(a - b.numpy()).max() < tol
    for (name, _), g in zip(mod.named_parameters(), tg[1 + len(ts):]):
        g = np.zeros_like(grads[name]) if g is None else g.numpy()
        assert np.abs(grads[name] - g).max() < tol, name


@pytest.mark.parametrize("variant", list(PRESETS) + ["gru", "rnn"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_every_preset(variant, backend):
    """torch.autograd.gradcheck (finite differences against the backward) on both paths, with
    lengths, both directions and initial states."""
    gen = torch.Generator().manual_seed(3)
    kind = "lstm" if variant not in ("gru", "rnn") else variant
    cls = CLASSES[kind][0]
    mod = cls(2, 3, bidirectional=True, dtype=F64, variant=variant, backend=backend)
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(torch.randn(p.shape, dtype=F64, generator=gen) * 0.5)
    x = torch.randn(4, 2, 2, dtype=F64, generator=gen, requires_grad=True)
    h0 = torch.randn(2, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    c0 = torch.randn(2, 2, 3, dtype=F64, generator=gen, requires_grad=True)
    lengths = torch.tensor([4, 2])
    names = [n for n, _ in mod.named_parameters()]

    def f(x, h0, c0, *params):
        sd = dict(zip(names, params))
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, st = torch.func.functional_call(mod, sd, (packed, (h0, c0) if kind == "lstm" else h0))
        return (out.data, *_flat(st))

    params = [p.detach().clone().requires_grad_() for p in mod.parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, c0, *params), eps=1e-6, atol=1e-7)


def test_double_backward_on_the_compiled_path():
    """create_graph on the compiled path recomputes through the pure-torch equations:
    gradgradcheck passes, and the second derivatives equal the pure path's."""
    gen = torch.Generator().manual_seed(5)
    mods = [lt.LSTM(2, 3, dtype=F64, variant="peephole", backend=b) for b in BACKENDS]
    mods[1].load_state_dict(mods[0].state_dict())
    x = torch.randn(4, 2, 2, dtype=F64, generator=gen, requires_grad=True)
    f = lambda m: (lambda x: m(x)[0])                                      # noqa: E731
    assert torch.autograd.gradgradcheck(f(mods[0]), (x,), eps=1e-6, atol=1e-6)
    hv = []
    for m in mods:
        g, = torch.autograd.grad(m(x)[0].pow(2).sum(), x, create_graph=True)
        hv.append(torch.autograd.grad(g.sum(), x)[0])
    assert _maxdiff(*hv) < 1e-12


def test_state_dict_moves_between_nn_lstm_module_and_engine(rng):
    ref = torch.nn.LSTM(D, H, num_layers=2, dtype=F64)
    mod = lt.LSTM(D, H, num_layers=2, dtype=F64)
    mod.load_state_dict(ref.state_dict())
    eng = ll.LSTM(D, H, num_layers=2)
    assert set(eng.params) == set(mod.state_dict())
    for k, v in mod.state_dict().items():
        eng.params[k] = v.numpy().copy()
    x = rng.normal(size=(T, B, D))
    y, _, _ = eng.forward(x)
    assert np.abs(y - ref(torch.tensor(x))[0].detach().numpy()).max() < 1e-12
    back = torch.nn.LSTM(D, H, num_layers=2, dtype=F64)
    back.load_state_dict({k: torch.from_numpy(v) for k, v in eng.params.items()})
    # the peephole twin holds nn.LSTM's weights plus its own
    peep = lt.LSTM(D, H, num_layers=2, dtype=F64, variant="peephole")
    missing = peep.load_state_dict(ref.state_dict(), strict=False).missing_keys
    assert sorted(missing) == sorted(f"weight_c{g}_l{k}" for g in "ifo" for k in range(2))


@pytest.mark.parametrize("variant", ["lstm", "peephole", "cifg", "fgr"])
def test_projection(variant):
    """proj_size (LSTMP): equals torch.nn.LSTM for 'lstm', and gradcheck passes for the variants
    (the pure-torch path: the kernels have no projection)."""
    gen = torch.Generator().manual_seed(11)
    kw = dict(num_layers=2, bidirectional=True, proj_size=2, dtype=F64)
    mod = lt.LSTM(D, H, variant=variant, **kw)
    x = torch.randn(T, B, D, dtype=F64, generator=gen)
    out, (h, c) = mod(x)
    assert out.shape == (T, B, 4) and h.shape == (4, B, 2) and c.shape == (4, B, H)
    if variant == "lstm":
        ref = torch.nn.LSTM(D, H, **kw)
        mod.load_state_dict(ref.state_dict())
        hx = (torch.randn(4, B, 2, dtype=F64, generator=gen),
              torch.randn(4, B, H, dtype=F64, generator=gen))
        w = _weights(F64, gen)
        _compare(_run(mod, x, hx, w), _run(ref, x, hx, w), 1e-10)
    with pytest.raises(ValueError, match="backend"):
        lt.LSTM(D, H, variant=variant, proj_size=2, dtype=F64, backend="compiled")(x)
    small = lt.LSTM(2, 3, variant=variant, proj_size=1, dtype=F64)
    xs = torch.randn(3, 2, 2, dtype=F64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: small(x)[0], (xs,), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("variant", ["lstm", "peephole", "nog", "cifg"])
def test_lstm_cell(variant):
    """LSTMCell equals nn.LSTMCell ('lstm') and one step of lstmlab.torch.LSTM (every variant)."""
    gen = torch.Generator().manual_seed(4)
    cell = lt.LSTMCell(D, H, dtype=F64, variant=variant)
    seq = lt.LSTM(D, H, dtype=F64, variant=variant)
    seq.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(B, D, dtype=F64, generator=gen)
    h0, c0 = torch.randn(B, H, dtype=F64, generator=gen), torch.randn(B, H, dtype=F64, generator=gen)
    h, c = cell(x, (h0, c0))
    _, (hs, cs) = seq(x[None], (h0[None], c0[None]))
    assert _maxdiff(h, hs[0]) < 1e-12 and _maxdiff(c, cs[0]) < 1e-12
    hu, cu = cell(x[0], (h0[0], c0[0]))
    assert hu.shape == (H,) and _maxdiff(hu, h[0]) < 1e-12
    if variant == "lstm":
        ref = torch.nn.LSTMCell(D, H, dtype=F64)
        ref.load_state_dict(cell.state_dict())
        hr, cr = ref(x, (h0, c0))
        assert _maxdiff(h, hr) < 1e-12 and _maxdiff(c, cr) < 1e-12


def test_dropout_between_layers_only_in_training():
    gen = torch.Generator().manual_seed(2)
    m = lt.LSTM(D, H, num_layers=2, dropout=0.5, dtype=F64)
    x = torch.randn(T, B, D, dtype=F64, generator=gen)
    m.eval()
    a, b = m(x)[0], m(x)[0]
    assert torch.equal(a, b)
    m.train()
    torch.manual_seed(0)
    c = m(x)[0]
    torch.manual_seed(1)
    d = m(x)[0]
    assert not torch.equal(c, d) and not torch.equal(c, a)


def test_module_matches_across_paths_in_float32():
    gen = torch.Generator().manual_seed(9)
    mods = [lt.LSTM(D, 40, num_layers=2, variant="peephole", backend=b) for b in BACKENDS]
    mods[1].load_state_dict(mods[0].state_dict())
    x = torch.randn(T, B, D, generator=gen)
    hx = _states("lstm", 2, B, F32, gen)
    hx = (hx[0][:, :, :1].expand(2, B, 40).contiguous(), hx[1][:, :, :1].expand(2, B, 40).contiguous())
    w = _weights(F32, gen)
    _compare(_run(mods[0], x, hx, w), _run(mods[1], x, hx, w), 1e-5)


def test_bad_input_raises_value_error_naming_the_argument():
    m = lt.LSTM(D, H, num_layers=2, dtype=F64)
    x = torch.zeros(T, B, D, dtype=F64)
    cases = [
        (lambda: m(torch.zeros(T, B, D, 1, dtype=F64)), "input"),
        (lambda: m(torch.zeros(T, B, D + 1, dtype=F64)), "input_size"),
        (lambda: m(x.float()), "input: expected dtype"),
        (lambda: m(x.numpy()), "input"),
        (lambda: m(x, (torch.zeros(2, B, H, dtype=F64), torch.zeros(1, B, H, dtype=F64))), r"hx \(c_0\)"),
        (lambda: m(x, torch.zeros(2, B, H, dtype=F64)), "hx"),
        (lambda: m(x, (torch.zeros(2, B, H), torch.zeros(2, B, H))), r"hx \(h_0\)"),
        (lambda: m(torch.zeros(0, B, D, dtype=F64)), "input"),
        (lambda: lt.LSTM(D, H, variant="bogus"), "variant"),
        (lambda: lt.LSTM(D, H, variant="gru"), "variant"),
        (lambda: lt.GRU(D, H, variant="peephole"), "variant"),
        (lambda: lt.LSTM(D, H, proj_size=H), "proj_size"),
        (lambda: lt.LSTM(0, H), "input_size"),
        (lambda: lt.LSTM(D, H, dropout=1.5), "dropout"),
        (lambda: lt.LSTM(D, H, backend="gpu"), "backend"),
        (lambda: lt.RNN(D, H, nonlinearity="relu"), "nonlinearity"),
        (lambda: lt.LSTMCell(D, H, variant="fgr"), "variant"),
        (lambda: lt.LSTMCell(D, H)(torch.zeros(B, D + 1)), "input"),
        (lambda: lt.LSTMCell(D, H)(torch.zeros(B, D, dtype=F64)), "input"),
        (lambda: lt.LSTMCell(D, H)(torch.zeros(B, D), torch.zeros(B, H)), "hx"),
        (lambda: lt.LSTM(D, H, dtype=torch.float16, backend="compiled")(torch.zeros(T, B, D, dtype=torch.float16)), "backend"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_nn_lstm_conveniences():
    """What training scripts written for nn.LSTM call: flatten_parameters, all_weights, 0/1 flags."""
    m = lt.LSTM(D, H, num_layers=2, bidirectional=1, batch_first=0, variant="peephole")
    m.flatten_parameters()
    assert m.bidirectional is True and m.batch_first is False
    assert len(m.all_weights) == 4 and all(len(w) == 7 for w in m.all_weights)
    assert m.all_weights[1][0] is m.weight_ih_l0_reverse and m.all_weights[2][0] is m.weight_ih_l1


def test_other_dtypes_run_on_the_pure_path():
    m = lt.LSTM(D, H, dtype=torch.bfloat16, variant="peephole")
    out, (h, c) = m(torch.randn(T, B, D, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_import_needs_torch_not_numba():
    """With numba made unimportable the front end imports and runs (on the pure-torch path)."""
    code = ("import sys; sys.modules['numba'] = None\n"
            "import torch, lstmlab.torch as lt\n"
            "m = lt.LSTM(2, 3, variant='peephole', dtype=torch.float64)\n"
            "out, _ = m(torch.zeros(4, 1, 2, dtype=torch.float64)); out.sum().backward()\n"
            "assert 'numba' not in sys.modules or sys.modules['numba'] is None\n"
            "from lstmlab.torch._compiled import kernels_available; assert not kernels_available()\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_torch_compile_runs_the_pure_path():
    """Under torch.compile (dynamo; the eager backend, no C++ compiler needed) the module takes
    the pure-torch equations and gives the compiled path's numbers, gradients included."""
    m = lt.LSTM(2, 3, variant="peephole", dtype=F64)
    x = torch.randn(5, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    y = torch.compile(m, backend="eager")(x)[0]
    assert _maxdiff(y, m(x)[0]) < 1e-12
    g1 = torch.autograd.grad(y.sum(), list(m.parameters()))
    g2 = torch.autograd.grad(m(x)[0].sum(), list(m.parameters()))
    assert max(_maxdiff(a, b) for a, b in zip(g1, g2)) < 1e-12
