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
    # one recipe: variants of a case differ only by the variant
    c = longrange.cases("full")[0]
    a, b = (longrange.case_config(c, v, 1).to_dict() for v in ("lstm", "gru"))
    assert {k for k in a if a[k] != b[k]} == {"variant"}


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
