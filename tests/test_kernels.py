"""The compiled kernels (lstmlab.kernels) against the NumPy reference loops (lstmlab.core.cells).

Equal outputs and gradients on random shapes, every preset (plus cell clipping and unusual flag
combinations), both kernel paths (fused small-H loop and per-step BLAS), random masks from random
lengths, float64 to 1e-12 and float32 to float32 precision; then the same through the sequence
layer (layers, directions, lengths), the elementary functions, the optional import and the on-disk
compilation cache.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
import textwrap
import zlib
from dataclasses import replace

import numpy as np
import pytest

from lstmlab.core import cells
from lstmlab.core.spec import PRESETS, CellSpec

kernels = pytest.importorskip("lstmlab.kernels")
if not kernels.available():
    pytest.skip(f"numba not usable: {kernels.unavailable_reason()}", allow_module_level=True)

from lstmlab.kernels import _jit  # noqa: E402

SPECS = {
    **PRESETS,
    "peephole_clip": replace(PRESETS["peephole"], cell_clip=0.6),
    "lstm_clip": replace(PRESETS["lstm"], cell_clip=0.4),
    "fgr_clip": replace(PRESETS["fgr"], cell_clip=0.8),
    "fgr_no_peep": CellSpec(full_gate_recurrence=True),
    "cifg_noaf_niaf": CellSpec(peephole=True, coupled=True, input_activation=False,
                               output_activation=False),
    "nig_nog_fgr": CellSpec(peephole=True, input_gate=False, output_gate=False,
                            full_gate_recurrence=True),
    "nfg_no_peep": CellSpec(forget_gate=False),
}
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}
PATHS = [None, False, True]          # auto, fused small-H loop, per-step BLAS


def close(a, b, dtype, what=""):
    """Elementwise rtol plus an atol scaled by the array's largest value ("relative-ish"). LSTM
    gates from the compiled small path, gate-major (T, 4, B, H), compare as the reference's rows."""
    if b is None:
        assert a is None, what
        return
    assert a is not None, what
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 4 and b.ndim == 3:
        a = cells.lstm_gate_rows(a)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    t = TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=t["rtol"], atol=t["atol"] * scale, err_msg=what)


def make_mask(rng, T, B, dtype, kind):
    if kind == "none":
        return None
    if kind == "full":
        return np.ones((T, B), dtype=dtype)
    lengths = rng.integers(1, T + 1, size=B)
    lengths[rng.integers(B)] = T                       # at least one full sequence
    return (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)


def lstm_inputs(rng, spec, T, B, H, dtype, mask_kind):
    r = lambda *s, scale=0.5: (scale * rng.standard_normal(s)).astype(dtype)  # noqa: E731
    W = r(4 * H, H)
    gu = spec.gate_used
    for j, used in enumerate(gu):                      # weights of absent gates are zero
        if not used:
            W[j * H:(j + 1) * H] = 0
    peep = r(3, H) if spec.peephole else None
    R = r(3 * H, 3 * H, scale=0.3) if spec.full_gate_recurrence else None
    return dict(xp=r(T, B, 4 * H, scale=1.0), W=W, peep=peep, R=R, h0=r(B, H), c0=r(B, H),
                mask=make_mask(rng, T, B, dtype, mask_kind), dY=r(T, B, H), dh=r(B, H), dc=r(B, H))


# ----------------------------------------------------------------------------------------------
# Loop level: LSTM
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("large", PATHS, ids=["auto", "small", "large"])
@pytest.mark.parametrize("name", list(SPECS))
def test_lstm_loops_match_reference(name, large, dtype):
    spec = SPECS[name]
    rng = np.random.default_rng(zlib.crc32(f"{name}{large}{np.dtype(dtype).name}".encode()))
    for case in range(3):
        T, B, H = int(rng.integers(1, 12)), int(rng.integers(1, 7)), int(rng.integers(1, 11))
        mask_kind = ("none", "lengths", "lengths")[case]
        a = lstm_inputs(rng, spec, T, B, H, dtype, mask_kind)
        ref = cells.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], a["R"], a["h0"], a["c0"],
                                      a["mask"])
        out = kernels.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], a["R"], a["h0"], a["c0"],
                                        a["mask"], large=large)
        for what, x, y in zip(("Hs", "Cs", "G"), out, ref):
            assert x.dtype == np.dtype(dtype), what
            close(x, y, dtype, f"{name} {what} T={T} B={B} H={H}")
        assert_overwrite_xp_same_bits(spec, a, out, ref, large)
        refb = cells.lstm_loop_backward(spec, *ref, a["W"], a["peep"], a["R"], a["mask"], a["dY"],
                                        a["dh"], a["dc"])
        for fwd in (out, ref):        # its own forward's G, and the reference's (other layout)
            outb = kernels.lstm_loop_backward(spec, *fwd, a["W"], a["peep"], a["R"], a["mask"],
                                              a["dY"], a["dh"], a["dc"], large=large)
            for what, x, y in zip(("dxp", "dW_hh", "dpeep", "dR", "dh0", "dc0"), outb, refb):
                close(x, y, dtype, f"{name} {what} T={T} B={B} H={H}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_lstm_small_forward_pairs_valid_rows(dtype):
    """The small forward computes the recurrent products of two valid rows at a time. Lengths
    6, 1, 3, 5, 2, 5, 1 give steps with an odd number of valid rows (a lone row), pairs that skip
    padded rows, and a last step with one valid row; forward and backward match the reference."""
    spec = SPECS["peephole"]
    rng = np.random.default_rng(5)
    T, B, H = 6, 7, 8
    a = lstm_inputs(rng, spec, T, B, H, dtype, "none")
    lengths = np.array([6, 1, 3, 5, 2, 5, 1])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(dtype)              # (T, B)
    args = (a["W"], a["peep"], None)
    ref = cells.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], mask)
    out = kernels.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], mask, large=False)
    for what, x, y in zip(("Hs", "Cs", "G"), out, ref):
        close(x, y, dtype, what)
    refb = cells.lstm_loop_backward(spec, *ref, *args, mask, a["dY"], a["dh"], a["dc"])
    outb = kernels.lstm_loop_backward(spec, *out, *args, mask, a["dY"], a["dh"], a["dc"],
                                      large=False)
    for what, x, y in zip(("dxp", "dW_hh", "dpeep", "dR", "dh0", "dc0"), outb, refb):
        if y is not None:
            close(x, y, dtype, what)


