"""PyTorch is the oracle: outputs, final states and every gradient must match to 1e-10 in float64."""
import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core.spec import PRESETS

from conftest import randomize

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _float64_default():
    """These tests build torch tensors from float64 arrays: float64 as torch's default here, and
    float32 again afterwards (other test modules rely on torch's own default)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)

T, B, D, H = 7, 4, 3, 5
TOL = 1e-10


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def _torch_run(tm, x, state, lengths, Ry, Rs):
    """Run a torch recurrent module, return outputs, final states and gradients."""
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in state]
    tstate = tuple(st) if len(st) == 2 else st[0]
    if lengths is None:
        y, sn = tm(xt, tstate)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), enforce_sorted=False)
        yp, sn = tm(packed, tstate)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(yp, total_length=x.shape[0])
    sn = sn if isinstance(sn, tuple) else (sn,)
    loss = (y * torch.tensor(Ry)).sum() + sum((s * torch.tensor(R)).sum() for s, R in zip(sn, Rs))
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in tm.named_parameters()}
    return y.detach().numpy(), [s.detach().numpy() for s in sn], xt.grad.numpy(), [s.grad.numpy() for s in st], grads


@pytest.mark.parametrize("cls", [ll.LSTM, ll.GRU, ll.RNN])
@pytest.mark.parametrize("lengths", [None, [7, 3, 5, 1]])
@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_matches_torch_two_layers_bidirectional(cls, lengths, backend, rng):
    m = randomize(cls(D, H, num_layers=2, bidirectional=True, seed=3, backend=backend), rng)
    tm = m.to_torch()
    x = rng.normal(size=(T, B, D))
    shape = (4, B, H)
    state = [rng.normal(size=shape) for _ in range(2 if cls is ll.LSTM else 1)]
    Ry = rng.normal(size=(T, B, 2 * H))
    if lengths is not None:
        Ry[np.arange(T)[:, None] >= np.array(lengths)[None, :]] = 0.0   # torch pads with zeros too
    Rs = [rng.normal(size=shape) for _ in state]
    pack = (lambda s: tuple(s)) if cls is ll.LSTM else (lambda s: s[0])

    y, sn, cache = m.forward(x, pack(state), lengths)
    dx, d0, grads = m.backward(Ry, cache, pack(Rs))
    ty, tsn, tdx, td0, tgrads = _torch_run(tm, x, state, lengths, Ry, Rs)

    assert _max_diff(y, ty) < TOL
    for a, b in zip(sn if cls is ll.LSTM else (sn,), tsn):
        assert _max_diff(a, b) < TOL
    assert _max_diff(dx, tdx) < TOL
    for a, b in zip(d0 if cls is ll.LSTM else (d0,), td0):
        assert _max_diff(a, b) < TOL
    assert set(grads) == set(tgrads)
    for k in grads:
        assert _max_diff(grads[k], tgrads[k]) < TOL, k


@pytest.mark.parametrize("cls", [ll.LSTM, ll.GRU, ll.RNN])
def test_from_torch_copies_weights(cls, rng):
    tm = getattr(torch.nn, cls.__name__)(D, H, num_layers=2, bidirectional=True)
    m = cls.from_torch(tm)
    assert m.dtype == np.float64 and m.num_layers == 2 and m.bidirectional
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(m.params[k], v.numpy())
    back = m.to_torch().state_dict()
    for k, v in tm.state_dict().items():
        assert torch.equal(back[k], v)


def test_to_torch_refuses_variants_torch_lacks():
    with pytest.raises(ValueError, match="variant"):
        ll.LSTM(2, 3, variant="peephole").to_torch()


def test_from_torch_refuses_wrong_class():
    with pytest.raises(ValueError, match="module"):
        ll.LSTM.from_torch(torch.nn.GRU(2, 3))


# --- Every Greff variant against autograd on an independent torch transcription of the equations ---

def _torch_generalised_lstm(spec, p, x, h0, c0, peephole_error=True):
    """The generalised cell of lstmlab.core.spec written plainly in torch (autograd computes grads);
    ``peephole_error=False``: the gates read a detached copy of the cell state through the
    peepholes (the truncated gradient of Gers et al. 2002)."""
    peek = (lambda c: c) if peephole_error else (lambda c: c.detach())
    Hn = h0.shape[1]
    h, c = h0, c0
    q = torch.zeros(h0.shape[0], 3 * Hn)
    ys = []
    for t in range(x.shape[0]):
        a = x[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
        a_i, a_f, a_g, a_o = a.split(Hn, dim=1)
        if spec.full_gate_recurrence:
            r_i, r_f, r_o = (q @ p["weight_gg"].T).split(Hn, dim=1)
            a_i, a_f, a_o = a_i + r_i, a_f + r_f, a_o + r_o
        if spec.peephole:
            a_i = a_i + p["weight_ci"] * peek(c)
            a_f = a_f + p["weight_cf"] * peek(c)
        one = torch.ones_like(c)
        i = torch.sigmoid(a_i) if spec.input_gate else one
        f = (1 - i) if spec.coupled else (torch.sigmoid(a_f) if spec.forget_gate else one)
        g = torch.tanh(a_g) if spec.input_activation else a_g
        c = f * c + i * g
        if spec.cell_clip is not None:
            c = torch.clamp(c, -spec.cell_clip, spec.cell_clip)
        if spec.peephole:
            a_o = a_o + p["weight_co"] * peek(c)
        o = torch.sigmoid(a_o) if spec.output_gate else one
        h = o * (torch.tanh(c) if spec.output_activation else c)
        q = torch.cat([i, f, o], dim=1)
        ys.append(h)
    return torch.stack(ys), h, c


@pytest.mark.parametrize("variant", list(PRESETS) + ["clip"])
def test_every_variant_matches_torch_autograd(variant, rng):
    spec = ll.CellSpec(peephole=True, cell_clip=0.8) if variant == "clip" else PRESETS[variant]
    m = randomize(ll.LSTM(D, H, variant=spec, seed=1, backend="reference"), rng)
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(1, B, H)), rng.normal(size=(1, B, H))
    Ry, Rh, Rc = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    y, (hn, cn), cache = m.forward(x, (h0, c0))
    dx, (dh0, dc0), grads = m.backward(Ry, cache, (Rh[None], Rc[None]))

    tp = {k[:-3]: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}   # strip "_l0"
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0[0], c0[0]))
    ty, thn, tcn = _torch_generalised_lstm(spec, tp, tx, th0, tc0)
    ((ty * torch.tensor(Ry)).sum() + (thn * torch.tensor(Rh)).sum() + (tcn * torch.tensor(Rc)).sum()).backward()

    assert _max_diff(y, ty.detach()) < TOL
    assert _max_diff(hn[0], thn.detach()) < TOL and _max_diff(cn[0], tcn.detach()) < TOL
    assert _max_diff(dx, tx.grad) < TOL
    assert _max_diff(dh0[0], th0.grad) < TOL and _max_diff(dc0[0], tc0.grad) < TOL
    for k, v in grads.items():
        tg = tp[k[:-3]].grad
        assert _max_diff(v, np.zeros_like(v) if tg is None else tg) < TOL, k   # None: unused weight
    if variant == "clip":
        assert np.abs(cache.internals()["c"]).max() == pytest.approx(0.8)   # the clip was active


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_peephole_error_cut_matches_detached_torch(backend, rng):
    """backward(peephole_error=False) is autograd through gates that read a detached c: equal
    to that to 1e-10, and different from the full gradient (the cut removes something)."""
    spec = ll.CellSpec(peephole=True, input_activation=False, output_activation=False)
    m = randomize(ll.LSTM(D, H, variant=spec, seed=1, backend=backend), rng)
    x = rng.normal(size=(T, B, D))
    h0, c0 = rng.normal(size=(1, B, H)), rng.normal(size=(1, B, H))
    Ry, Rh, Rc = rng.normal(size=(T, B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    _, _, cache = m.forward(x, (h0, c0))
    dx, (dh0, dc0), grads = m.backward(Ry, cache, (Rh[None], Rc[None]), peephole_error=False)
    full = m.backward(Ry, cache, (Rh[None], Rc[None]))[2]

    tp = {k[:-3]: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    tx, th0, tc0 = (torch.tensor(a, requires_grad=True) for a in (x, h0[0], c0[0]))
    ty, thn, tcn = _torch_generalised_lstm(spec, tp, tx, th0, tc0, peephole_error=False)
    ((ty * torch.tensor(Ry)).sum() + (thn * torch.tensor(Rh)).sum() + (tcn * torch.tensor(Rc)).sum()).backward()
    assert _max_diff(dx, tx.grad) < TOL
    assert _max_diff(dh0[0], th0.grad) < TOL and _max_diff(dc0[0], tc0.grad) < TOL
    for k, v in grads.items():
        assert _max_diff(v, tp[k[:-3]].grad) < TOL, k
    assert _max_diff(grads["weight_hh_l0"], full["weight_hh_l0"]) > 1e-3


def test_peephole_error_only_for_lstm_cells(rng):
    m = ll.GRU(2, 3, seed=0)
    _, _, cache = m.forward(rng.normal(size=(4, 2, 2)))
    with pytest.raises(ValueError, match="peephole_error"):
        m.backward(np.ones((4, 2, 3)), cache, peephole_error=False)


def test_adam_and_sgd_match_torch(rng):
    p0 = {"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)}
    for make_ll, make_t in [
        (lambda p: ll.Adam(p, lr=0.01), lambda tp: torch.optim.Adam(tp, lr=0.01)),
        (lambda p: ll.SGD(p, lr=0.1, momentum=0.9), lambda tp: torch.optim.SGD(tp, lr=0.1, momentum=0.9)),
    ]:
        p = {k: v.copy() for k, v in p0.items()}
        tp = [torch.tensor(p0[k].copy(), requires_grad=True) for k in ("w", "b")]
        opt, topt = make_ll(p), make_t(tp)
        for step in range(5):
            g = {k: rng.normal(size=v.shape) for k, v in p.items()}
            opt.step(g)
            for t_, k in zip(tp, ("w", "b")):
                t_.grad = torch.tensor(g[k])
            topt.step()
        for t_, k in zip(tp, ("w", "b")):
            assert _max_diff(p[k], t_.detach()) < 1e-12
