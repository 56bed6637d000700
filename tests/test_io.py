"""Save and load: safetensors files, atomic writes, clear errors for damaged files."""
import os

import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core import io as llio

from conftest import randomize


@pytest.mark.parametrize("make", [
    lambda: ll.LSTM(2, 3, variant="fgr", num_layers=2, bidirectional=True, dropout=0.2, seed=4),
    lambda: ll.LSTM(2, 3, variant=ll.CellSpec(peephole=True, input_activation=False, cell_clip=2.0)),
    lambda: ll.LSTM(2, 3, dtype=np.float32),
    lambda: ll.GRU(2, 3, num_layers=2),
    lambda: ll.RNN(2, 3, bidirectional=True),
    lambda: ll.Dense(3, 2),
    lambda: ll.Embedding(5, 2),
])
def test_round_trip(make, tmp_path, rng):
    m = make()
    randomize(m, rng)
    path = tmp_path / "model.safetensors"
    ll.save(m, path)
    m2 = ll.load(path)
    assert type(m2) is type(m) and m2.config() == m.config()
    for k, v in m.params.items():
        assert m2.params[k].dtype == v.dtype
        np.testing.assert_array_equal(m2.params[k], v)
    if isinstance(m, (ll.LSTM, ll.GRU, ll.RNN)):
        x = rng.normal(size=(4, 2, 2))
        np.testing.assert_array_equal(m.forward(x)[0], m2.forward(x)[0])


def test_files_are_readable_by_the_safetensors_package(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    m = randomize(ll.LSTM(2, 3, variant="peephole"), rng)
    ll.save(m, tmp_path / "m.safetensors")
    loaded = st.load_file(str(tmp_path / "m.safetensors"))
    assert set(loaded) == set(m.params)
    for k in loaded:
        np.testing.assert_array_equal(loaded[k], m.params[k])
    # and files written by the safetensors package load as plain arrays too (no metadata: refused)
    st.save_file({"w": np.ones((2, 2))}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(ValueError, match="missing lstmlab metadata"):
        ll.load_arrays(tmp_path / "foreign.safetensors")
    arrays, config = ll.load_arrays(tmp_path / "foreign.safetensors", plain=True)
    assert config == {} and np.array_equal(arrays["w"], np.ones((2, 2)))


def test_a_torch_state_dict_saved_by_safetensors_loads_into_lstm(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    tm = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, str(tmp_path / "t.safetensors"))
    m = ll.LSTM(3, 4, num_layers=2)
    ll.load_into(m, tmp_path / "t.safetensors")
    x = np.random.default_rng(0).normal(size=(5, 2, 3))
    y, _, _ = m.forward(x)
    np.testing.assert_allclose(y, tm(torch.from_numpy(x))[0].detach().numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        ll.load_into(ll.LSTM(3, 4), tmp_path / "t.safetensors")


def test_truncated_file_is_refused(tmp_path, rng):
    path = tmp_path / "m.safetensors"
    ll.save(randomize(ll.LSTM(2, 3), rng), path)
    data = path.read_bytes()
    for cut in (4, 20, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated|not a valid"):
            ll.load(path)


def test_tampered_file_is_refused(tmp_path, rng):
    path = tmp_path / "m.safetensors"
    ll.save(randomize(ll.LSTM(2, 3), rng), path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01                                    # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        ll.load(path)


def test_tampered_config_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    ll.save_arrays(path, {"w": np.ones(3)}, {"hidden_size": 8})
    data = path.read_bytes().replace(b'\\"hidden_size\\": 8', b'\\"hidden_size\\": 9')
    path.write_bytes(data)
    with pytest.raises(ValueError, match="checksum mismatch"):
        ll.load_arrays(path)


def test_a_crash_mid_save_keeps_the_old_file(tmp_path, rng, monkeypatch):
    path = tmp_path / "m.safetensors"
    m = randomize(ll.LSTM(2, 3), rng)
    ll.save(m, path)
    before = path.read_bytes()

    def crash(*a, **k):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(os, "replace", crash)
    m.params["weight_hh_l0"] += 1.0
    with pytest.raises(KeyboardInterrupt):
        ll.save(m, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]     # no temporary file left behind


def test_no_pickle_and_int_arrays(tmp_path):
    path = tmp_path / "a.safetensors"
    llio.save_arrays(path, {"step": np.array(7), "w": np.arange(6, dtype=np.int32).reshape(2, 3)}, {"k": [1, 2]})
    arrays, cfg = llio.load_arrays(path)
    assert cfg == {"k": [1, 2]} and int(arrays["step"]) == 7 and arrays["w"].dtype == np.int32
    assert b"pickle" not in path.read_bytes() and path.read_bytes()[8:9] == b"{"


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    """mkstemp makes its files 0600; a written page or config must be readable like any file."""
    import os
    import stat
    from lstmlab.core.io import atomic_write_json
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_json(tmp_path / "a.json", {"a": 1})
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(plain)
