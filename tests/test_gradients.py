"""Hand-derived BPTT against central differences, for every cell, layout and the small layers."""
import numpy as np
import pytest

import lstmlab as ll
from lstmlab.core.gradcheck import SUITE_LAYOUTS, gradcheck_suite
from lstmlab.core.gradcheck import numeric_gradient as _numeric
from lstmlab.core.gradcheck import rel_error as _rel_error
from lstmlab.core.spec import PRESETS

from conftest import randomize

VARIANTS = [*PRESETS, "gru", "rnn"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_every_variant_and_layout(variant):
    """float64, non-zero biases and initial states, variable lengths: worst error below 1e-6."""
    cases = list(gradcheck_suite([variant], list(SUITE_LAYOUTS)))
    assert [c[1] for c in cases] == list(SUITE_LAYOUTS)
    for _, layout, report in cases:
        assert set(report) >= {"x", "h0", "weight_ih_l0", "bias_hh_l0"}
        assert max(report.values()) < 1e-6, (layout, report)


def test_gradcheck_detects_a_wrong_gradient(monkeypatch):
    """The check itself can fail: break the peephole gradient and it must notice."""
    from lstmlab.core import cells

    real = cells.lstm_step_backward

    def broken(*args, **kwargs):
        out = real(*args, **kwargs)
        dpeep = args[13]
        dpeep[2] *= 1.01
        return out

    monkeypatch.setattr(cells, "lstm_step_backward", broken)
    m = randomize(ll.LSTM(2, 3, variant="peephole", backend="reference"), np.random.default_rng(0))
    report = ll.gradcheck_report(m, np.random.default_rng(1).normal(size=(4, 2, 2)))
    assert report["weight_co_l0"] > 1e-3
    assert report["weight_ih_l0"] < 1e-6


def test_gradcheck_with_dropout_between_layers(rng):
    m = randomize(ll.LSTM(2, 3, variant="peephole", num_layers=3, dropout=0.4, backend="reference"), rng)
    x = rng.normal(size=(4, 3, 2))
    assert ll.gradcheck(m, x, lengths=[4, 1, 3], training=True) < 1e-6
    y1, _, c1 = m.forward(x, training=True, rng=np.random.default_rng(5))
    y0, _, c0 = m.forward(x)
    assert c1.dropout_masks[0] is not None and c0.dropout_masks[0] is None
    assert not np.allclose(y0, y1)


def test_dense_and_embedding_gradients(rng):
    dense = ll.Dense(4, 3, seed=1)
    x = rng.normal(size=(5, 2, 4))
    R = rng.normal(size=(5, 2, 3))
    y, cache = dense.forward(x)
    dx, grads = dense.backward(R, cache)
    f = lambda: float((dense.forward(x)[0] * R).sum())  # noqa: E731
    assert _rel_error(dx, _numeric(f, x)) < 1e-7
    for k in ("weight", "bias"):
        assert _rel_error(grads[k], _numeric(f, dense.params[k])) < 1e-7

    emb = ll.Embedding(6, 3, seed=2)
    ids = rng.integers(0, 6, size=(5, 2))
    R = rng.normal(size=(5, 2, 3))
    _, cache = emb.forward(ids)
    _, grads = emb.backward(R, cache)
    f = lambda: float((emb.forward(ids)[0] * R).sum())  # noqa: E731
    assert _rel_error(grads["weight"], _numeric(f, emb.params["weight"])) < 1e-7


def test_loss_gradients(rng):
    pred, target = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    mask = (rng.random((4, 3)) < 0.7).astype(float)
    mask[0, 0] = 1
    loss, d = ll.mse_loss(pred, target, mask)
    assert loss == pytest.approx(((pred - target) ** 2 * mask[:, :, None]).sum() / (mask.sum() * 2))
    assert _rel_error(d, _numeric(lambda: ll.mse_loss(pred, target, mask)[0], pred)) < 1e-7

    logits = rng.normal(size=(4, 3, 5))
    targets = rng.integers(0, 5, size=(4, 3))
    loss, d = ll.softmax_cross_entropy(logits, targets, mask)
    p = np.exp(logits) / np.exp(logits).sum(2, keepdims=True)
    expected = -(np.log(np.take_along_axis(p, targets[:, :, None], 2))[:, :, 0] * mask).sum() / mask.sum()
    assert loss == pytest.approx(expected)
    assert _rel_error(d, _numeric(lambda: ll.softmax_cross_entropy(logits, targets, mask)[0], logits)) < 1e-7
    assert np.all(d[mask == 0] == 0)


def test_gradcheck_command_prints_a_table_and_fails_above_tolerance(capsys):
    from lstmlab.cli import main

    assert main(["gradcheck", "--variant", "rnn", "--variant", "cifg"]) == 0
    out = capsys.readouterr().out
    assert "| cifg | bidirectional |" in out and "0 case(s) above tolerance" in out
    assert main(["gradcheck", "--variant", "rnn", "--tol", "1e-30"]) == 1
    assert "3 case(s) above tolerance" in capsys.readouterr().out
    assert main(["gradcheck", "--variant", "lstn"]) == 2
    assert "unknown 'lstn'" in capsys.readouterr().err
