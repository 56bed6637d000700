"""Bad input raises ValueError naming the argument and what was expected."""
import numpy as np
import pytest

import lstmlab as ll

X = np.zeros((5, 2, 3))


@pytest.fixture
def lstm():
    return ll.LSTM(3, 4, num_layers=2, bidirectional=True)


@pytest.mark.parametrize("x,match", [
    (np.zeros((5, 3)), r"x: expected 3 dimensions"),
    (np.zeros((5, 2, 4)), r"x: expected shape \(\*, \*, 3\)"),
    (np.zeros((0, 2, 3)), r"x: empty"),
    (np.zeros((5, 0, 3)), r"x: empty"),
    (np.full((5, 2, 3), np.nan), r"x: contains NaN or inf"),
    (np.full((5, 2, 3), np.inf), r"x: contains NaN or inf"),
    (np.array([["a"]]), r"x: expected real numbers"),
    (None, r"x: expected an array"),
])
def test_bad_input(lstm, x, match):
    with pytest.raises(ValueError, match=match):
        lstm.forward(x)


@pytest.mark.parametrize("lengths,match", [
    ([5, 6], r"lengths: expected every length in \[1, 5\]"),
    ([0, 3], r"lengths: expected every length in \[1, 5\]"),
    ([5], r"lengths: expected shape \(2,\)"),
    ([[5, 5]], r"lengths: expected shape \(2,\)"),
    ([2.5, 3], r"lengths: expected integers"),
])
def test_bad_lengths(lstm, lengths, match):
    with pytest.raises(ValueError, match=match):
        lstm.forward(X, lengths=lengths)


def test_bad_states(lstm):
    h = np.zeros((4, 2, 4))
    with pytest.raises(ValueError, match=r"h0: expected shape \(4, 2, 4\)"):
        lstm.forward(X, (np.zeros((2, 2, 4)), h))
    with pytest.raises(ValueError, match=r"c0: expected shape \(4, 2, 4\)"):
        lstm.forward(X, (h, np.zeros((4, 3, 4))))
    with pytest.raises(ValueError, match=r"c0: contains NaN"):
        lstm.forward(X, (h, np.full((4, 2, 4), np.nan)))
    with pytest.raises(ValueError, match=r"state: expected a pair \(h0, c0\)"):
        lstm.forward(X, h)
    with pytest.raises(ValueError, match=r"h0: expected 3 dimensions"):
        ll.GRU(3, 4).forward(X, np.zeros((2, 4)))


def test_bad_backward_arguments(lstm):
    y, _, cache = lstm.forward(X)
    with pytest.raises(ValueError, match=r"dy: expected shape \(5, 2, 8\)"):
        lstm.backward(np.zeros((5, 2, 4)), cache)
    with pytest.raises(ValueError, match=r"dy: contains NaN"):
        lstm.backward(np.full(y.shape, np.nan), cache)
    with pytest.raises(ValueError, match=r"dh_n: expected shape"):
        lstm.backward(y, cache, (np.zeros((1, 2, 4)), np.zeros((4, 2, 4))))
    with pytest.raises(ValueError, match=r"cache: expected the SequenceCache"):
        lstm.backward(y, {"not": "a cache"})


@pytest.mark.parametrize("kwargs,match", [
    (dict(variant="peepole"), r"variant: expected one of lstm, peephole, .*got 'peepole'"),
    (dict(variant="gru"), r"variant: 'gru' is its own class"),
    (dict(hidden_size=0), r"hidden_size: expected an integer >= 1"),
    (dict(input_size=2.5), r"input_size: expected an integer >= 1"),
    (dict(num_layers=0), r"num_layers: expected an integer >= 1"),
    (dict(dropout=1.0), r"dropout: expected a probability in \[0, 1\)"),
    (dict(dtype=np.int32), r"dtype: expected float32 or float64"),
    (dict(backend="gpu"), r"backend: expected one of"),
    (dict(init="orthogonal"), r"init: expected one of"),
    (dict(peephole_init="large", variant="peephole"), r"peephole_init: expected one of"),
    (dict(bidirectional="yes"), r"bidirectional: expected True or False"),
])
def test_bad_constructor_arguments(kwargs, match):
    args = dict(input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ll.LSTM(**args)


def test_bad_spec():
    with pytest.raises(ValueError, match="cell_clip"):
        ll.CellSpec(cell_clip=-1.0)
    with pytest.raises(ValueError, match="coupled"):
        ll.CellSpec(coupled=True, forget_gate=False)


def test_bad_loss_and_optimiser_arguments():
    with pytest.raises(ValueError, match="target: expected shape"):
        ll.mse_loss(np.zeros((2, 3, 1)), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="mask: no step"):
        ll.mse_loss(np.zeros((2, 3, 1)), np.zeros((2, 3, 1)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="targets: expected integer classes"):
        ll.softmax_cross_entropy(np.zeros((2, 3, 4)), np.full((2, 3), 4))
    with pytest.raises(ValueError, match="lr: expected a positive"):
        ll.Adam({"w": np.zeros(2)}, lr=0.0)
    with pytest.raises(ValueError, match="grads: keys"):
        ll.Adam({"w": np.zeros(2)}).step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match="ids: expected values in"):
        ll.Embedding(4, 2).forward(np.array([[4]]))
