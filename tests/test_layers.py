"""Sequence-layer semantics: lengths, directions, truncated BPTT, float32, internals, init, counts."""
import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core.spec import PRESETS

from conftest import randomize


@pytest.mark.parametrize("cls,variant", [(ll.LSTM, "peephole"), (ll.LSTM, "fgr"), (ll.GRU, None), (ll.RNN, None)])
def test_padded_steps_are_zero_and_do_not_move_state_or_gradients(cls, variant, rng):
    kw = {"variant": variant} if variant else {}
    m = randomize(cls(2, 4, bidirectional=True, backend="reference", **kw), rng)
    T, lengths = 6, [6, 3, 1]
    x = rng.normal(size=(T, 3, 2))
    y, sn, cache = m.forward(x, lengths=lengths)
    dy = rng.normal(size=y.shape)
    dx, _, grads = m.backward(dy, cache)
    for b, L in enumerate(lengths):
        assert np.all(y[L:, b] == 0) and np.all(dx[L:, b] == 0)
        # the same sequence alone, unpadded, gives the same outputs, final state and input gradient
        yb, snb, cb = m.forward(x[:L, b:b + 1])
        np.testing.assert_allclose(y[:L, b:b + 1], yb, atol=1e-13)
        for s_full, s_alone in zip(sn if cls is ll.LSTM else (sn,), snb if cls is ll.LSTM else (snb,)):
            np.testing.assert_allclose(s_full[:, b:b + 1], s_alone, atol=1e-13)
        dxb, _, _ = m.backward(dy[:L, b:b + 1], cb)
        np.testing.assert_allclose(dx[:L, b:b + 1], dxb, atol=1e-13)
    # changing the padding's content changes nothing
    x2 = x.copy()
    x2[4:, 1] = 1e3
    np.testing.assert_array_equal(m.forward(x2, lengths=lengths)[0], y)


def test_reverse_direction_reads_each_sequence_backwards(rng):
    m = randomize(ll.LSTM(2, 3, variant="peephole", bidirectional=True, backend="reference"), rng)
    fwd = ll.LSTM(2, 3, variant="peephole", backend="reference")
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"):
        fwd.params[f"{k}_l0"] = m.params[f"{k}_l0_reverse"]
    x = rng.normal(size=(5, 2, 2))
    y, (hn, cn), _ = m.forward(x, lengths=[5, 3])
    yr, (hr, cr), _ = fwd.forward(x[:3, 1:2][::-1])       # sequence 1 of length 3, reversed
    np.testing.assert_allclose(y[:3, 1:2, 3:], yr[::-1], atol=1e-14)
    np.testing.assert_allclose(hn[1, 1], hr[0, 0], atol=1e-14)


@pytest.mark.parametrize("cls", [ll.LSTM, ll.GRU, ll.RNN])
def test_truncated_bptt_carries_state_across_chunks(cls, rng):
    m = randomize(cls(3, 4, num_layers=2, backend="reference"), rng)
    x = rng.normal(size=(9, 2, 3))
    y, sn, cache = m.forward(x)
    y1, s1, c1 = m.forward(x[:4])
    y2, s2, c2 = m.forward(x[4:], s1)
    np.testing.assert_allclose(np.concatenate([y1, y2]), y, atol=1e-14)
    for a, b in zip(s2 if cls is ll.LSTM else (s2,), sn if cls is ll.LSTM else (sn,)):
        np.testing.assert_allclose(a, b, atol=1e-14)
    # gradients: chunk 2's dstate0 fed into chunk 1's backward equals full BPTT
    dy = rng.normal(size=y.shape)
    dx, _, g = m.backward(dy, cache)
    dx2, d0, g2 = m.backward(dy[4:], c2)
    dx1, _, g1 = m.backward(dy[:4], c1, d0)
    np.testing.assert_allclose(np.concatenate([dx1, dx2]), dx, atol=1e-12)
    for k in g:
        np.testing.assert_allclose(g1[k] + g2[k], g[k], atol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "compiled"])
