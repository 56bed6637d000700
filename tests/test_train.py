"""Tests of lstmlab.train: config round-trip, exact resume, divergence handling."""
import json
import os

import numpy as np
import pytest

from lstmlab.core.io import load_arrays
from lstmlab.train import CHECKPOINT, WEIGHTS, TrainConfig, TrainingDiverged, train, train_rng

TINY = dict(task="msd-pair", task_args={"T": 24, "D_min": 3, "D_max": 6}, hidden=3, batch=4,
            iters=20, eval_every=5, eval_size=8, checkpoint_every=5, lr=1e-2, backend="reference")


def tiny(**over):
    return TrainConfig(**{**TINY, **over})


def test_config_json_round_trip(tmp_path):
    cfg = tiny(variant={"peephole": True, "input_activation": False}, betas=(0.8, 0.99),
               gate_bias={"i": 0.0, "f": -2.0}, schedule="cosine", warmup=3, readout_bias=0.0,
               test_task_args={"T": 30})
    path = tmp_path / "config.json"
    cfg.to_json(path)
    back = TrainConfig.from_json(path)
    assert back == cfg
    assert back.betas == (0.8, 0.99)
    assert json.loads(path.read_text())["gate_bias"] == {"f": -2.0, "i": 0.0}


def test_config_rejects_bad_fields():
    with pytest.raises(ValueError, match="lr"):
        tiny(lr=-1.0)
    with pytest.raises(ValueError, match="schedule"):
        tiny(schedule="linear")
    with pytest.raises(ValueError, match="unknown field"):
        TrainConfig.from_dict({**tiny().to_dict(), "nope": 1})
    with pytest.raises(ValueError, match="variant"):
        tiny(variant="peep")


def test_lr_schedules_are_pure_functions():
    c = tiny(schedule="cosine", lr=1.0, warmup=4, iters=104)
    assert c.lr_at(0) == pytest.approx(0.25) and c.lr_at(3) == pytest.approx(1.0)
    assert c.lr_at(4) == pytest.approx(1.0) and c.lr_at(54) == pytest.approx(0.5)
    s = tiny(schedule="step", lr=1.0, lr_step=10, lr_gamma=0.5)
    assert s.lr_at(9) == 1.0 and s.lr_at(10) == 0.5 and s.lr_at(25) == 0.25


def test_training_batches_depend_only_on_seed_and_iteration():
    a = np.random.default_rng([0, 1, 7]).random(3)
    assert np.array_equal(train_rng(0, 7).random(3), a)
    assert not np.array_equal(train_rng(0, 8).random(3), a)


def test_peephole_and_lstm_share_initial_weights():
    from lstmlab.train import SeqModel
    p = SeqModel(tiny(variant="peephole"), 1, 1).params
    q = SeqModel(tiny(variant="lstm"), 1, 1).params
    shared = set(p) & set(q)
    assert {"rnn.weight_ci_l0", "rnn.weight_cf_l0", "rnn.weight_co_l0"} == set(p) - set(q)
    assert all(np.array_equal(p[k], q[k]) for k in shared)


def test_kill_and_resume_gives_bit_identical_weights(tmp_path):
    straight = train(tiny(), tmp_path / "a", quiet=True)
    # "kill" after 13 iterations: the last checkpoint is at 10, iterations 10-12 are lost
    partial = train(tiny(), tmp_path / "b", quiet=True, stop_after=13)
    assert partial["status"] == "stopped"
    _, meta = load_arrays(tmp_path / "b" / CHECKPOINT)
    assert meta["iter"] == 10
    resumed = train(tiny(), tmp_path / "b", resume=True, quiet=True)
    wa, _ = load_arrays(tmp_path / "a" / WEIGHTS)
    wb, _ = load_arrays(tmp_path / "b" / WEIGHTS)
    assert set(wa) == set(wb)
    for k in wa:
        assert np.array_equal(wa[k], wb[k]), k
    assert resumed["mse"] == straight["mse"]
    lines = lambda d: [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]  # noqa: E731
    ma, mb = lines("a"), lines("b")
    assert [m["iter"] for m in mb] == [0, 5, 10, 15, 20]
    strip = lambda ms: [{k: v for k, v in m.items() if k != "wall_s"} for m in ms]  # noqa: E731
    assert strip(ma) == strip(mb)
    # and training did change the weights
    init = train(tiny(iters=1), None, quiet=True)["params"]
    assert not np.array_equal(init["out.weight"], wa["out.weight"])


