"""The Greff et al. (2017) study on the long-lag task (``--task adding``): its trials, its
command, and the parts of the analysis that the chorales do not exercise (diverged trials, the
step lr / (1 - momentum))."""
import json
import math

import numpy as np
import pytest

from lstmlab.experiments import greff2017


def test_adding_trial_is_the_drawn_point_on_the_adding_problem():
    hp = greff2017.draw(0, 3)
    cfg = greff2017.trial_config("CIFG", hp, patience=4, task="adding", updates=1000)
    assert (cfg.task, cfg.task_args, cfg.variant) == ("adding", {"T": greff2017.ADDING_T}, "cifg")
    assert cfg.batch == greff2017.ADDING_BATCH and cfg.iters == 1000 and cfg.patience == 4
    assert cfg.lr == pytest.approx(hp["lr"] * greff2017.ADDING_LR_SCALE)
    assert cfg.momentum == pytest.approx(1 - hp["one_minus_momentum"])
    assert cfg.hidden == hp["hidden"] and hp["input_noise"] > 0 and cfg.input_noise == 0.0
    assert cfg.optimizer == "sgd" and cfg.clip == 0.0 and cfg.schedule == "constant"
    with pytest.raises(ValueError, match="task"):
        greff2017.trial_config("V", hp, task="copy")
    with pytest.raises(ValueError, match="task"):
        greff2017.reproduce("unused", task="timit")
    with pytest.raises(ValueError, match="updates"):
        greff2017.trial_config("V", hp, task="adding")


def test_reproduce_greff_adding_quick_command(tmp_path, capsys):
    from lstmlab.cli import main
    out = tmp_path / "a"
    assert main(["reproduce", "greff2017", "--task", "adding", "--quick", "--variants", "V,GRU",
                 "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "adding" and res["updates"] == 100
    assert [r["variant"] for r in res["runs"]] == ["V", "V", "GRU", "GRU"]
    for r in res["runs"]:
        assert r["status"] == "done" and 0 <= r["best_update"] <= 100
        assert np.isfinite(r["test_mse"]) and 0 <= r["test_solve_rate"] <= 1
        assert "test_nll" not in r and r["input_noise"] == 0.0
    rep = (out / "report.md").read_text()
    assert rep.startswith("# Greff et al. (2017) on the adding problem at T = 30 (quick setting)")
    assert "| V | `peephole` |" in rep and "--task adding --quick" in rep
    assert (out / "figures" / "boxes.png").stat().st_size > 5000
    printed = capsys.readouterr().out
    assert "best test MSE" in printed and "report:" in printed
    # --report-only re-derives the same report from results.json alone, the store gone
    (out / "results.sqlite").unlink()
    (out / "report.md").unlink()
    assert main(["reproduce", "greff2017", "--report-only", "--out", str(out), "--quiet"]) == 0
    again = (out / "report.md").read_text()
    assert again.splitlines()[3:] == rep.splitlines()[3:] and "re-derived from results.json" in again
    assert capsys.readouterr().out == printed


def test_report_only_without_results_is_a_one_line_error(tmp_path, capsys):
    from lstmlab.cli import main
    assert main(["reproduce", "greff2017", "--report-only", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "results.json" in err and len(err.strip().splitlines()) == 1


def _record(variant, trial, lr, one_minus_m, mse, status="done"):
    rec = {"variant": variant, "cell": greff2017.VARIANTS[variant], "trial": trial, "hidden": 50,
           "lr": lr, "one_minus_momentum": one_minus_m, "input_noise": 0.5, "status": status}
    if status == "done":
        rec.update(valid_mse=mse, test_mse=mse)
    return rec


def test_analysis_counts_diverged_trials_and_finds_the_step(tmp_path):
    """The metric is a U-shaped function of log10(lr / (1 - m)) alone, with lr and m drawn
    independently: neither explains it alone as well as their ratio, and a diverged trial is
    counted but not scored."""
    rng = np.random.default_rng(0)
    recs = []
    for k in range(120):
        lr = 10 ** rng.uniform(-6, -2)
        om = 10 ** rng.uniform(-2, 0)
        s = math.log10(lr / om)
        recs.append(_record("V" if k % 2 else "NFG", k, lr, om, 0.01 + 0.01 * (s + 3) ** 2))
    recs.append(_record("V", 999, 1e-2, 0.01, None, status="diverged"))
    a = greff2017.analyse(recs, "adding")
    v = a["variants"]["V"]
    assert (v["trials"], v["done"], v["diverged"]) == (61, 60, 1)
    assert a["variants"]["NFG"]["diverged"] == 0
    step = a["effective_step"]["fraction"]
    singles = {k: x for k, x in a["importance"].items() if k != "interactions"}
    assert step > 0.6 and step > max(singles.values()) + 0.2     # adding: over all scored trials
    decades = a["effective_step"]["by_decade"]                   # (decade, scored, learnt, diverged, median)
    assert sum(d[1] for d in decades) == 120 and sum(d[3] for d in decades) == 1
    assert sum(d[2] for d in decades) == a["learnt_trials"] > 0
    best = min((d for d in decades if d[1]), key=lambda d: d[4])[0]
    assert best in (-4, -3)                           # the minimum of the U, at s = -3
    text = greff2017.write_report(str(tmp_path), recs, a, {},
                                  "quick", dict(greff2017.SETTINGS["adding"]["quick"]), 1.0,
                                  "1 process(es)", "adding")
    assert "1 diverged" in text and "more than any single hyperparameter" in text
    assert "the same as the paper's" in text or "unlike the paper's" in text   # no verdicts
    variant_lines = [ln for ln in text.splitlines() if ln.startswith(("- NFG", "- NOAF", "- CIFG", "- NP"))]
    assert len(variant_lines) == 4 and not any("agree" in ln for ln in variant_lines)
