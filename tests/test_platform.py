"""The one training loop with other models, losses and tasks: an embedding, stacked layers, a
softmax head, truncated BPTT, SGD; the gradient of the whole model checked end to end."""
import numpy as np
import pytest

from lstmlab.core.gradcheck import numeric_gradient, rel_error
from lstmlab.core.losses import LOSSES, bernoulli_nll
from lstmlab.tasks import make_task
from lstmlab.train import TrainConfig, train
from lstmlab.train.loop import _chunks, build_model

COPY = dict(task="copy", task_args={"T": 5, "n_copy": 3, "categories": 4}, hidden=16, batch=32,
            lr=1e-2, schedule="constant", eval_size=64, backend="reference")


def cfg(**over):
    return TrainConfig(**{**COPY, "iters": 300, "eval_every": 100, **over})


@pytest.mark.parametrize("variant,embed", [("lstm", 4), ("peephole", 0), ("gru", 3)])
def test_whole_model_gradient_matches_finite_differences(variant, embed):
    c = cfg(variant=variant, layers=2, embed=embed, hidden=3)
    task = c.make_task()
    model = build_model(c, task)
    rng = np.random.default_rng(3)
    for p in model.params.values():                    # no test passes because of zero biases
        p += rng.normal(scale=0.3, size=p.shape) * (p != 0)
    batch = task.sample(2, np.random.default_rng(0))
    state = model.initial_state(2)
    state = tuple(rng.normal(size=s.shape) for s in state) if isinstance(state, tuple) else \
        rng.normal(size=state.shape)

    def loss():
        pred, _, _ = model.forward(batch.x, state)
        return LOSSES[task.loss](pred, batch.y, batch.mask)[0]

    pred, _, cache = model.forward(batch.x, state)
    _, dpred = LOSSES[task.loss](pred, batch.y, batch.mask)
    grads = model.backward(dpred, cache)
    assert set(grads) == set(model.params)
    assert ("embed.weight" in grads) == (embed > 0) and "rnn.weight_hh_l1" in grads
    for name, p in model.params.items():
        assert rel_error(grads[name], numeric_gradient(loss, p)) < 1e-6, name


def test_bernoulli_nll_gradient_and_value():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 3, 5))
    y = (rng.random((4, 3, 5)) < 0.3).astype(float)
    mask = rng.random((4, 3)) < 0.7
    loss, d = bernoulli_nll(z, y, mask)
    p = 1 / (1 + np.exp(-z))
    direct = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(2)
    assert loss == pytest.approx((direct * mask).sum() / mask.sum(), rel=1e-12)
    f = lambda: bernoulli_nll(z, y, mask)[0]  # noqa: E731
    assert rel_error(d, numeric_gradient(f, z)) < 1e-7
    with pytest.raises(ValueError, match="targets"):
        bernoulli_nll(z, y + 2, mask)


def test_embedding_two_layer_lstm_softmax_learns_copy():
    """The copy task at a lag of 5: the model must beat the memoryless baseline clearly."""
    s = train(cfg(variant="lstm", layers=2, embed=8), None, quiet=True)
    assert s["headline"] == "xent"
    assert s["xent"] < 0.85 * s["baseline"], s


def test_truncated_bptt_dropout_sgd_resume_is_bit_identical(tmp_path):
    c = cfg(variant="lstm", layers=2, embed=4, tbptt=4, dropout=0.2, optimizer="sgd", lr=0.1,
            iters=12, eval_every=4, checkpoint_every=4)
    full = train(c, tmp_path / "a", quiet=True)
    assert train(c, tmp_path / "b", quiet=True, stop_after=6)["status"] == "stopped"
    resumed = train(c, tmp_path / "b", resume=True, quiet=True)
    for k in full["params"]:
        assert np.array_equal(full["params"][k], resumed["params"][k]), k
    assert _chunks(13, 4) == [(0, 4), (4, 8), (8, 12), (12, 13)] and _chunks(13, 0) == [(0, 13)]


