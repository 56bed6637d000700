"""The Bach chorales task (jsb), early stopping and input noise in the loop, and the Greff et
al. (2017) study: its search space, its statistics and its command."""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("music21")

from lstmlab.tasks.chorales import (KEYS, LOWEST, Chorales, _tonic_shift, load_chorales,
                                    piano_roll, split_of)


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """One parse of the first chorales per test session, in a folder of the tests' own."""
    monkeypatch.setenv("LSTMLAB_CACHE", str(tmp_path_factory.getbasetemp() / "chorale-cache"))


def test_piano_roll_frames_and_shift():
    # a C4 half note from beat 0, an E4 quarter from beat 1.5 (sounds at frame 2 only), a G4
    # eighth at beat 3.5 (starts after frame 3's onset and ends before frame 4: never sampled)
    roll = piano_roll([(0, 2, 60), (1.5, 1, 64), (3.5, 0.5, 67)], shift=2)
    assert roll.shape == (4, KEYS)
    on = {t: sorted(int(k) + LOWEST for k in np.nonzero(roll[t])[0]) for t in range(4)}
    assert on == {0: [62], 1: [62], 2: [66], 3: []}
    with pytest.raises(ValueError, match="notes"):
        piano_roll([(0, 1, 20)])


def test_tonic_shift_takes_every_pitch_class_to_c():
    for pc in range(12):
        s = _tonic_shift(pc)
        assert -6 <= s <= 5 and (pc + s) % 12 == 0


def test_corpus_rolls_are_transposed_to_c_and_cached():
    cs = load_chorales(10)
    assert len(cs.rolls) == 10 and all(r.shape[1] == KEYS and r.dtype == np.uint8 for r in cs.rolls)
    assert all(20 <= len(r) <= 400 and r.sum(axis=1).max() <= 6 for r in cs.rolls)
    # in C major the tonic triad's pitch classes (C, E, G) are the most frequent ones
    hist = np.zeros(12)
    for r, mode in zip(cs.rolls, cs.modes):
        if mode == "major":
            keys = np.nonzero(r)[1] + LOWEST
            hist += np.bincount(keys % 12, minlength=12)
    assert set(np.argsort(hist)[-3:]) <= {0, 2, 4, 5, 7, 9, 11} and hist[0] > hist[1] + hist[6]
    again = load_chorales.__wrapped__(10)                       # read from the cache file
    assert again.sha256 == cs.sha256 and all(np.array_equal(a, b) for a, b in zip(cs.rolls, again.rolls))
    assert [split_of(n) for n in range(5)] == ["train", "train", "train", "valid", "test"]


def test_damaged_cache_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTMLAB_CACHE", str(tmp_path))
    load_chorales.__wrapped__(5)
    (path,) = [tmp_path / f for f in os.listdir(tmp_path)]
    z = dict(np.load(path))
    z["frames"] = z["frames"].copy()
    z["frames"][0, 0] ^= 1
    np.savez(path, **z)
    with pytest.raises(ValueError, match="damaged or stale"):
        load_chorales.__wrapped__(5)


def test_task_batches_and_nll():
    task = Chorales(limit=10)
    b = task.sample(3, np.random.default_rng(0))
    assert b.x.shape[1:] == (3, KEYS) and b.mask.shape == b.x.shape[:2]
    for k, n in enumerate(b.info["lengths"]):
        assert b.mask[:, k].sum() == n and np.array_equal(b.x[1:n, k], b.y[:n - 1, k])
        assert not b.x[n:, k].any() and not b.y[n:, k].any()
    test = Chorales(limit=10, split="test")
    tb = test.sample(1)
    assert tb.x.shape[1] == len(load_chorales(10).split("test")) == 2
    # zero logits: p = 1/2 for every key, so the NLL is 88 ln 2 per frame
    assert test.evaluate(np.zeros(tb.y.shape), tb)["nll"] == pytest.approx(KEYS * math.log(2))
    # the right frames with large logits: NLL near 0 and every key found
    perfect = test.evaluate(np.where(tb.y > 0.5, 30.0, -30.0), tb)
    assert perfect["nll"] < 1e-9 and perfect["frame_accuracy"] == 1.0