@pytest.mark.parametrize("cls,D", [(ll.LSTM, 3), (ll.LSTM, 40), (ll.GRU, 3), (ll.RNN, 3)])
def test_backward_without_input_grad_skips_dx_only(cls, D, backend, rng):
    """input_grad=False returns dx = None and the same gradients, bit for bit (the deeper layer
    of a stack still gets its input gradient); on the compiled path D = 40 takes the BLAS
    projection with the bias as a column of ones, D = 3 the compiled projection loops."""
    from lstmlab import kernels
    if backend == "compiled" and not kernels.available():
        pytest.skip(f"numba not usable: {kernels.unavailable_reason()}")
    m = randomize(cls(D, 4, num_layers=2, bidirectional=True, backend=backend), rng)
    x = rng.normal(size=(5, 3, D))
    y, _, cache = m.forward(x, lengths=[5, 2, 4])
    dy = rng.normal(size=y.shape)
    dx, d0, g = m.backward(dy, cache)
    dx_none, d0_skip, g_skip = m.backward(dy, cache, input_grad=False)
    assert dx is not None and dx.shape == x.shape and np.abs(dx).max() > 0
    assert dx_none is None
    for a, b in zip(d0 if cls is ll.LSTM else (d0,), d0_skip if cls is ll.LSTM else (d0_skip,)):
        np.testing.assert_array_equal(a, b)
    assert list(g) == list(m.params) == list(g_skip)
    for k in g:
        np.testing.assert_array_equal(g[k], g_skip[k])
        assert g[k].dtype == m.params[k].dtype and g[k].shape == m.params[k].shape, k
    # every gradient is its own memory (in-place clipping scales each once), b_ih and b_hh too
    arrays = list(g.values())
    assert not any(np.shares_memory(a, b) for i, a in enumerate(arrays) for b in arrays[i + 1:])


@pytest.mark.parametrize("backend", ["reference", "compiled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("cls,variant,V", [(ll.LSTM, "peephole", 6), (ll.LSTM, "lstm", 40),
                                           (ll.GRU, None, 17), (ll.RNN, None, 40)])
def test_token_ids_are_the_one_hot_input(cls, variant, V, dtype, backend, rng):
    """(T, B) integer ids give the outputs of their one-hot (T, B, V) input bit for bit (the
    projection is a gather of columns of W_ih), in both directions with lengths, and the same
    gradients (bit for bit where the compiled path multiplies the one-hot rows, V <= 16; else
    a scatter-add, to rounding); dx is None for ids."""
    from lstmlab import kernels
    if backend == "compiled" and not kernels.available():
        pytest.skip(f"numba not usable: {kernels.unavailable_reason()}")
    kw = {"variant": variant} if variant else {}
    m = randomize(cls(V, 5, num_layers=2, bidirectional=True, backend=backend, dtype=dtype, **kw),
                  rng)
    ids = rng.integers(0, V, size=(7, 4))
    lengths = [7, 3, 1, 6]
    y, sn, cache = m.forward(ids, lengths=lengths)
    y1, sn1, cache1 = m.forward(np.eye(V)[ids], lengths=lengths)
    np.testing.assert_array_equal(y, y1)
    for a, b in zip(sn if cls is ll.LSTM else (sn,), sn1 if cls is ll.LSTM else (sn1,)):
        np.testing.assert_array_equal(a, b)
    dy = rng.normal(size=y.shape).astype(dtype)
    dx, d0, g = m.backward(dy, cache)
    _, d01, g1 = m.backward(dy, cache1, input_grad=False)
    assert dx is None
    tol = 1e-13 if dtype == np.float64 else 1e-5
    for k in g:
        assert g[k].dtype == dtype and g[k].shape == m.params[k].shape, k
        if backend == "compiled" and V <= 16:
            np.testing.assert_array_equal(g[k], g1[k], err_msg=k)
        else:
            np.testing.assert_allclose(g[k], g1[k], rtol=tol, atol=tol, err_msg=k)
    assert np.abs(g["weight_ih_l0"][:, np.setdiff1d(np.arange(V), ids)]).max(initial=0) == 0


@pytest.mark.parametrize("bad,msg", [(np.array([[0, 7]]), r"x: expected token ids in \[0, 7\), got \[0, 7\]"),
                                     (np.array([[-1, 2]]), r"x: expected token ids in \[0, 7\)"),
                                     (np.zeros((0, 2), dtype=int), "x: empty")])
def test_token_ids_out_of_range_are_refused(bad, msg):
    with pytest.raises(ValueError, match=msg):
        ll.LSTM(7, 3).forward(bad)


@pytest.mark.parametrize("variant", [*PRESETS, "gru", "rnn"])
def test_float32_agrees_with_float64(variant, rng):
    cls = {"gru": ll.GRU, "rnn": ll.RNN}.get(variant, ll.LSTM)
    kw = {} if variant in ("gru", "rnn") else {"variant": variant}
    m64 = randomize(cls(3, 8, num_layers=2, bidirectional=True, seed=4, **kw), rng, scale=0.2)
    m32 = cls(3, 8, num_layers=2, bidirectional=True, seed=4, dtype=np.float32, **kw)
    for k in m64.params:
        m32.params[k] = m64.params[k].astype(np.float32)
    x = rng.normal(size=(20, 4, 3))
    y64, _, c64 = m64.forward(x, lengths=[20, 5, 13, 1])
    y32, _, c32 = m32.forward(x.astype(np.float32), lengths=[20, 5, 13, 1])
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-5)
    dy = rng.normal(size=y64.shape)
    _, _, g64 = m64.backward(dy, c64)
    _, _, g32 = m32.backward(dy.astype(np.float32), c32)
    for k in g64:
        assert g32[k].dtype == np.float32
        scale = max(1.0, np.abs(g64[k]).max())
        np.testing.assert_allclose(g32[k], g64[k], atol=2e-5 * scale, err_msg=k)