@pytest.mark.parametrize("large", [False, True], ids=["small", "large"])
def test_lstm_wide_batch_and_hidden(large):
    """Shapes that cross the internal chunking (several row chunks, rows longer than a chunk)."""
    rng = np.random.default_rng(7)
    for name, (T, B, H) in [("peephole", (5, 300, 8)), ("fgr", (4, 70, 24)),
                            ("peephole_clip", (3, 3, 600 if large else 64))]:
        spec = SPECS[name]
        a = lstm_inputs(rng, spec, T, B, H, np.float64, "lengths")
        ref = cells.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], a["R"], a["h0"], a["c0"],
                                      a["mask"])
        out = kernels.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], a["R"], a["h0"], a["c0"],
                                        a["mask"], large=large)
        for x, y in zip(out, ref):
            close(x, y, np.float64, name)
        assert_overwrite_xp_same_bits(spec, a, out, ref, large)
        refb = cells.lstm_loop_backward(spec, *ref, a["W"], a["peep"], a["R"], a["mask"], a["dY"],
                                        a["dh"], a["dc"])
        for fwd in (out, ref):
            outb = kernels.lstm_loop_backward(spec, *fwd, a["W"], a["peep"], a["R"], a["mask"],
                                              a["dY"], a["dh"], a["dc"], large=large)
            for x, y in zip(outb, refb):
                close(x, y, np.float64, name)


def _teams():
    """OpenMPTeams to test the large path's ``team=`` on: one asked for 3 threads that runs the
    callback once, on this thread (as an OpenMP runtime may give fewer threads than asked for:
    that one thread must claim every part), and real libgomp teams of 2 and 3 threads where a
    libgomp loads. The first also counts its calls in ``calls`` and first makes a few small
    arrays, which would take the memory of any array the block points to but nobody holds."""
    def one_thread(fn, data, threads, flags):
        junk = [np.full(n, 7.0, dtype=d) for d in (np.float32, np.float64) for n in (1, 2, 4)]
        ctypes.CFUNCTYPE(None, ctypes.c_void_p)(fn)(data)
        calls.append(len(junk))
    calls = []
    teams = [("one_of_3", kernels.OpenMPTeam(one_thread, 3))]
    name = ctypes.util.find_library("gomp")
    if name:
        f = ctypes.CDLL(name).GOMP_parallel
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        f.restype = None
        teams += [("gomp2", kernels.OpenMPTeam(f, 2)), ("gomp3", kernels.OpenMPTeam(f, 3))]
    return teams, calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ["peephole_clip", "fgr", "cifg_noaf_niaf", "nig_nog_fgr",
                                  "nfg_no_peep"])
def test_lstm_large_path_on_a_team_gives_the_same_bits(name, dtype):
    """``team=``: the large path's per-step kernels split by batch rows over a team's threads give
    the same bits as one call per step, forward and backward, with padding, for batches smaller
    than, equal to and larger than the team (B = 1 runs without it)."""
    spec = SPECS[name]
    rng = np.random.default_rng(zlib.crc32(f"team{name}{np.dtype(dtype).name}".encode()))
    teams, calls = _teams()
    for label, team in teams:
        for T, B, H in ((5, 1, 40), (4, 2, 40), (6, 7, 45)):
            a = lstm_inputs(rng, spec, T, B, H, dtype, "lengths")
            args = (a["W"], a["peep"], a["R"])
            one = kernels.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], a["mask"],
                                            large=True)
            got = kernels.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], a["mask"],
                                            large=True, team=team)
            for what, x, y in zip(("Hs", "Cs", "G"), got, one):
                np.testing.assert_array_equal(x, y, err_msg=f"{label} {what} B={B}")
            oneb = kernels.lstm_loop_backward(spec, *one, *args, a["mask"], a["dY"], a["dh"],
                                              a["dc"], large=True)
            gotb = kernels.lstm_loop_backward(spec, *one, *args, a["mask"], a["dY"], a["dh"],
                                              a["dc"], large=True, team=team)
            for what, x, y in zip(("dxp", "dW_hh", "dpeep", "dR", "dh0", "dc0"), gotb, oneb):
                if y is not None:
                    np.testing.assert_array_equal(x, y, err_msg=f"{label} {what} B={B}")
    assert len(calls) == 2 * (4 + 6)          # forward and backward, every step of B = 2 and 7