def test_truncated_bptt_carries_the_state():
    """With the state carried, a chunked forward equals the full forward exactly."""
    c = cfg(variant="lstm", layers=2, embed=4)
    task = c.make_task()
    model = build_model(c, task)
    x = task.sample(3, np.random.default_rng(1)).x
    full, _, _ = model.forward(x)
    state, parts = None, []
    for s, e in _chunks(x.shape[0], 4):
        p, state, _ = model.forward(x[s:e], state)
        parts.append(p)
    np.testing.assert_allclose(np.concatenate(parts), full, rtol=0, atol=1e-13)


def test_adding_task_baseline_and_criterion():
    task = make_task("adding", T=30)
    b = task.sample(500, np.random.default_rng(0))
    assert b.x.shape == (30, 500, 2) and b.mask.sum() == 500 and (b.x[:, :, 1].sum(0) == 2).all()
    const = np.ones((30, 500, 1))
    m = task.evaluate(const, b)
    assert 0.14 < m["mse"] < 0.19 and m["baseline_mse"] == pytest.approx(1 / 6)
    assert task.evaluate(b.y, b)["solve_rate"] == 1.0


def test_copy_task_layout_and_baseline():
    task = make_task("copy", T=7, n_copy=3, categories=4)
    b = task.sample(5, np.random.default_rng(0))
    assert b.x.shape == (13, 5) and (b.x[9] == 5).all() and (b.y[10:] == b.x[:3]).all()
    onehot = np.eye(5)[b.y] * 50.0
    perfect = task.evaluate(onehot, b)
    assert perfect["solve_rate"] == 1.0 and perfect["xent"] < 1e-6
    assert task.baseline == pytest.approx(3 * np.log(4) / 13)


@pytest.mark.parametrize("args", [dict(T=3, scale_intervals=True), dict(T=20, D_min=1, D_max=5)])
def test_degenerate_msd_pair_is_refused(args):
    with pytest.raises(ValueError, match="degenerate"):
        make_task("msd-pair", **args)


@pytest.mark.parametrize("name,args", [("adding-1997", {"T": 100}), ("multiplication", {"T": 50})])
def test_1997_adding_and_multiplication_layout(name, args):
    task = make_task(name, **args)
    b = task.sample(400, np.random.default_rng(1))
    T = args["T"]
    lengths = b.info["lengths"]
    assert lengths.min() >= T and lengths.max() <= T + T // 10
    assert (b.mask.sum(0) == 1).all() and (np.argmax(b.mask, 0) == lengths - 1).all()
    marked = b.x[:, :, 1] == 1.0
    assert (marked.sum(0) == 2).all() and (b.info["first"] < 10).all()
    assert (b.info["second"] < T // 2 - 1).all()
    v = b.x[:, :, 0]
    cols = np.arange(400)
    x1, x2 = v[b.info["first"], cols], v[b.info["second"], cols]
    want = 0.5 + (x1 + x2) / 4 if name == "adding-1997" else x1 * x2
    np.testing.assert_allclose(b.y[lengths - 1, cols, 0], want)
    assert task.evaluate(b.y, b)["solve_rate"] == 1.0
    assert task.evaluate(b.y + 0.05 * b.mask[:, :, None], b)["wrong"] == 400


@pytest.mark.parametrize("n", [2, 3])
def test_temporal_order_classes(n):
    task = make_task("temporal-order", n_relevant=n)
    b = task.sample(300, np.random.default_rng(2))
    cols = np.arange(300)
    assert (b.x[0] == 6).all() and (b.x[b.info["lengths"] - 1, cols] == 7).all()
    relevant = (b.x == 4) | (b.x == 5)
    assert (relevant.sum(0) == n).all()
    syms = np.array([b.x[relevant[:, j], j] - 4 for j in range(300)])      # (B, n) in order
    assert (syms @ (2 ** np.arange(n)[::-1]) == b.info["label"]).all()
    assert len(set(b.info["label"])) == 2 ** n
