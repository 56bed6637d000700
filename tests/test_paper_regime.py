"""The training regime of Gers et al. (2002) in the one loop: streams that end at the first
error (the tasks' training_prefix), the truncated peephole gradient, the sigmoid output unit,
and the paper-task study of ``lstmlab reproduce gers2002 --paper-tasks``."""
import json

import numpy as np
import pytest

from lstmlab.core.losses import mse_loss
from lstmlab.experiments import gers2002_paper
from lstmlab.tasks import make_task, training_prefix
from lstmlab.train import TrainConfig, train
from lstmlab.train.loop import _train_step, build_model
from lstmlab.train.model import SeqModel


def test_training_prefix_ends_at_the_first_wrong_step_or_the_last_allowed():
    bad = np.zeros((8, 3), bool)
    bad[2, 0] = bad[5, 0] = True                    # stream 0: first wrong at 2
    bad[7, 1] = True                                # stream 1: wrong after its last allowed step
    m = training_prefix(bad, np.array([6, 4, 7]))
    assert m[:, 0].tolist() == [True] * 3 + [False] * 5
    assert m[:, 1].tolist() == [True] * 5 + [False] * 3
    assert m[:, 2].all()


def test_gts_prefix_counts_a_missing_spike_and_stops_at_the_required_spike():
    task = make_task("gts", F=5, n_spikes=4, required=2)
    b = task.sample(2, np.random.default_rng(0))
    pred = b.y.copy()
    pred[9, 1, 0] = 0.0                              # stream 1 misses its second spike (step 9)
    m = task.training_prefix(pred, b)
    assert m[:, 0].sum() == 10                       # perfect: up to the 2nd spike (step 9)
    assert m[:, 1].sum() == 10 and m[9, 1]           # the failing step itself is trained on
    pred[2, 0, 0] = 0.6                              # an extra spike at step 2
    assert task.training_prefix(pred, b)[:, 0].sum() == 3


def test_pfg_and_msd_prefixes():
    pfg = make_task("pfg", F=4, n_periods=5, required=3)
    b = pfg.sample(1, np.random.default_rng(0))
    assert pfg.training_prefix(b.y, b)[:, 0].sum() == 12                # 3 periods of 4
    off = b.y.copy()
    off[6] += 0.3                                                        # |error| = 0.3: wrong
    assert pfg.training_prefix(off, b)[:, 0].sum() == 7
    msd = make_task("msd", F=6, delays=(0, 1), n_spikes=5, required=5)
    b = msd.sample(1, np.random.default_rng(1))
    times = b.info["spike_times"][0]
    wrong = b.y.copy()
    wrong[times[1], 0, 0] += 0.5                                         # the 2nd answer off
    wrong[times[0] - 1, 0, 0] = 9.0                                      # a step without target
    assert msd.training_prefix(wrong, b)[:, 0].sum() == times[1] + 1


def _paper(iters=4, **over):
    return gers2002_paper.paper_task_config("gts", "peephole", 0, iters, backend="reference",
                                            task_args={"F": 5, "delays": [0], "n_spikes": 6},
                                            test_task_args={"n_spikes": 20, "required": 20},
                                            **over)


def test_first_error_loss_counts_the_prefix_only():
    cfg = _paper()
    task = cfg.make_task()
    model = SeqModel(cfg, 1, 1)
    b = task.sample(1, np.random.default_rng(0))
    pred0 = model.forward(b.x)[0]
    keep = task.training_prefix(pred0, b)
    assert 0 < keep.sum() < b.T                      # the untrained cell fails early
    expected, _ = mse_loss(pred0, b.y, keep)

    class NoStep:
        lr = 0.0
        def step(self, grads):
            pass
    loss, _, _ = _train_step(model, mse_loss, NoStep(), cfg, b, 0, prefix=task.training_prefix)
    assert loss == pytest.approx(expected, rel=1e-12)
    full, _, _ = _train_step(model, mse_loss, NoStep(), cfg.replace(first_error=False), b, 0)
    assert full != pytest.approx(expected)


def test_paper_regime_learns_a_spike_train_and_stops_once_solved(tmp_path):
    """Streams ending at the first error teach the one-cell peephole network a period-5 spike
    train: 20 of 20 test spikes right (the untrained cell: 0), and the run stops there."""
    cfg = gers2002_paper.paper_task_config("gts", "peephole", 0, 3000, eval_every=100,
                                           task_args={"F": 5, "delays": [0], "n_spikes": 6},
                                           test_task_args={"n_spikes": 20, "required": 20})
    s = train(cfg, tmp_path / "r", quiet=True)
    first = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["consecutive_mean"] == 0
    assert s["consecutive_mean"] == 20 and s["solve_rate"] == 1.0
    assert s["stopped_early"] and s["iters_run"] < 3000


def test_config_checks_of_the_regime():
    with pytest.raises(ValueError, match="first_error"):
        TrainConfig(task="msd-pair", first_error=True)
    with pytest.raises(ValueError, match="first_error"):
        _paper(tbptt=5)
    with pytest.raises(ValueError, match="peephole_grad"):
        _paper(peephole_grad="none")
    with pytest.raises(ValueError, match="readout"):
        _paper(readout="tanh")
    with pytest.raises(ValueError, match="readout"):
        TrainConfig(task="copy", task_args={"T": 5}, readout="sigmoid")
    plain = TrainConfig().to_dict()                  # earlier runs keep their ids
    assert not {"first_error", "peephole_grad", "readout"} & set(plain)


