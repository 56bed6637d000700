"""Tests of the long-time-lag experiment and the gate ablation, with tiny settings."""
import json
import math

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.experiments import ablation, longrange
from lstmlab.viz import have_matplotlib

RECORD_KEYS = {"task", "variant", "T", "seed", "metric", "solved", "beats_baseline",
               "sequences_seen", "sequences_to_solve", "params", "baseline"}


@pytest.mark.parametrize("task", ["adding-1997", "multiplication"])
def test_the_memoryless_baseline_is_the_best_constant_predictions_mse(task):
    case = longrange.Case(task, 100, 4, 1, (0,))
    batch = longrange.case_config(case, "lstm", 0).make_task().sample(40000, np.random.default_rng(1))
    target = batch.y[:, :, 0][batch.mask]                                  # (B,)
    assert longrange.baseline_of(case) == pytest.approx(target.var(), rel=0.02)


def test_baselines_of_copy_adding_and_temporal_order():
    assert longrange.baseline_of(longrange.Case("copy", 100, 4, 1, (0,))) == \
        pytest.approx(10 * math.log(8) / 120)
    assert longrange.baseline_of(longrange.Case("adding", 200, 4, 1, (0,))) == pytest.approx(1 / 6)
    six_b = longrange.Case("temporal-order", None, 4, 1, (0,), task_args={"n_relevant": 3})
    assert longrange.baseline_of(six_b) == 1 / 8 and six_b.label == "temporal-order 6b"


def test_judge_applies_the_published_criteria():
    add = longrange.Case("adding-1997", 100, 4, 1, (0,))
    assert longrange.judge(add, {"solve_rate": 0.99, "mse": 0.001}) == (True, True)
    assert longrange.judge(add, {"solve_rate": 0.98, "mse": 0.0395}) == (False, False)
    copy = longrange.Case("copy", 100, 4, 1, (0,))
    b = longrange.baseline_of(copy)
    assert longrange.judge(copy, {"solve_rate": 0.0, "xent": 0.9 * b}) == (False, True)
    assert longrange.judge(copy, {"solve_rate": 0.0, "xent": 0.99 * b}) == (False, False)


def test_only_the_1997_tasks_stop_once_solved():
    cfg = {c.label: longrange.case_config(c, "lstm", 0) for c in longrange.cases("full")}
    assert cfg["adding-1997 T=100"].stop_at == 0.99 and cfg["temporal-order 6a"].stop_at == 0.99
    assert cfg["copy T=100"].stop_at is None and cfg["adding T=400"].stop_at is None
    assert {c.hidden for c in cfg.values() if c.task != "copy"} == {16}
    # one recipe: variants of a case differ only by the variant (and the LSTM cells' input-gate
    # bias, a setting GRU and RNN do not have)
    c = longrange.cases("full")[0]
    a, b, p = (longrange.case_config(c, v, 1).to_dict() for v in ("lstm", "gru", "peephole"))
    assert {k for k in a if a[k] != b[k]} == {"variant", "gate_bias"}
    assert {k for k in a if a[k] != p[k]} == {"variant"}
    assert a["gate_bias"] == {"i": -3.0} and b["gate_bias"] == {}