@pytest.mark.parametrize("kw,msg", [({"split": "dev"}, "split"), ({"limit": 2}, "limit")])
def test_bad_task_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Chorales(**kw)


# ------------------------------------------------------------------ the loop: patience, noise

def _cfg(**kw):
    from lstmlab.train.config import TrainConfig
    base = dict(task="jsb", task_args={"limit": 10}, test_task_args={"split": "valid"},
                variant="peephole", hidden=12, iters=120, batch=2, optimizer="sgd", lr=2.0,
                momentum=0.9, schedule="constant", clip=0.0, eval_every=10, eval_size=1,
                checkpoint_every=20, patience=2, input_noise=0.3)
    base.update(kw)
    return TrainConfig(**base)


def test_patience_stops_keeps_the_best_weights_and_resumes_exactly(tmp_path):
    from lstmlab.train.loop import evaluate, load_run, read_metrics, train
    cfg = _cfg()
    s = train(cfg, tmp_path / "a", quiet=True)
    nll = [r["nll"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl")]
    best = int(np.argmin(nll))
    assert s["stopped_early"] and len(nll) - 1 - best == cfg.patience       # 2 evaluations after it
    assert s["best_nll"] == nll[best] and s["best_iter"] == 10 * best
    run = load_run(tmp_path / "a", best=True)
    task = cfg.make_task(test=True)
    assert evaluate(run["model"], task, task.sample(1))["nll"] == pytest.approx(nll[best], rel=1e-12)
    train(cfg, tmp_path / "b", quiet=True, stop_after=25)
    r = train(cfg, tmp_path / "b", quiet=True, resume=True)
    assert (r["best_iter"], r["best_nll"], r["iters_run"]) == (s["best_iter"], s["best_nll"], s["iters_run"])
    with pytest.raises(ValueError, match="best"):
        load_run(_plain_run(tmp_path), best=True)


def _plain_run(tmp_path):
    from lstmlab.train.loop import train
    train(_cfg(patience=0, iters=10), tmp_path / "plain", quiet=True)
    return tmp_path / "plain"


def test_input_noise_changes_training_deterministically_and_keeps_old_ids():
    from lstmlab.sweep.spec import run_id
    from lstmlab.train.loop import train
    a = train(_cfg(patience=0, iters=20), None, quiet=True)["params"]
    b = train(_cfg(patience=0, iters=20), None, quiet=True)["params"]
    c = train(_cfg(patience=0, iters=20, input_noise=0.0), None, quiet=True)["params"]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.allclose(a[k], c[k]) for k in a)
    # at their defaults the new fields are not in the config dict: earlier ids stay
    d = _cfg(patience=0, input_noise=0.0).to_dict()
    assert "patience" not in d and "input_noise" not in d
    assert run_id(d) != run_id(_cfg().to_dict())
    with pytest.raises(ValueError, match="input_noise"):
        _cfg(input_noise=-1.0)
    from lstmlab.train.config import TrainConfig
    with pytest.raises(ValueError, match="input_noise: only for real-valued inputs"):
        TrainConfig(task="reverse", task_args={}, input_noise=0.1)


# --------------------------------------------------------------------- the Greff et al. study

def test_draws_cover_the_papers_space_and_repeat():
    from lstmlab.experiments.greff2017 import SPACE, draw
    hps = [draw(v, k) for v in range(10) for k in range(40)]
    assert hps[:3] == [draw(0, 0), draw(0, 1), draw(0, 2)] and draw(0, 0) != draw(1, 0)
    for name, (kind, lo, hi) in SPACE.items():
        xs = np.array([h[name] for h in hps], float)
        assert xs.min() >= lo and xs.max() <= hi
        if kind != "uniform":       # log-uniform: the log spreads evenly over the range
            u = (np.log(xs) - math.log(lo)) / (math.log(hi) - math.log(lo))
            assert 0.4 < np.median(u) < 0.6
    assert all(isinstance(h["hidden"], int) for h in hps)


def test_main_effects_recover_a_known_decomposition():
    """y = 2 x1 + x2 + 0 x3 + noise, x uniform on [0, 1] independently: Var = 4/12 + 1/12 (+
    0.01^2), so the main effects are 0.8, 0.2 and 0."""
    from lstmlab.experiments.greff2017 import main_effects
    rng = np.random.default_rng(0)
    x = rng.random((3, 3000))
    y = 2 * x[0] + x[1] + 0.01 * rng.standard_normal(3000)
    f = main_effects({"a": x[0], "b": x[1], "c": x[2]}, y, bins=20)
    assert f["a"] == pytest.approx(0.8, abs=0.03) and f["b"] == pytest.approx(0.2, abs=0.03)
    assert f["c"] < 0.01 and f["interactions"] < 0.03
    # a pure interaction: y = (x1 - 1/2)(x2 - 1/2) has no main effect at all
    g = main_effects({"a": x[0], "b": x[1]}, (x[0] - 0.5) * (x[1] - 0.5), bins=10)
    assert g["a"] < 0.02 and g["b"] < 0.02 and g["interactions"] > 0.95


def test_welch_is_scipys():
    from scipy.stats import ttest_ind

    from lstmlab.experiments.greff2017 import welch
    a, b = [1.0, 2.0, 4.0, 3.5], [2.5, 5.0, 6.0]
    assert welch(a, b) == pytest.approx(tuple(ttest_ind(a, b, equal_var=False)))
    assert all(math.isnan(v) for v in welch([1.0], b))


def test_reproduce_greff_quick_command(tmp_path, capsys):
    from lstmlab.cli import main
    out = tmp_path / "g"
    assert main(["reproduce", "greff2017", "--quick", "--variants", "V,NFG,GRU", "--out", str(out),
                 "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [r["variant"] for r in res["runs"]] == ["V", "V", "NFG", "NFG", "GRU", "GRU"]
    for r in res["runs"]:
        assert r["status"] == "done" and np.isfinite(r["test_nll"]) and 0 <= r["best_epoch"] <= 2
        assert 20 <= r["hidden"] <= 200 and 1e-6 <= r["lr"] <= 1e-2
    rep = (out / "report.md").read_text()
    assert "| V | `peephole` |" in rep and "NFG: the paper finds significantly worse" in rep
    assert (out / "figures" / "boxes.png").stat().st_size > 5000
    assert "report:" in capsys.readouterr().out
    # again: every trial is reused from the store, none trained
    import sqlite3
    n = sqlite3.connect(out / "results.sqlite").execute("select count(*) from runs").fetchone()[0]
    assert n == 6


@pytest.mark.parametrize("argv,msg", [(["--variants", "V,XYZ"], "variants"),
                                      (["--trials", "0"], "--trials")])
def test_reproduce_greff_bad_arguments(tmp_path, capsys, argv, msg):
    from lstmlab.cli import main
    with pytest.raises(SystemExit) if msg.startswith("--") else _returns(2) as r:
        code = main(["reproduce", "greff2017", "--quick", "--out", str(tmp_path / "x"), *argv])
        r.code = code
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


class _returns:
    def __init__(self, code):
        self.want = code

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        assert exc[0] is None and self.code == self.want
        return False


def test_greff_through_ray_local_lands_in_the_same_database(tmp_path):
    pytest.importorskip("ray")
    from lstmlab.experiments.greff2017 import reproduce
    out = str(tmp_path / "g")
    local = reproduce(out, "quick", trials=1, variants=["V"], figures=False, quiet=True, log=lambda m: None)
    more = reproduce(out, "quick", trials=2, variants=["V"], ray="local", jobs=2, figures=False,
                     quiet=True, log=lambda m: None)
    import ray
    assert not ray.is_initialized()                   # the Ray the sweep started is shut down
    assert more[0]["test_nll"] == local[0]["test_nll"] and more[0]["run"] == local[0]["run"]
    import sqlite3
    rows = sqlite3.connect(os.path.join(out, "results.sqlite")).execute(
        "select id, status from runs").fetchall()
    assert sorted(r[0] for r in rows) == sorted(r["run"] for r in more) and {r[1] for r in rows} == {"done"}