@pytest.mark.parametrize("name", ["peephole", "fgr"])
def test_lstm_small_path_masks_with_holes_and_several_chunks(name):
    """Padding anywhere (rows that resume after padded steps) and chunks of fewer rows than a
    batch part (H = 100 forced onto the small path: 10 rows a chunk, parts of 11): G comes out
    gate-major, (T, 4, B, H), and forward and backward (given that G) match the reference."""
    spec = SPECS[name]
    rng = np.random.default_rng(21)
    T, B, H = 5, 33, 100
    a = lstm_inputs(rng, spec, T, B, H, np.float64, "none")
    mask = (rng.random((T, B)) < 0.7).astype(np.float64)                        # (T, B)
    args = (a["W"], a["peep"], a["R"])
    ref = cells.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], mask)
    out = kernels.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], mask, large=False)
    assert out[2].shape == (T, 4, B, H)
    for what, x, y in zip(("Hs", "Cs", "G"), out, ref):
        close(x, y, np.float64, what)
    refb = cells.lstm_loop_backward(spec, *ref, *args, mask, a["dY"], a["dh"], a["dc"])
    outb = kernels.lstm_loop_backward(spec, *out, *args, mask, a["dY"], a["dh"], a["dc"],
                                      large=False)
    for what, x, y in zip(("dxp", "dW_hh", "dpeep", "dR", "dh0", "dc0"), outb, refb):
        close(x, y, np.float64, what)


def assert_overwrite_xp_same_bits(spec, a, out, ref, large):
    """With overwrite_xp every result keeps its bits, on both modules: the gates land in xp's
    memory where they are (T, B, 4H) rows (each step reads xp[t] before it writes G[t]); the
    compiled small path's gate-major G has its own array and leaves xp alone."""
    args = (a["W"], a["peep"], a["R"], a["h0"], a["c0"], a["mask"])
    for module, expected, kw in ((kernels, out, {"large": large}), (cells, ref, {})):
        xp = a["xp"].copy()
        got = module.lstm_loop_forward(spec, xp, *args, overwrite_xp=True, **kw)
        if got[2].ndim == 3:
            assert got[2] is xp
        else:
            np.testing.assert_array_equal(xp, a["xp"])
        for x, y in zip(got, expected):
            np.testing.assert_array_equal(x, y)


def test_input_projection_ignores_what_its_outputs_held():
    """The projection kernels start from zero, not from whatever memory their outputs got (a NaN
    there, or an inf in the bias, must not spread), and the bias goes in as the reference adds it."""
    rng = np.random.default_rng(4)
    for dtype in (np.float64, np.float32):
        T, B, D, G = 6, 5, 3, 16
        x, W, dxp = (rng.standard_normal(s).astype(dtype) for s in ((T, B, D), (G, D), (T, B, G)))
        b = rng.standard_normal(G).astype(dtype)
        b[0] = np.inf
        with np.errstate(invalid="ignore"):
            ref = cells.input_projection(x, W, b)
        out = kernels.input_projection(x, W, b)
        np.testing.assert_array_equal(np.isinf(out), np.isinf(ref))
        close(out[..., 1:], ref[..., 1:], dtype, "xp")
        dx, dWT, db = (np.full(s, np.nan, dtype=dtype) for s in ((T * B, D), (D, G), (G,)))
        _jit.proj_backward(dxp.reshape(T * B, G), x.reshape(T * B, D), np.ascontiguousarray(W.T),
                           np.ones(_jit.PROJ_BLOCK, dtype=dtype), dx, dWT, db, dtype(0))
        rdx, rdW, rdb = cells.input_projection_backward(dxp, x, W)
        for what, a, e in (("dx", dx.reshape(T, B, D), rdx), ("dW_ih", dWT.T, rdW), ("db", db, rdb)):
            close(a, e, dtype, what)
        assert kernels.input_projection_backward(dxp, x, W)[1].flags.c_contiguous


def test_thread_settings_are_checked(monkeypatch):
    from lstmlab.kernels import _api
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="n: expected a positive integer"):
            kernels.set_num_threads(bad)
    for bad in ("0", "two", "\u00b2"):
        monkeypatch.setenv("LSTMLAB_NUM_THREADS", bad)
        with pytest.raises(ValueError, match="LSTMLAB_NUM_THREADS"):
            _api._default_threads()
    monkeypatch.setenv("LSTMLAB_NUM_THREADS", " 3 ")
    assert _api._default_threads() == 3
    monkeypatch.delenv("LSTMLAB_NUM_THREADS")
    assert _api._default_threads() == 1