def test_reproduce_long_range_tiny(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["reproduce", "long-range", "--quick", "--iters", "30", "--jobs", "2",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    runs = res["runs"]
    assert len(runs) == 2 * 4 + 4 + 4 and all(r["status"] == "done" for r in runs)
    assert all(RECORD_KEYS <= set(r) for r in runs)
    assert {r["case"] for r in runs} == {"adding-1997 T=100", "adding T=100", "copy T=100"}
    assert all(r["sequences_seen"] == 30 * 32 for r in runs)
    params = {r["variant"]: r["params"] for r in runs if r["case"] == "adding T=100"}
    assert params["gru"] * 4 == params["lstm"] * 3 and params["rnn"] * 4 == params["lstm"]
    # the gradient-flow profiles: an RNN loses far more than an LSTM with forget bias 5
    lost = {(f["variant"], f["state"]): f["orders_lost_h"] for f in res["gradient_flow"]}
    assert lost[("rnn", "untrained")] > lost[("lstm", "untrained")] + 5
    report = (out / "report.md").read_text()
    assert "| adding-1997 T=100 | lstm |" in report and "74,000" in report
    assert "copy, rnn:" in report
    if have_matplotlib():
        from matplotlib.image import imread
        for f in ("curves.png", "gradient_flow.png"):
            assert imread(out / "figures" / f).std() > 0.05, f
            assert f"figures/{f}" in report
    assert "solved 0/2" in capsys.readouterr().out


def test_long_range_rejects_bad_options(tmp_path, capsys):
    assert main(["reproduce", "long-range", "--tasks", "adding,nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tasks" in err and "nope" in err and "Traceback" not in err
    assert main(["reproduce", "long-range", "--quick", "--tasks", "multiplication",
                 "--out", str(tmp_path)]) == 2
    assert "no case" in capsys.readouterr().err


def test_ablation_comparison_on_designed_records():
    rng = np.random.default_rng(0)
    recs = []
    for v, centre in (("peephole", -3.0), ("lstm", -3.0), ("nfg", -1.0)):
        for s in range(6):
            recs.append({"task": "t", "variant": v, "seed": s, "status": "done",
                         "mse": 10 ** (centre + 0.1 * rng.normal()), "solve_rate": 1.0})
    table = {r["variant"]: r for r in ablation.compare(recs)}
    assert table["nfg"]["p"] < 1e-4 and table["nfg"]["welch_t"] > 0 and table["nfg"]["rank"] == 3
    assert table["lstm"]["p"] > 0.01 and "p" not in table["peephole"]
    assert ablation._verdict(table["nfg"], 0.05) == "significantly worse"


def test_reproduce_ablation_tiny(tmp_path, capsys):
    out = tmp_path / "ab"
    assert main(["reproduce", "ablation", "--seeds", "0,1", "--iters", "8", "--jobs", "2",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert len(res["runs"]) == 2 * 9 * 2 and all(r["status"] == "done" for r in res["runs"])
    table = res["comparison"]
    for task in ablation.TASKS:
        rows = [r for r in table if r["task"] == task]
        assert [r["rank"] for r in rows] == list(range(1, 10))
        means = [r["log10_mse_mean"] for r in rows]
        assert means == sorted(means)
        assert all(0 <= r["p"] <= 1 for r in rows if r["variant"] != "peephole" and r.get("p") is not None)
    report = (out / "report.md").read_text()
    assert "Welch" in report and "Greff" in report and "| msd-pair |" in report
    if have_matplotlib():
        from matplotlib.image import imread
        assert imread(out / "figures" / "ablation.png").std() > 0.05
    assert "against peephole" in capsys.readouterr().out
    assert main(["reproduce", "ablation", "--seeds", "0", "--out", str(out)]) == 2
    assert "seeds" in capsys.readouterr().err


def test_ablation_gives_no_test_when_runs_diverged_or_seeds_repeat():
    recs = [{"task": "t", "variant": v, "seed": s, "status": "done", "mse": m, "solve_rate": 1.0}
            for v, m in (("peephole", 1e-2), ("noaf", 1e-4)) for s, m in ((0, m), (1, 2 * m))]
    recs += [{"task": "t", "variant": "noaf", "seed": s, "status": "diverged"} for s in (2, 3)]
    recs += [{"task": "t", "variant": "peephole", "seed": s, "status": "done", "mse": 1e-2,
              "solve_rate": 1.0} for s in (2, 3)]
    noaf = next(r for r in ablation.compare(recs) if r["variant"] == "noaf")
    assert "p" not in noaf and noaf["not_done"] == 2
    assert "diverged" in ablation._verdict(noaf, 0.05)
    with pytest.raises(ValueError, match="seed 0 is given twice"):
        ablation.reproduce("unused", seeds=[0, 0])
    with pytest.raises(ValueError, match="seed 1 is given twice"):
        longrange.reproduce("unused", seeds=[1, 2, 1])


def test_ablation_starts_every_lstm_cells_forget_gate_alike():
    """cifg's forget gate is 1 - i: its input bias carries the recipe's forget bias."""
    from lstmlab.train.loop import build_model

    for task in ablation.TASKS:
        fb = {}
        for v in ("peephole", "lstm", "nig", "nog", "cifg"):
            cfg = ablation.config(task, v, 0, 10)
            b = build_model(cfg, cfg.make_task()).params
            H = cfg.hidden
            summed = b["rnn.bias_ih_l0"] + b["rnn.bias_hh_l0"]                 # (4H,) i f g o
            fb[v] = float(np.mean(-summed[:H])) if v == "cifg" else float(np.mean(summed[H:2 * H]))
        assert max(fb.values()) - min(fb.values()) < 1e-9, (task, fb)


def test_records_and_report_of_solved_regressed_and_failed_runs(tmp_path):
    case = longrange.Case("adding", 100, 4, 300, (0, 1, 2))
    cfgs = [longrange.case_config(case, "lstm", s) for s in range(3)]
    metrics = {0: [(0, 0.17, 0.0), (100, 0.001, 1.0), (200, 0.0005, 1.0)],   # solves at 100
               1: [(0, 0.17, 0.0), (100, 0.001, 1.0), (200, 0.2, 0.1)]}      # solves, regresses
    rows = []
    for s, ms in metrics.items():
        d = tmp_path / f"r{s}"
        d.mkdir()
        (d / "metrics.jsonl").write_text("".join(
            json.dumps({"iter": i, "mse": m, "solve_rate": sr}) + "\n" for i, m, sr in ms))
        rows.append({"status": "done", "run_dir": str(d), "wall_s": 1.0})
    rows.append({"status": "diverged", "run_dir": str(tmp_path / "r2"), "error": "nan"})
    fresh = [{"mse": 0.0006, "solve_rate": 0.995}, {"mse": 0.19, "solve_rate": 0.12}, None]
    recs = [longrange.record_of(case, c, r, str(tmp_path), f) for c, r, f in zip(cfgs, rows, fresh)]
    assert recs[0]["solved"] and recs[0]["sequences_to_solve"] == 100 * 32
    assert recs[0]["mse"] == 0.0006 and recs[0]["at_stop"]["mse"] == 0.0005
    assert not recs[1]["solved"] and recs[1]["sequences_to_solve"] is None
    assert recs[2]["status"] == "diverged" and recs[2]["error"] == "nan"
    row = longrange.summary_rows(recs)[0]
    assert (row["done"], row["solved"], row["beats"], row["to_solve"]) == (2, 1, 1, [3200])
    assert row["not_done"] == {"diverged": 1}
    report = longrange.write_report(str(tmp_path), recs, [], {})
    assert "| adding T=100 | lstm | 4 / 128 | 2/3 (1 diverged) | 1 | 1 |" in report
    if have_matplotlib():
        from lstmlab.viz.longrange import plot_curves
        plot_curves(recs, str(tmp_path / "c.png"))


def test_copy_cut_off_is_claimed_only_when_monotone():
    def rec(T, beats):
        return {"task": "copy", "variant": "lstm", "T": T, "status": "done", "beats_baseline": beats}
    assert longrange.stops_beating([rec(100, True), rec(200, False)]) == {"lstm": (100, 200)}
    assert longrange.stops_beating([rec(100, False), rec(200, True)]) == {"lstm": (None, None)}
    assert longrange.stops_beating([rec(100, True), rec(200, True)]) == {"lstm": (200, None)}
