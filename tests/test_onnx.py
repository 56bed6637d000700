"""lstmlab.onnx: every preset exports, onnx.checker passes, onnxruntime equals the engine."""
import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core.spec import PRESETS

from conftest import randomize

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
lo = pytest.importorskip("lstmlab.onnx")

T, B, D, H = 5, 3, 2, 4
TOL = 2e-5
OPERATOR = {"lstm": "LSTM", "peephole": "LSTM", "cifg": "LSTM", "niaf": "LSTM", "noaf": "LSTM",
            "gru": "GRU", "rnn": "RNN", "nig": "Scan", "nfg": "Scan", "nog": "Scan", "fgr": "Scan",
            "clip": "Scan"}


def _engine(variant, L, bidirectional, rng):
    cls = {"gru": ll.GRU, "rnn": ll.RNN}.get(variant, ll.LSTM)
    v = ll.CellSpec(peephole=True, cell_clip=0.5) if variant == "clip" else variant
    m = randomize(cls(D, H, variant=v, num_layers=L, bidirectional=bidirectional, seed=1), rng)
    for k in m.params:                         # float32 weights: the graph holds them exactly
        m.params[k] = m.params[k].astype(np.float32).astype(np.float64)
    return m


def _ort_run(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def _ops(model):
    return {n.op_type for n in model.graph.node}


@pytest.mark.parametrize("variant", list(PRESETS) + ["gru", "rnn", "clip"])
@pytest.mark.parametrize("L", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_onnxruntime_equals_the_engine(variant, L, bidirectional, with_lengths, rng, tmp_path):
    m = _engine(variant, L, bidirectional, rng)
    path = tmp_path / "m.onnx"
    model = lo.export(m, path, initial_state=True, lengths=with_lengths)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert OPERATOR[variant] in _ops(model)
    if OPERATOR[variant] != "Scan":
        assert "Scan" not in _ops(model)
    n = L * (2 if bidirectional else 1)
    x = rng.normal(size=(T, B, D)).astype(np.float32)
    states = [rng.normal(size=(n, B, H)).astype(np.float32) for _ in range(2 if m.kind == "lstm" else 1)]
    lengths = np.array([T, 2, 4]) if with_lengths else None
    feed = {"x": x, "h0": states[0], **({"c0": states[1]} if m.kind == "lstm" else {}),
            **({"lengths": lengths} if with_lengths else {})}
    got = _ort_run(onnx.load(str(path)), feed)
    st = tuple(s.astype(np.float64) for s in states)
    y, sn, _ = m.forward(x.astype(np.float64), st if m.kind == "lstm" else st[0], lengths)
    want = [y, *(sn if m.kind == "lstm" else (sn,))]
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and np.abs(a - b).max() < TOL
    if with_lengths:
        assert np.all(got[0][2:, 1] == 0)                      # padded steps give zeros


@pytest.mark.parametrize("variant", ["peephole", "fgr", "gru"])
def test_without_state_or_lengths_inputs_and_dynamic_sizes(variant, rng):
    """The minimal graph takes x alone (zero initial state) and any T and B."""
    m = _engine(variant, 2, True, rng)
    model = lo.build(m)
    assert [i.name for i in model.graph.input] == ["x"]
    for Tn, Bn in ((5, 3), (9, 1)):
        x = rng.normal(size=(Tn, Bn, D)).astype(np.float32)
        got = _ort_run(model, {"x": x})
        y, _, _ = m.forward(x.astype(np.float64))
        assert np.abs(got[0] - y).max() < TOL


@pytest.mark.parametrize("variant", ["lstm", "peephole", "nog", "gru"])
def test_torch_twins_export(variant, rng):
    torch = pytest.importorskip("torch")
    import lstmlab.torch as lt
    cls = lt.GRU if variant == "gru" else lt.LSTM
    mod = cls(D, H, num_layers=2, bidirectional=True, variant=variant, batch_first=True)
    x = rng.normal(size=(T, B, D)).astype(np.float32)
    with torch.no_grad():
        want = mod(torch.from_numpy(x).transpose(0, 1))[0].transpose(0, 1).numpy()
    got = _ort_run(lo.build(mod), {"x": x})
    assert np.abs(got[0] - want).max() < TOL
    nobias = lt.LSTM(D, H, bias=False)
    with torch.no_grad():
        want = nobias(torch.from_numpy(x))[0].numpy()
    assert np.abs(_ort_run(lo.build(nobias), {"x": x})[0] - want).max() < TOL


def test_torch_onnx_export_of_a_model_containing_the_twin(tmp_path):
    """torch.onnx.export traces lstmlab.torch.LSTM on its pure-torch path (the recurrence
    unrolled over the traced length); onnxruntime then gives torch's numbers."""
    torch = pytest.importorskip("torch")
    import lstmlab.torch as lt

    class Tagger(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = lt.LSTM(D, H, variant="peephole", bidirectional=True)
            self.head = torch.nn.Linear(2 * H, 3)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    model = Tagger().eval()
    x = torch.randn(T, B, D)
    path = tmp_path / "tagger.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["y"])
    onnx.checker.check_model(onnx.load(str(path)))
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(_ort_run(onnx.load(str(path)), {"x": x.numpy()})[0] - want).max() < TOL


def test_bad_arguments():
    with pytest.raises(ValueError, match="model"):
        lo.build(object())
    with pytest.raises(ValueError, match="initial_state"):
        lo.build(ll.LSTM(D, H), initial_state="yes")
    with pytest.raises(ValueError, match="lengths"):
        lo.build(ll.LSTM(D, H), lengths=1)
    with pytest.raises(ValueError, match="opset"):
        lo.build(ll.LSTM(D, H), opset=9)
    torch = pytest.importorskip("torch")  # noqa: F841
    import lstmlab.torch as lt
    with pytest.raises(ValueError, match="proj_size"):
        lo.build(lt.LSTM(D, H, proj_size=2))
