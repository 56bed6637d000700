"""Per-step state gradients (``backward(..., return_internals=True)``): finite differences,
reference against compiled, padding."""
import numpy as np
import pytest

import lstmlab as ll
from lstmlab import kernels

from conftest import randomize

CASES = [("lstm", "lstm"), ("lstm", "peephole"), ("lstm", "cifg"), ("lstm", "nfg"),
         ("lstm", "nog"), ("lstm", "noaf"), ("lstm", "fgr"), ("gru", "gru"), ("rnn", "rnn")]


def _layer(kind, variant, backend="reference", **kw):
    cls = {"lstm": ll.LSTM, "gru": ll.GRU, "rnn": ll.RNN}[kind]
    extra = {"variant": variant} if kind == "lstm" else {}
    return cls(2, 3, dtype=np.float64, seed=3, backend=backend, **extra, **kw)


def _state(layer, rng, B):
    h = rng.normal(size=(layer.num_layers * layer.num_directions, B, 3))
    return (h, rng.normal(size=h.shape)) if layer.kind == "lstm" else h


@pytest.mark.parametrize("kind,variant", [c for c in CASES if c[1] != "fgr"])
def test_step_gradients_match_finite_differences(kind, variant, rng):
    """dL/dh_t and dL/dc_t against central differences of a loss linear in the outputs and the
    final state, the state perturbed where the sequence is split after step t. (Not fgr: its
    gates are carried too, so a split restarts them and changes the loss.)"""
    layer = randomize(_layer(kind, variant), rng)
    T, B = 6, 3
    x = rng.normal(size=(T, B, 2))
    s0 = _state(layer, rng, B)
    wy = rng.normal(size=(T, B, 3))                           # L = <wy, y> + <wh, h_n> (+ <wc, c_n>)
    wn = _state(layer, rng, B)
    _, _, cache = layer.forward(x, s0)
    *_, sg = layer.backward(wy, cache, wn, return_internals=True)
    sg = sg[0][0]
    lstm = kind == "lstm"

    def loss(t, dh, dc):
        y1, st, _ = layer.forward(x[:t + 1], s0)
        h, c = (st[0] + dh, st[1] + dc) if lstm else (st + dh, None)
        L = (wy[:t + 1] * y1).sum() + (wy[t] * dh[0]).sum()
        if t + 1 < T:
            y2, st, _ = layer.forward(x[t + 1:], (h, c) if lstm else h)
            L += (wy[t + 1:] * y2).sum()
            h, c = (st[0], st[1]) if lstm else (st, None)
        if lstm:
            return L + (wn[0] * h).sum() + (wn[1] * c).sum()
        return L + (wn * h).sum()

    eps = 1e-6
    for t in (0, 2, T - 1):
        for name in ("h", "c") if lstm else ("h",):
            fd = np.zeros((B, 3))
            for b in range(B):
                for j in range(3):
                    e = np.zeros((1, B, 3))
                    e[0, b, j] = eps
                    z = np.zeros((1, B, 3))
                    args = (e, z) if name == "h" else (z, e)
                    neg = tuple(-a for a in args)
                    fd[b, j] = (loss(t, *args) - loss(t, *neg)) / (2 * eps)
            np.testing.assert_allclose(sg[name][t], fd, rtol=1e-6, atol=1e-8,
                                       err_msg=f"{variant} d{name} at step {t}")
    assert ("c" in sg) == lstm


@pytest.mark.skipif(not kernels.available(), reason="needs numba")
@pytest.mark.parametrize("kind,variant", CASES)
def test_step_gradients_reference_equal_compiled(kind, variant, rng):
    """Two stacked bidirectional layers with padding: the same per-step gradients either way."""
    B, T = 4, 7
    ref = randomize(_layer(kind, variant, num_layers=2, bidirectional=True), rng)
    comp = _layer(kind, variant, backend="compiled", num_layers=2, bidirectional=True)
    comp.params.update({k: v.copy() for k, v in ref.params.items()})
    x = rng.normal(size=(T, B, 2))
    lengths = np.array([7, 3, 5, 1])
    dy = rng.normal(size=(T, B, 6))
    out = []
    for layer in (ref, comp):
        _, _, cache = layer.forward(x, lengths=lengths)
        *_, sg = layer.backward(dy, cache, return_internals=True)
        out.append(sg)
    for k in range(2):
        for d in range(2):
            for name, v in out[0][k][d].items():
                np.testing.assert_allclose(out[1][k][d][name], v, rtol=1e-10, atol=1e-12)
                assert np.abs(v).max() > 0