def test_cut_config_gives_the_layers_truncated_gradient():
    cfg = _paper(peephole_grad="cut")
    model, full = build_model(cfg, cfg.make_task()), build_model(cfg.replace(peephole_grad="full"), cfg.make_task())
    rng = np.random.default_rng(0)
    for m in (model, full):
        for v in m.params.values():
            v[...] = rng.normal(size=v.shape) * 0.5 if m is model else v
    full.load_params(model.params)
    x = rng.normal(size=(9, 2, 1))
    dpred = rng.normal(size=(9, 2, 1))
    g_cut = model.backward(dpred, model.forward(x)[2])
    g_full = full.backward(dpred, full.forward(x)[2])
    _, _, cache = model.rnn.forward(x)
    dy = model.out.backward(dpred, model.forward(x)[2][2])[0]
    ref = model.rnn.backward(dy, cache, peephole_error=False)[2]
    assert all(np.allclose(g_cut[f"rnn.{k}"], v, atol=1e-14) for k, v in ref.items())
    assert not np.allclose(g_cut["rnn.weight_hh_l0"], g_full["rnn.weight_hh_l0"])


def test_sigmoid_readout_gradient_matches_finite_differences():
    cfg = _paper(readout="sigmoid")
    model = build_model(cfg, cfg.make_task())
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2, 1)), rng.uniform(size=(6, 2, 1))
    pred, _, cache = model.forward(x)
    assert 0 < pred.min() and pred.max() < 1
    loss, dpred = mse_loss(pred, y)
    g = model.backward(dpred, cache)
    for name in ("out.weight", "rnn.weight_hh_l0"):
        p = model.params[name]
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = mse_loss(model.forward(x)[0], y)[0]
            p[idx] = old - 1e-6
            down = mse_loss(model.forward(x)[0], y)[0]
            p[idx] = old
            num[idx] = (up - down) / 2e-6
        assert np.allclose(g[name], num, rtol=1e-6, atol=1e-9), name


def test_reproduce_paper_tasks_tiny(tmp_path):
    from lstmlab.cli import main
    out = tmp_path / "g"
    rc = main(["reproduce", "gers2002", "--iters", "10", "--seeds", "0", "--out", str(out), "--quiet",
               "--jobs", "1", "--paper-tasks", "--paper-configs", "gts-10", "--paper-seeds", "0-1",
               "--paper-iters", "20", "--no-figures"])
    assert rc == 0
    recs = [r for r in json.loads((out / "results.json").read_text()) if r["experiment"] == "paper-tasks"]
    assert len(recs) == 6 and {r["variant"] for r in recs} == {"peephole", "lstm", "nfg"}
    assert all(r["config"] == "gts-10" and r["solved"] is False and r["iters"] == 20 for r in recs)
    report = (out / "report.md").read_text()
    assert "| gts-10 | lstm | full | 0/2 |" in report and "Fisher" in report
    assert main(["reproduce", "gers2002", "--out", str(out), "--paper-tasks",
                 "--paper-configs", "gts-99"]) == 2


def test_verdict_against_the_paper():
    v = gers2002_paper._verdict
    assert v(True, 5, 10, None) == "holds" and "not reproduced" in v(True, 4, 10, None)
    assert v(False, 0, 10, 1.0) == "holds" and v(False, 2, 10, 0.001) == "holds"
    assert "not confirmed" in v(False, 9, 10, 1.0) and v(None, 3, 10, 0.5) == ""
    assert gers2002_paper._expectation("pfg-cos-10", "lstm")[0] is True
    assert gers2002_paper._expectation("pfg-tri-25", "lstm")[0] is False


def test_nmsd_learns_single_intervals_from_rest(tmp_path):
    """NMSD (one interval of F or F + 1 steps per sequence, the cell from rest): the peephole
    cell learns to tell 5 from 6 steps on all 200 test sequences; untrained it cannot."""
    cfg = gers2002_paper.paper_task_config("nmsd-10", "peephole", 1, 1500, eval_every=100,
                                           task_args={"F": 5, "delays": [0, 1], "n_spikes": 1},
                                           eval_size=200)
    assert cfg.task_args["n_spikes"] == 1 and cfg.test_task_args == {"n_spikes": 1, "required": 1}
    s = train(cfg, tmp_path / "r", quiet=True)
    first = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["spike_accuracy"] < 0.9
    assert s["solve_rate"] == 1.0 and s["stopped_early"]


def test_reproduce_nmsd_reports_test_sequences_not_a_stream(tmp_path):
    from lstmlab.cli import main
    out = tmp_path / "g"
    assert main(["reproduce", "gers2002", "--iters", "10", "--seeds", "0", "--out", str(out),
                 "--quiet", "--jobs", "1", "--paper-tasks", "--paper-configs", "nmsd-10",
                 "--paper-variants", "peephole", "--paper-seeds", "0", "--paper-iters", "5",
                 "--no-figures"]) == 0
    rec, = [r for r in json.loads((out / "results.json").read_text())
            if r["experiment"] == "paper-tasks"]
    assert rec["config"] == "nmsd-10" and not rec["solved"] and rec["failure"] == "misses"
    assert 0 <= rec["test_right"] < 1000
    report = (out / "report.md").read_text()
    assert f"right on {rec['test_right']}-{rec['test_right']} of 1000 test sequences, test MSE" in report
    assert gers2002_paper.generated_picks([dict(rec, solved=True)]) == {}