def test_resume_refuses_a_different_config(tmp_path):
    train(tiny(iters=10), tmp_path, quiet=True, stop_after=6)
    with pytest.raises(ValueError, match="lr"):
        train(tiny(iters=10, lr=0.5), tmp_path, resume=True, quiet=True)


def test_divergence_stops_with_a_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    cfg = tiny(lr=1e200, clip=0.0, warmup=0, schedule="constant", iters=40, checkpoint_every=1)
    with pytest.raises(TrainingDiverged, match=r"diverged at iteration \d+ \(loss (nan|inf)\).*--lr"):
        train(cfg, tmp_path, quiet=True)
    arrays, meta = load_arrays(tmp_path / CHECKPOINT)       # loads: checksum intact
    assert all(np.isfinite(v).all() for v in arrays.values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert summary["last_good_iter"] == meta["iter"] < summary["diverged_at"] + 1
    assert not os.path.exists(tmp_path / WEIGHTS)


def test_stop_at_ends_the_run_at_the_first_evaluation_that_reaches_it(tmp_path):
    adding = dict(task="adding", task_args={"T": 8}, iters=30)   # headline mse, minimised
    full = train(tiny(**adding), tmp_path / "full", quiet=True)
    ms = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    # a threshold that the run first reaches at an evaluation after iteration 0
    target = sorted(m["mse"] for m in ms[1:])[len(ms) // 2]
    first = next(m["iter"] for m in ms[1:] if m["mse"] <= target)
    assert 0 < first <= 30
    s = train(tiny(**adding, stop_at=target), tmp_path / "stop", quiet=True)
    assert s["iters_run"] == first and s["sequences_seen"] == first * 4
    assert s["stopped_early"] == (first < 30) and s["mse"] <= target
    kept = [json.loads(x)["iter"] for x in (tmp_path / "stop" / "metrics.jsonl").read_text().splitlines()]
    assert kept[-1] == first
    assert not full["stopped_early"] and full["iters_run"] == 30
    # resuming a run that stopped leaves it stopped, with the same summary
    again = train(tiny(**adding, stop_at=target), tmp_path / "stop", resume=True, quiet=True)
    assert {k: v for k, v in again.items() if k not in ("params", "wall_s")} == \
        {k: v for k, v in s.items() if k not in ("params", "wall_s")}


def test_a_killed_run_with_stop_at_resumes_to_the_same_result(tmp_path):
    adding = dict(task="adding", task_args={"T": 8}, iters=30, checkpoint_every=5)
    train(tiny(**adding), tmp_path / "f", quiet=True)
    ms = [json.loads(x) for x in (tmp_path / "f" / "metrics.jsonl").read_text().splitlines()]
    target = sorted(m["mse"] for m in ms[1:])[len(ms) // 2]
    straight = train(tiny(**adding, stop_at=target), tmp_path / "a", quiet=True)
    assert straight["stopped_early"]
    kill_at = straight["iters_run"] - 2                  # killed shortly before it would stop
    train(tiny(**adding, stop_at=target), tmp_path / "b", quiet=True, stop_after=kill_at)
    resumed = train(tiny(**adding, stop_at=np.float64(target)), tmp_path / "b", resume=True, quiet=True)
    drop = ("params", "wall_s")
    assert {k: v for k, v in resumed.items() if k not in drop} == \
        {k: v for k, v in straight.items() if k not in drop}


def test_stop_at_is_left_out_of_the_config_dict_at_its_default():
    from lstmlab.experiments.gers2002 import recipe_config
    from lstmlab.sweep.spec import run_id
    d = tiny().to_dict()
    assert "stop_at" not in d
    # the ids of configs published before the field existed (computed at commit 89a1c04)
    assert run_id(TrainConfig().to_dict()) == "3b55cb76783f"
    assert run_id(recipe_config("peephole", 3).to_dict()) == "674f51c67023"
    assert tiny(stop_at=0.01).to_dict()["stop_at"] == 0.01
    assert TrainConfig.from_dict(tiny(stop_at=0.01).to_dict()).stop_at == 0.01
    assert run_id(d) != run_id(tiny(stop_at=0.01).to_dict())
    with pytest.raises(ValueError, match="stop_at"):
        tiny(stop_at="high")