def test_shared_constant_operands_stay_constant():
    """The all-ones mask and the zero peepholes / gate recurrence that stand in for "none" are
    made once per shape and shared between calls: a training step of every preset (both paths,
    both dtypes) must leave them as they were, or every later call would compute with them."""
    import lstmlab as ll
    from lstmlab.kernels import _api
    T, B = 5, 20
    for dtype in (np.float64, np.float32):
        dt = np.dtype(dtype)
        for name in PRESETS:
            for H in (4, 40):                                  # small and large path
                lstm = ll.LSTM(2, H, variant=name, dtype=dtype, seed=1, backend="compiled")
                x = np.random.default_rng(0).standard_normal((T, B, 2)).astype(dtype)
                y, _, cache = lstm.forward(x)
                lstm.backward(np.ones_like(y), cache)
                assert np.all(_api._ones((T, B), dt) == 1), (name, H)
                assert not np.any(_api._zeros((3, H), dt)), (name, H)
                assert not np.any(_api._zeros((1, 1), dt)), (name, H)


def test_batch_parts():
    """Parts cover the batch in order, nearly equal, at most PART_ROWS rows, by batch size only."""
    from lstmlab.kernels._api import PART_ROWS, batch_parts
    for B in (1, 2, PART_ROWS, PART_ROWS + 1, 32, 37, 300):
        b = batch_parts(B)
        sizes = np.diff(b)
        assert b[0] == 0 and b[-1] == B and np.all(sizes >= 1), B
        assert sizes.max() <= PART_ROWS and sizes.max() - sizes.min() <= 1, B
        assert len(b) - 1 == -(-B // PART_ROWS), B


@pytest.mark.parametrize("name", ["peephole_clip", "fgr", "lstm"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_threads_give_the_same_bits(name, dtype):
    """The small path's batch parts on 1, 2 or 3 threads: identical bits, and equal to the
    reference (B = 37 gives three parts; padded rows from random lengths)."""
    spec = SPECS[name]
    rng = np.random.default_rng(11)
    T, B, H = 9, 37, 8
    a = lstm_inputs(rng, spec, T, B, H, dtype, "lengths")
    args = (a["W"], a["peep"], a["R"])
    import numba

    from lstmlab.kernels import _api
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has one thread here: nothing runs in parallel")
    before = kernels.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3):
            kernels.set_num_threads(n)
            fwd = kernels.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], a["mask"],
                                            large=False)
            bwd = kernels.lstm_loop_backward(spec, *fwd, *args, a["mask"], a["dY"], a["dh"],
                                             a["dc"], large=False)
            outs.append([x for x in (*fwd, *bwd) if x is not None])
            if n > 1 and _api._threads["layer_ok"] is False:
                pytest.skip("numba's threading layer is workqueue here: the parts run in turn")
            if n > 1:                                # the prange drivers did run
                assert _api._threads["layer_ok"] is True and kernels.get_num_threads() > 1
    finally:
        kernels.set_num_threads(before)
    for other in outs[1:]:
        for x, y in zip(outs[0], other):
            np.testing.assert_array_equal(x, y)
    ref = cells.lstm_loop_forward(spec, a["xp"], *args, a["h0"], a["c0"], a["mask"])
    refb = cells.lstm_loop_backward(spec, *ref, *args, a["mask"], a["dY"], a["dh"], a["dc"])
    for x, y in zip(outs[0], [r for r in (*ref, *refb) if r is not None]):
        close(x, y, dtype, name)