def test_internals_expose_gates_and_cell_state(rng):
    m = randomize(ll.LSTM(1, 3, variant="peephole", backend="reference"), rng)
    x = rng.normal(size=(6, 2, 1))
    y, (hn, cn), cache = m.forward(x, lengths=[6, 4])
    ins = cache.internals(0, 0)
    assert set(ins) == {"h", "c", "i", "f", "g", "o"}
    np.testing.assert_array_equal(ins["h"], y)
    np.testing.assert_allclose(ins["h"][:4, 1], (ins["o"] * np.tanh(ins["c"]))[:4, 1])
    np.testing.assert_allclose(ins["c"][5, 0], cn[0, 0])
    assert np.all(ins["i"][4:, 1] == 0) and np.all((ins["f"][:4] > 0) & (ins["f"][:4] < 1))
    # coupled gates really are coupled
    cifg = randomize(ll.LSTM(1, 3, variant="cifg"), rng)
    ins = cifg.forward(x)[2].internals()
    np.testing.assert_allclose(ins["f"], 1 - ins["i"])


def test_internals_are_the_same_on_both_backends(rng):
    """The compiled small path keeps its gates gate-major; internals() shows them as the
    reference does (both directions, padded steps zero)."""
    from lstmlab import kernels
    if not kernels.available():
        pytest.skip("numba is not usable here")
    ref = randomize(ll.LSTM(2, 5, variant="peephole", bidirectional=True, backend="reference"),
                    rng)
    comp = ll.LSTM(2, 5, variant="peephole", bidirectional=True, backend="compiled")
    comp.params = {k: v.copy() for k, v in ref.params.items()}
    x = rng.normal(size=(7, 3, 2))
    caches = [m.forward(x, lengths=[7, 3, 5])[2] for m in (ref, comp)]
    for d in (0, 1):
        a, b = (c.internals(0, d) for c in caches)
        assert set(a) == set(b) == {"h", "c", "i", "f", "g", "o"}
        for k in a:
            assert b[k].shape == (7, 3, 5), k
            np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-12, err_msg=f"{k} {d}")


def test_initialisation_conventions():
    a = ll.LSTM(3, 5, variant="lstm", seed=7)
    b = ll.LSTM(3, 5, variant="peephole", seed=7)
    c = ll.LSTM(3, 5, variant="peephole", seed=8)
    for k in a.params:   # peephole and plain LSTM with one seed share every other weight
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(b.params["weight_hh_l0"], c.params["weight_hh_l0"])
    np.testing.assert_array_equal(a.params["bias_ih_l0"][5:10], 1.0)       # forget bias 1.0
    np.testing.assert_array_equal(a.params["bias_hh_l0"][5:10], 0.0)
    assert np.all(np.abs(a.params["weight_hh_l0"]) <= 1 / np.sqrt(5))
    assert 0 < np.abs(b.params["weight_co_l0"]).max() < 0.5
    z = ll.LSTM(3, 5, variant="peephole", peephole_init="zero")
    assert np.all(z.params["weight_ci_l0"] == 0)
    x = ll.LSTM(3, 5, init="xavier", forget_bias=2.0)
    assert np.all(x.params["bias_ih_l0"][5:10] == 2.0) and np.all(x.params["bias_ih_l0"][:5] == 0)
    nig = ll.LSTM(3, 5, variant="nig")
    assert np.all(nig.params["weight_ih_l0"][:5] == 0) and np.all(nig.params["weight_ci_l0"] == 0)


@pytest.mark.parametrize("n,d", [(8, 1), (256, 64), (5, 3)])
def test_count_params_textbook_formula(n, d):
    assert ll.count_params("lstm", d, n) == 4 * n * (n + d + 1)
    assert ll.count_params("peephole", d, n) == 4 * n * (n + d + 1) + 3 * n
    m = ll.LSTM(d, n, variant="peephole")
    assert m.num_params(effective=False) == sum(p.size for p in m.params.values())
    assert ll.count_params("cifg", d, n) == 3 * n * (n + d + 1) + 2 * n
    assert ll.count_params("gru", d, n, effective=False) == sum(p.size for p in ll.GRU(d, n).params.values())
    assert ll.count_params("lstm", d, n, num_layers=2, bidirectional=True) == \
        2 * (4 * n * (n + d + 1)) + 2 * (4 * n * (n + 2 * n + 1))


def test_count_params_matches_torch():
    torch = pytest.importorskip("torch")
    for cls in (ll.LSTM, ll.GRU, ll.RNN):
        tm = getattr(torch.nn, cls.__name__)(4, 6, num_layers=2, bidirectional=True)
        m = cls.from_torch(tm)
        assert m.num_params(effective=False) == sum(p.numel() for p in tm.parameters())