@pytest.mark.parametrize("kind,variant", [("lstm", "peephole"), ("gru", "gru"), ("rnn", "rnn")])
def test_step_gradients_of_padded_sequences(kind, variant, rng):
    """A padded sequence's per-step gradients equal those of the same sequence alone, in both
    directions, and are zero on its padding."""
    layer = randomize(_layer(kind, variant, bidirectional=True), rng)
    T, B = 6, 3
    x = rng.normal(size=(T, B, 2))
    lengths = np.array([6, 4, 2])
    dy = rng.normal(size=(T, B, 6))
    _, _, cache = layer.forward(x, lengths=lengths)
    *_, sg = layer.backward(dy, cache, return_internals=True)
    for b, n in enumerate(lengths):
        _, _, c1 = layer.forward(x[:n, b:b + 1])
        *_, alone = layer.backward(dy[:n, b:b + 1], c1, return_internals=True)
        for d in range(2):
            for name, v in sg[0][d].items():
                np.testing.assert_allclose(v[:n, b], alone[0][d][name][:, 0], rtol=1e-12, atol=1e-14)
                assert not v[n:, b].any()


def test_backward_without_internals_returns_three(rng):
    layer = _layer("lstm", "lstm")
    _, _, cache = layer.forward(rng.normal(size=(3, 2, 2)))
    assert len(layer.backward(rng.normal(size=(3, 2, 3)), cache)) == 3


def test_gradient_flow_profile(rng):
    """g_h(0) is sqrt(H) (an identity Jacobian); the classic ordering at initialisation over 100
    steps: the RNN loses more than an LSTM with forget bias 1, which loses more than bias 3."""
    from lstmlab.core.flow import gradient_flow, orders_lost

    x = rng.uniform(size=(120, 8, 2))
    lost = {}
    for name, layer in (("rnn", ll.RNN(2, 16, seed=1)), ("gru", ll.GRU(2, 16, seed=1)),
                        ("lstm1", ll.LSTM(2, 16, seed=1, forget_bias=1.0)),
                        ("lstm3", ll.LSTM(2, 16, seed=1, forget_bias=3.0))):
        p = gradient_flow(layer, x, probes=2)
        assert p["h"][0] == pytest.approx(4.0, rel=0.5)     # sqrt(16), up to the probe's noise
        assert np.all(np.isfinite(p["h"]))
        lost[name] = orders_lost(p)
        if name.startswith("lstm"):
            assert p["c"][0] == 0 and p["c"][1] > 0
    assert lost["rnn"] > lost["lstm1"] + 3 > lost["lstm3"] + 3 > 3
    assert np.isnan(orders_lost(p, steps=200))


def test_gradient_flow_with_lengths(rng):
    """With lengths, distance d is counted back from each sequence's own last step: a padded
    batch gives the RMS of its sequences' own profiles where they overlap."""
    from lstmlab.core.flow import gradient_flow

    layer = randomize(ll.LSTM(2, 3, seed=2), rng, scale=0.2)
    x = rng.normal(size=(10, 2, 2))
    both = gradient_flow(layer, x, lengths=[10, 4], probes=1, seed=5)
    # the probe of sequence b is row b of the (B * probes, H) draw: rebuild each alone
    v = np.random.default_rng([5, 7]).normal(size=(2, 3))
    alone = []
    for b, n in enumerate((10, 4)):
        _, _, cache = layer.forward(x[:n, b:b + 1])
        dy = np.zeros((n, 1, 3))
        dy[-1, 0] = v[b]
        *_, sg = layer.backward(dy, cache, return_internals=True)
        alone.append(np.linalg.norm(sg[0][0]["h"][::-1, 0], axis=1))      # by distance
    np.testing.assert_allclose(both["h"][:4], np.sqrt((alone[0][:4] ** 2 + alone[1] ** 2) / 2))
    np.testing.assert_allclose(both["h"][4:], alone[0][4:])