def test_forked_child_after_threaded_kernels():
    """GNU OpenMP cannot run in a child forked after its first use (numba would terminate the
    child): a forked child runs the parts in turn and gets the parent's results."""
    code = textwrap.dedent("""
        import multiprocessing as mp, numpy as np
        from lstmlab import kernels
        from lstmlab.core.spec import PRESETS
        spec = PRESETS["peephole"]
        rng = np.random.default_rng(0)
        T, B, H = 5, 40, 8
        xp, W = rng.standard_normal((T, B, 4 * H)), rng.standard_normal((4 * H, H))
        peep, h0 = rng.standard_normal((3, H)), np.zeros((B, H))
        kernels.set_num_threads(2)
        def run(_=None):
            return kernels.lstm_loop_forward(spec, xp, W, peep, None, h0, h0, None)[0]
        parent = run()
        with mp.get_context("fork").Pool(1) as pool:
            child = pool.map_async(run, [0]).get(timeout=60)[0]
        assert np.array_equal(parent, child)
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_lstm_long_sequence_float64():
    """A Gers-2002-sized sequence: equality to 1e-12 holds after 150 steps of recurrence."""
    rng = np.random.default_rng(3)
    spec = PRESETS["peephole"]
    a = lstm_inputs(rng, spec, 150, 32, 8, np.float64, "lengths")
    ref = cells.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], None, a["h0"], a["c0"], a["mask"])
    out = kernels.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], None, a["h0"], a["c0"], a["mask"])
    for x, y in zip(out, ref):
        close(x, y, np.float64)
    refb = cells.lstm_loop_backward(spec, *ref, a["W"], a["peep"], None, a["mask"], a["dY"], a["dh"], a["dc"])
    outb = kernels.lstm_loop_backward(spec, *ref, a["W"], a["peep"], None, a["mask"], a["dY"], a["dh"], a["dc"])
    for x, y in zip(outb, refb):
        close(x, y, np.float64)


def test_lstm_saturated_gates():
    """Very large preactivations (saturated sigmoids and tanh) stay finite and equal."""
    rng = np.random.default_rng(11)
    spec = PRESETS["peephole"]
    a = lstm_inputs(rng, spec, 6, 4, 5, np.float64, "none")
    a["xp"] *= 80.0
    ref = cells.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], None, a["h0"], a["c0"], None)
    out = kernels.lstm_loop_forward(spec, a["xp"], a["W"], a["peep"], None, a["h0"], a["c0"], None)
    for x, y in zip(out, ref):
        assert np.all(np.isfinite(x))
        close(x, y, np.float64)


# ----------------------------------------------------------------------------------------------
# Loop level: GRU and RNN
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("large", PATHS, ids=["auto", "small", "large"])
def test_gru_loops_match_reference(large, dtype):
    rng = np.random.default_rng(21 + (large is True) + 2 * (large is False))
    for case in range(5):
        T, B, H = int(rng.integers(1, 12)), int(rng.integers(1, 7)), int(rng.integers(1, 11))
        r = lambda *s: (0.5 * rng.standard_normal(s)).astype(dtype)  # noqa: E731
        xp, W, bh, h0 = r(T, B, 3 * H), r(3 * H, H), r(3 * H), r(B, H)
        mask = make_mask(rng, T, B, dtype, ("none", "lengths")[case % 2])
        ref = cells.gru_loop_forward(xp, W, bh, h0, mask)
        out = kernels.gru_loop_forward(xp, W, bh, h0, mask, large=large)
        for what, x, y in zip(("Hs", "G", "HPn"), out, ref):
            close(x, y, dtype, what)
        dY, dh = r(T, B, H), r(B, H)
        refb = cells.gru_loop_backward(*ref, W, mask, dY, dh)
        outb = kernels.gru_loop_backward(*ref, W, mask, dY, dh, large=large)
        for what, x, y in zip(("dxp", "dW_hh", "db_hh", "dh0"), outb, refb):
            close(x, y, dtype, what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("large", PATHS, ids=["auto", "small", "large"])
def test_rnn_loops_match_reference(large, dtype):
    rng = np.random.default_rng(31 + (large is True) + 2 * (large is False))
    for case in range(5):
        T, B, H = int(rng.integers(1, 12)), int(rng.integers(1, 7)), int(rng.integers(1, 11))
        r = lambda *s: (0.5 * rng.standard_normal(s)).astype(dtype)  # noqa: E731
        xp, W, h0 = r(T, B, H), r(H, H), r(B, H)
        mask = make_mask(rng, T, B, dtype, ("none", "lengths")[case % 2])
        ref = cells.rnn_loop_forward(xp, W, h0, mask)
        out = kernels.rnn_loop_forward(xp, W, h0, mask, large=large)
        close(out, ref, dtype, "Hs")
        dY, dh = r(T, B, H), r(B, H)
        refb = cells.rnn_loop_backward(ref, W, mask, dY, dh)
        outb = kernels.rnn_loop_backward(ref, W, mask, dY, dh, large=large)
        for what, x, y in zip(("dxp", "dW_hh", "dh0"), outb, refb):
            close(x, y, dtype, what)


def test_large_hidden_gru_rnn():
    rng = np.random.default_rng(5)
    T, B, H = 4, 3, 70
    r = lambda *s: (0.3 * rng.standard_normal(s))  # noqa: E731
    mask = make_mask(rng, T, B, np.float64, "lengths")
    for large in (False, True):
        xp, W, bh, h0 = r(T, B, 3 * H), r(3 * H, H), r(3 * H), r(B, H)
        ref = cells.gru_loop_forward(xp, W, bh, h0, mask)
        for x, y in zip(kernels.gru_loop_forward(xp, W, bh, h0, mask, large=large), ref):
            close(x, y, np.float64)
        dY, dh = r(T, B, H), r(B, H)
        for x, y in zip(kernels.gru_loop_backward(*ref, W, mask, dY, dh, large=large),
                        cells.gru_loop_backward(*ref, W, mask, dY, dh)):
            close(x, y, np.float64)
        xp, W = r(T, B, H), r(H, H)
        ref = cells.rnn_loop_forward(xp, W, h0, mask)
        close(kernels.rnn_loop_forward(xp, W, h0, mask, large=large), ref, np.float64)
        for x, y in zip(kernels.rnn_loop_backward(ref, W, mask, dY, dh, large=large),
                        cells.rnn_loop_backward(ref, W, mask, dY, dh)):
            close(x, y, np.float64)



@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(150, 32, 1, 32), (6, 9, 3, 12), (7, 3, 5, 12),
                                   (3, 70, 16, 20), (4, 5, 17, 8), (3, 4, 255, 12), (2, 3, 256, 8)],
                         ids=["gers", "d3_columns", "odd", "d16_long", "d17_bias_column",
                              "d255_bias_column", "d256_blas"])
def test_input_projection_matches_reference(shape, dtype):
    """Compiled projection (D <= PROJ_COLUMNS_MAX_D: vectorised along rows; up to PROJ_MAX_D:
    register tiles), BLAS with the bias as a column of ones (D up to PROJ_BIAS_COLUMN_MAX_D) and
    plain BLAS (wider) equal the reference; T*B = 4800 and 210 rows run over several PROJ_BLOCK
    blocks, G = 12 and 20 over a partial tile."""
    from lstmlab.kernels import _api, _jit
    assert _api.PROJ_MAX_D == 16 and _api.PROJ_BIAS_COLUMN_MAX_D == 255     # the ids above
    assert _jit.PROJ_COLUMNS_MAX_D == 4
    T, B, D, G = shape
    rng = np.random.default_rng(sum(shape))
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    x, W, b, dxp = r(T, B, D), r(G, D), r(G), r(T, B, G)
    close(kernels.input_projection(x, W, b), cells.input_projection(x, W, b), dtype, "xp")
    out = kernels.input_projection_backward(dxp, x, W)
    ref = cells.input_projection_backward(dxp, x, W)
    for what, a, e in zip(("dx", "dW_ih", "db"), out, ref):
        assert a.dtype == dtype, what
        close(a, e, dtype, what)
    # the products of x with W are the reference's exactly when D = 1 (one product per element)
    if D == 1:
        np.testing.assert_array_equal(kernels.input_projection(x, W, b), cells.input_projection(x, W, b))
    # without the input gradient: dx is None, the rest unchanged
    dx, dW, db = kernels.input_projection_backward(dxp, x, W, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dW, out[1])
    np.testing.assert_array_equal(db, out[2])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("V", [1, 16, 17, 103])
def test_token_ids_projection_matches_reference(V, dtype):
    """Token ids (T, B): the compiled projection equals the reference's gather bit for bit; its
    gradients equal the reference's scatter-add (bit for bit through the one-hot product up to
    PROJ_MAX_D = 16 tokens, the compiled scatter-add from 17; T*B = 210 rows, several PROJ_BLOCK
    blocks for db); dx is None."""
    from lstmlab.kernels import _api
    assert _api.PROJ_MAX_D == 16                                       # the ids above
    rng = np.random.default_rng(V)
    T, B, G = 30, 7, 24
    ids = rng.integers(0, V, (T, B))
    W, b = rng.standard_normal((G, V)).astype(dtype), rng.standard_normal(G).astype(dtype)
    dxp = rng.standard_normal((T, B, G)).astype(dtype)
    xp = kernels.input_projection(ids, W, b)
    np.testing.assert_array_equal(xp, cells.input_projection(ids, W, b))
    np.testing.assert_array_equal(xp, cells.input_projection(np.eye(V, dtype=dtype)[ids], W, b))
    out = kernels.input_projection_backward(dxp, ids, W, input_grad=True)
    ref = cells.input_projection_backward(dxp, ids, W)
    dense = kernels.input_projection_backward(dxp, np.eye(V, dtype=dtype)[ids], W, False)
    assert out[0] is None and ref[0] is None
    for what, a, e, d in zip(("dW_ih", "db"), out[1:], ref[1:], dense[1:]):
        assert a.dtype == dtype and a.shape == e.shape, what
        close(a, e, dtype, what)
        if V <= 16:
            np.testing.assert_array_equal(a, d, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_compiled_adam_gives_numpys_bits(dtype, monkeypatch):
    """Adam's one-pass compiled update against its NumPy expression (kernels.adam_update patched
    out), over steps whose bias corrections change, on a matrix, a vector and a Fortran-ordered
    parameter (which the kernel declines: NumPy updates it)."""
    import lstmlab as ll

    rng = np.random.default_rng(5)
    shapes = {"w": (33, 7), "b": (33,), "f": (4, 6)}
    start = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    start["f"] = np.asfortranarray(start["f"])
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()} for _ in range(4)]
    runs = []
    for compiled in (True, False):
        with monkeypatch.context() as mp:
            if not compiled:
                mp.setattr(kernels, "adam_update", lambda *a: False)
            params = {k: v.copy(order="K") for k, v in start.items()}
            opt = ll.Adam(params, lr=0.05, betas=(0.8, 0.99))
            for g in grads:
                opt.step(g)
            runs.append((params, opt.m, opt.v))
    for k in shapes:
        assert not np.array_equal(runs[0][0][k], start[k]), k
        for a, b in zip(runs[0], runs[1]):
            assert a[k].dtype == dtype
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    # contiguous arrays of one dtype take the kernel; a gradient of another dtype is declined
    p, m, v = np.ones(3, dtype), np.zeros(3, dtype), np.zeros(3, dtype)
    other = np.float32 if dtype == np.float64 else np.float64
    s = kernels.adam_scalars(dtype, 0.9, 0.999, 0.1, 0.5, 1e-8)
    assert not kernels.adam_update(p, np.ones(3, other), m, v, s)
    assert np.all(p == 1) and np.all(m == 0)
    assert kernels.adam_update(p, np.ones(3, dtype), m, v, s)
    assert np.all(p < 1) and np.all(m > 0)


# ----------------------------------------------------------------------------------------------
# Interface details
# ----------------------------------------------------------------------------------------------

def test_mask_must_be_zero_one():
    spec = PRESETS["lstm"]
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="mask"):
        kernels.lstm_loop_forward(spec, np.zeros((2, 2, 12)), np.zeros((12, 3)), None, None,
                                  np.zeros((2, 3)), np.zeros((2, 3)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="mask"):
        kernels.rnn_loop_forward(np.zeros((2, 2, 3)), np.zeros((3, 3)), z[:2], np.ones((3, 2)))


def test_inputs_need_not_be_contiguous_or_same_dtype():
    rng = np.random.default_rng(2)
    spec = PRESETS["peephole"]
    T, B, H = 5, 4, 3
    xp = rng.standard_normal((B, T, 4 * H)).transpose(1, 0, 2)       # non-contiguous view
    W = np.asfortranarray(rng.standard_normal((4 * H, H)))
    peep = rng.standard_normal((3, H)).astype(np.float32)             # other dtype: cast
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    ref = cells.lstm_loop_forward(spec, xp, W, peep.astype(np.float64), None, h0, c0, None)
    out = kernels.lstm_loop_forward(spec, xp, W, peep, None, h0, c0, None)
    for x, y in zip(out, ref):
        close(x, y, np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_elementary_functions(dtype):
    lo = -300 if dtype == np.float64 else -37
    x = np.concatenate([np.linspace(-60, 60, 20001), np.logspace(lo, 2.5, 5000),
                        -np.logspace(lo, 2.5, 5000), [0.0, -0.0, 700.0, -700.0]]).astype(dtype)
    out = np.empty_like(x)
    xx = x.astype(np.float64)
    _jit.vec_tanh(x, out)
    ref = np.tanh(xx)
    rel = np.abs(out - ref) / np.maximum(np.abs(ref), np.finfo(dtype).tiny)
    assert rel.max() < (1e-15 if dtype == np.float64 else 4e-7)
    _jit.vec_sigmoid(x, out)
    e = np.exp(-np.abs(xx))
    ref = np.where(xx >= 0, 1 / (1 + e), e / (1 + e))
    normal = ref > np.finfo(dtype).tiny
    rel = np.abs(out - ref)[normal] / ref[normal]
    assert rel.max() < (1e-15 if dtype == np.float64 else 4e-7)
    assert np.all(np.abs(out - ref)[~normal] <= 2 * np.finfo(dtype).tiny)   # clamped below


# ----------------------------------------------------------------------------------------------
# Through the sequence layer
# ----------------------------------------------------------------------------------------------

def _randomize(module, rng):
    for p in module.params.values():
        p += (0.3 * rng.standard_normal(p.shape)).astype(p.dtype) * (p != 0)


def _layer_pair(cls, rng, **kw):
    import lstmlab as ll

    a = getattr(ll, cls)(backend="reference", **kw)
    _randomize(a, rng)
    b = getattr(ll, cls)(backend="compiled", **kw)
    for k in a.params:
        b.params[k][...] = a.params[k]
    return a, b


@pytest.mark.parametrize("variant", ["lstm", "peephole", "cifg", "fgr", "nfg", "gru", "rnn"])
def test_layers_match_reference(variant):
    pytest.importorskip("lstmlab.core.layers")
    rng = np.random.default_rng(zlib.crc32(variant.encode()))
    cls = {"gru": "GRU", "rnn": "RNN"}.get(variant, "LSTM")
    for dtype in (np.float64, np.float32):
        for layers, bidir in ((1, False), (2, True)):
            T, B, D, H = int(rng.integers(2, 9)), int(rng.integers(1, 5)), 3, int(rng.integers(2, 7))
            kw = dict(input_size=D, hidden_size=H, num_layers=layers, bidirectional=bidir,
                      dtype=dtype, seed=int(rng.integers(100)))
            if cls == "LSTM":
                kw["variant"] = variant
            ref, comp = _layer_pair(cls, rng, **kw)
            x = rng.standard_normal((T, B, D)).astype(dtype)
            lengths = rng.integers(1, T + 1, size=B)
            dirs = 2 if bidir else 1
            yr, sr, cr = ref.forward(x, lengths=lengths)
            yc, sc, cc = comp.forward(x, lengths=lengths)
            close(yc, yr, dtype, "y")
            for a, b in zip(np.atleast_1d(sc) if cls != "LSTM" else sc,
                            np.atleast_1d(sr) if cls != "LSTM" else sr):
                close(a, b, dtype, "state")
            dy = rng.standard_normal((T, B, dirs * H)).astype(dtype)
            dxr, d0r, gr = ref.backward(dy, cr)
            dxc, d0c, gc = comp.backward(dy, cc)
            close(dxc, dxr, dtype, "dx")
            for k in gr:
                close(gc[k], gr[k], dtype, k)


# ----------------------------------------------------------------------------------------------
# Packaging: optional numba, on-disk cache
# ----------------------------------------------------------------------------------------------

def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(_jit.__file__)))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=600)


def test_import_without_numba():
    p = _run("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "numba" or name.startswith("numba."):
                    raise ImportError("numba blocked for this test")
        sys.meta_path.insert(0, Block())
        import lstmlab.kernels as k
        assert not k.available()
        assert "numba" in k.unavailable_reason()
        try:
            k.lstm_loop_forward(None, None, None, None, None, None, None, None)
        except RuntimeError as e:
            assert "numba" in str(e)
        else:
            raise AssertionError("expected RuntimeError")
        import numpy as np, lstmlab as ll
        p = {"w": np.ones(3)}
        ll.Adam(p, lr=0.1).step({"w": np.ones(3)})       # NumPy's update
        assert np.allclose(p["w"], 0.9)
        print("ok")
    """)
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout


def test_compilation_is_cached_on_disk():
    kernels.warmup(("float64",))          # compiles, or loads what an earlier process compiled
    p = _run("""
        import numpy as np
        import lstmlab.kernels as k
        from lstmlab.kernels import _jit
        from lstmlab.core.spec import PRESETS
        k.lstm_loop_forward(PRESETS["peephole"], np.zeros((3, 2, 8)), np.zeros((8, 2)),
                            np.zeros((3, 2)), None, np.zeros((2, 2)), np.zeros((2, 2)), None)
        s = _jit.lstm_fwd_small.stats
        print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))
    """)
    assert p.returncode == 0, p.stderr
    hits, misses = p.stdout.split()[-2:]
    assert int(hits) >= 1 and int(misses) == 0, p.stdout


def test_warmup_shares_every_piece_out_once():
    from lstmlab.kernels import _PIECES, _share_out
    for jobs in (1, 2, 3, 50):
        for threaded in (False, True):
            groups = _share_out(jobs, threaded)
            assert len(groups) == min(jobs, len(_PIECES))
            flat = [k for g in groups for k in g]
            assert sorted(flat) == sorted(_PIECES), groups     # each piece in one process only
    def cost(group):
        return sum(sum(_PIECES[k]) for k in group)

    a, b = _share_out(2, True)
    assert abs(cost(a) - cost(b)) <= max(sum(c) for c in _PIECES.values()) / 2


def test_warmup_pieces_compile_disjoint_kernels(monkeypatch):
    """Each kernel that the wrappers call belongs to exactly one piece, so that no two warmup
    processes compile (and add to the cache index of) the same kernel. The kernels are recorded,
    not run."""
    import inspect
    import re

    from lstmlab.kernels import _PIECES, _api
    seen: dict[str, set] = {}
    current = []
    monkeypatch.setattr(_api, "_call", lambda kernel, dt, *a: seen[current[0]].add(kernel.__name__))
    for piece in _PIECES:
        current[:] = [piece]
        seen[piece] = set()
        kernels._warm([piece], ["float64"])
    names = [k for ks in seen.values() for k in ks]
    assert len(names) == len(set(names)), seen
    called = set(re.findall(r"_call\(_jit\.(\w+)", inspect.getsource(_api)))
    threaded = {"lstm_fwd_parts", "lstm_bwd_parts"}          # with threads: in lstm_fwd/bwd
    assert called - threaded == set(names), (called, seen)


def test_warmup_processes_fill_the_disk_cache(tmp_path, monkeypatch):
    """Two processes each compile their pieces into the cache that a third process then loads
    (a fresh cache directory, two cheap pieces)."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    kernels._warm_in_processes([["adam"], ["rnn"]], ["float64"], (1,))
    p = _run("""
        import numpy as np
        import lstmlab.kernels as k
        from lstmlab.kernels import _jit
        k._warm(["adam", "rnn"], ["float64"])
        for f in (_jit.adam_update, _jit.rnn_fwd_small, _jit.rnn_bwd_small):
            s = f.stats
            print(f.__name__, sum(s.cache_hits.values()), sum(s.cache_misses.values()))
    """)
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.splitlines()]
    assert len(rows) == 3
    for name, hits, misses in rows:
        assert int(hits) >= 1 and int(misses) == 0, p.stdout


def test_warmup_reports_a_failing_process():
    with pytest.raises(RuntimeError, match="unknown"):
        kernels._warm_in_processes([["no_such_piece"]], ["float64"], (1,))
    with pytest.raises(ValueError, match="jobs"):
        kernels.warmup(jobs=0)
    with pytest.raises(ValueError, match="dtypes"):
        kernels.warmup(("int32",), jobs=2)
