"""Tests of the Gers 2002 reproduction with tiny settings."""
import json

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.experiments import gers2002
from lstmlab.viz import have_matplotlib

KEYS = {"task", "variant", "seed", "test_mse", "solve_rate", "iters", "wall_s"}


def test_recipes_share_scale_and_differ_only_by_variant():
    p, q = gers2002.recipe_config("peephole", 3), gers2002.recipe_config("lstm", 3)
    assert p.task_args == {"T": 150, "D_min": 30, "D_max": 60}
    assert (p.hidden, p.batch, p.iters) == (8, 32, 3000)
    dp, dq = p.to_dict(), q.to_dict()
    assert {k for k in dp if dp[k] != dq[k]} == {"variant"}
    n = gers2002.npow_config("peephole", 0)
    assert (n.lr, n.schedule, n.lr_step, n.clip, n.forget_bias) == (5e-3, "step", 1500, 1.0, 1.0)


def test_paper_task_configs_use_the_papers_cell_and_streams():
    for task in ("msd", "gts", "pfg"):
        c = gers2002.paper_task_config(task, "peephole", 0, iters=4)
        assert c.hidden == 1 and c.identity_squash and c.init_range == 0.1 and c.batch == 1
        assert c.gate_bias == {"i": 0.0, "f": 4.0, "o": -2.0}        # the paper: 0, -2, +2
        assert c.first_error and c.stop_at == 1.0 and c.test_task_args["required"] == 1000
    assert gers2002.paper_task_config("pfg-cos-25", "lstm", 1).task_args["F"] == 25
    with pytest.raises(ValueError, match="task"):
        gers2002.paper_task_config("pfg-sin-10", "lstm", 1)


def test_reproduce_tiny_writes_results_report_and_figures(tmp_path):
    out = tmp_path / "g"
    rc = main(["reproduce", "gers2002", "--iters", "20", "--seeds", "0-1", "--out", str(out),
               "--quiet", "--jobs", "2"])
    assert rc == 0
    recs = json.loads((out / "results.json").read_text())
    assert isinstance(recs, list) and len(recs) == 4
    assert all(KEYS <= set(r) for r in recs)
    assert {(r["variant"], r["seed"]) for r in recs} == {(v, s) for v in ("peephole", "lstm") for s in (0, 1)}
    assert all(r["iters"] == 20 and r["task"] == "msd-pair" and 0 <= r["solve_rate"] <= 1 for r in recs)
    report = (out / "report.md").read_text()
    assert "mean ± std" in report and "npow" in report and "0.881" in report
    for f in ("training_curves.png", "predictions.png", "cell_state.png"):
        assert (out / "figures" / f).stat().st_size > 1000, f
        assert f"figures/{f}" in report
    # a second call reuses the finished runs (same numbers, no retraining)
    rc = main(["reproduce", "gers2002", "--iters", "20", "--seeds", "0-1", "--out", str(out),
               "--quiet", "--jobs", "1", "--no-figures"])
    again = json.loads((out / "results.json").read_text())
    assert [r["test_mse"] for r in again] == [r["test_mse"] for r in recs]


def test_sweep_budget_adds_a_T_at_its_own_budget_and_the_report_keeps_the_budgets_apart(tmp_path):
    out = tmp_path / "g"
    recs = gers2002.reproduce(str(out), seeds=[0], iters=6, sweep_T=True, T_values=[30],
                              sweep_budgets=[(30, 12), [30, 6]], jobs=1, figures=False,
                              quiet=True, log=lambda m: None)
    sweep = [r for r in recs if r["experiment"] == "sweep-T"]
    assert sorted((r["T"], r["iters"], r["variant"]) for r in sweep) == [
        (30, 6, "lstm"), (30, 6, "peephole"), (30, 12, "lstm"), (30, 12, "peephole")]
    report = (out / "report.md").read_text()
    assert "| 30 | [6, 12] | 1 | 6 |" in report and "| 30 | [6, 12] | 1 | 12 |" in report
    assert "| 30 | 6 | " in report and "| 30 | 12 | " in report      # the diagnosis, per budget
    for bad in ([(2, 10)], [(30, 0)], [(30,)], ["30:10"], [(30, True)]):
        with pytest.raises(ValueError, match="sweep_budgets"):
            gers2002.reproduce(str(tmp_path / "bad"), seeds=[0], iters=6, sweep_budgets=bad,
                               jobs=1, figures=False, quiet=True, log=lambda m: None)
    assert not (tmp_path / "bad").exists()                         # refused before anything is written


def test_sweep_budget_on_the_command_line_takes_T_ITERS_pairs(capsys, monkeypatch):
    for bad in ("1000", "1000:x", "2:100", "1000:0", ""):
        with pytest.raises(SystemExit) as e:
            main(["reproduce", "gers2002", "--sweep-budget", bad])
        assert e.value.code == 2
        assert "expected T:ITERS pairs" in capsys.readouterr().err
    seen = {}
    monkeypatch.setattr(gers2002, "reproduce", lambda out, **kw: seen.update(kw) or [])
    assert main(["reproduce", "gers2002", "--sweep-budget", "1000:24000,600:9000"]) == 0
    assert seen["sweep_budgets"] == [(1000, 24000), (600, 9000)]
    assert main(["reproduce", "gers2002"]) == 0 and seen["sweep_budgets"] == []


def test_sweep_diagnosis_counts_solved_seeds_and_names_how_the_others_fail():
    def rec(v, seed, solve, mse, w1=0.0):
        return {"variant": v, "seed": seed, "T": 300, "iters": 3000, "solve_rate": solve,
                "test_mse": mse, "within1_rate": w1, "experiment": "sweep-T"}
    plateau = 0.99 / 300                             # the all-zero output's MSE is 1/T
    sweep = [rec("peephole", 0, 1.0, 1e-4), rec("peephole", 1, 0.95, 2e-4),
             rec("peephole", 2, 0.02, plateau), rec("lstm", 0, 0.3, 1e-3, w1=0.8),
             rec("lstm", 1, 0.01, plateau), rec("lstm", 2, 0.01, plateau)]
    assert gers2002.failure_kind(sweep[2]) == "plateau"
    assert gers2002.failure_kind(sweep[3]) == "imprecise"
    lines = gers2002.sweep_diagnosis(sweep)
    row = next(line for line in lines if line.startswith("| 300 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["300", "3000", "2/3", "0/3"]
    assert 0.05 < float(cells[4]) <= 1.0             # Mann-Whitney p of (1, .95, .02) vs (.3, .01, .01)
    assert cells[5] == "1 plateau" and cells[6] == "2 plateau, 1 imprecise (0.80)"
    broken = dict(rec("lstm", 3, 0.0, float("nan")), status="diverged")
    assert gers2002.failure_kind(broken) == "diverged"
    one_sided = gers2002.sweep_diagnosis([rec("peephole", 0, 1.0, 1e-4)])
    assert "| 300 | 3000 | 1/1 | 0/0 | n/a | none | none |" in one_sided


def test_pool_workers_run_blas_on_one_thread(tmp_path, monkeypatch):
    """The runs are the parallelism: each pool worker's BLAS gets one thread (OpenBLAS's spinning
    workers would take the cores of the other runs); the parent's is left alone."""
    import pytest

    from lstmlab._blas import blas_threads
    from lstmlab.experiments import runner

    before = blas_threads()
    if before is None or before < 2:
        pytest.skip("NumPy's BLAS thread count cannot be read here, or is already 1")
    monkeypatch.setattr(runner, "_run_one", lambda job: {"blas": blas_threads(), "variant": "x",
                                                         "seed": 0, "solve_rate": 1.0})
    cfg = gers2002.recipe_config("peephole", 0, iters=2)
    out = runner.run_configs([(str(tmp_path / "a"), cfg), (str(tmp_path / "b"), cfg)], jobs=2,
                             quiet=True)
    assert [r["blas"] for r in out] == [1, 1]
    assert blas_threads() == before


def test_pool_has_the_kernels_compiled_before_its_workers_start(tmp_path, monkeypatch):
    """The pool's runs would each compile the same kernels at once on a fresh cache: run_configs
    has what the unfinished runs need compiled first (shared between ``jobs`` processes), and
    nothing when they run on the reference path or have finished already."""
    from dataclasses import replace

    import pytest

    from lstmlab import kernels
    from lstmlab.experiments import runner

    if not kernels.available():
        pytest.skip("numba is not usable here")
    import time

    calls, warmed_at = [], []

    def warmup(dtypes, jobs, pieces):
        calls.append((list(dtypes), jobs, list(pieces)))
        warmed_at.append(time.monotonic())

    monkeypatch.setattr(kernels, "warmup", warmup)
    monkeypatch.setattr(runner, "_run_one", lambda job: {"variant": "x", "seed": 0,
                                                         "solve_rate": 1.0,
                                                         "t": time.monotonic()})
    small = gers2002.recipe_config("peephole", 0, iters=2)
    large = replace(small, hidden=64, dtype="float32")
    ref = replace(small, backend="reference")

    def run(*pairs):
        calls.clear()
        warmed_at.clear()
        out = runner.run_configs([(str(tmp_path / d), c) for d, c in pairs], jobs=2, quiet=True)
        assert all(w < r["t"] for w in warmed_at for r in out)     # before the pool's runs
        return calls

    assert run(("a", small), ("b", large)) == [
        (["float32", "float64"], 2, ["adam", "lstm_bwd", "lstm_fwd", "proj", "steps"])]
    assert run(("c", ref), ("d", ref)) == []
    gru, rnn = replace(small, variant="gru"), replace(small, variant="rnn", hidden=128)
    assert run(("h", gru), ("i", rnn)) == [                # each cell's own kernels, and no LSTM's
        (["float64"], 2, ["adam", "gru", "proj", "steps"])]
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "config.json").write_text(json.dumps(large.to_dict()))
    (tmp_path / "e" / "summary.json").write_text(json.dumps({"status": "done"}))
    assert run(("e", large), ("f", small), ("g", small)) == [
        (["float64"], 2, ["adam", "lstm_bwd", "lstm_fwd", "proj"])]


def test_the_shipped_gers2002_spec_is_the_recipe():
    """`lstmlab reproduce gers2002` runs specs/gers2002.toml: its 20 runs are recipe_config's."""
    from lstmlab.experiments import spec_path
    from lstmlab.experiments.gers2002 import recipe_config
    from lstmlab.sweep import expand, load_spec

    runs = expand(load_spec(spec_path("gers2002")))
    assert len(runs) == 20
    want = {(v, s): recipe_config(v, s).to_dict() for v in ("peephole", "lstm") for s in range(10)}
    assert {(c["variant"], c["seed"]): c for _, c in runs} == want


def test_reproduce_gradient_flow_quick(tmp_path, capsys):
    """The gradient-flow study end to end, small: records, table, report and figure."""
    import json

    out = tmp_path / "gf"
    assert main(["reproduce", "gradient-flow", "--seeds", "0", "--trained-seeds", "0",
                 "--iters", "10", "--out", str(out), "--quiet", "--jobs", "1"]) == 0
    recs = json.loads((out / "results.json").read_text())
    untrained = {r["model"]: r for r in recs if r["state"] == "untrained"}
    assert len(untrained) == 8 and sum(r["state"] == "trained" for r in recs) == 4
    assert untrained["rnn"]["orders_lost_h"] > untrained["lstm, bias 1"]["orders_lost_h"] + 3
    assert untrained["lstm, bias 1"]["orders_lost_h"] > untrained["lstm, bias 3"]["orders_lost_h"] + 3
    assert len(untrained["rnn"]["profile_h"]) == 150 and "profile_c" not in untrained["rnn"]
    report = (out / "report.md").read_text()
    assert "| lstm, bias 3 | trained | 1 |" in report and "the ordering the theory predicts" in report
    if have_matplotlib():
        from matplotlib.image import imread
        img = imread(out / "figures" / "gradient_flow.png")
        assert img.std() > 0.05
    assert "orders lost over 100 steps" in capsys.readouterr().out


def test_timer_cells_on_designed_states():
    """Four designed cells: a ramp reset at the second spike (a timer), a ramp that goes on
    (a ramp cell, no timer), noise and a constant (neither)."""
    from types import SimpleNamespace

    from lstmlab.experiments.timer_cells import timer_cells
    from lstmlab.tasks import make_task

    task = make_task("msd-pair")
    batch = task.sample(16, np.random.default_rng(0))
    T, B = batch.T, 16
    c = np.zeros((T, B, 4))
    noise = np.random.default_rng(1).normal(size=(T, B))
    for b in range(B):
        t1, t2 = batch.info["t1"][b], batch.info["t2"][b]
        t = np.arange(T)
        c[:, b, 0] = np.where((t >= t1) & (t < t2), 0.1 * (t - t1), 0.0)
        c[:, b, 1] = np.where(t >= t1, -0.05 * (t - t1), 0.0)
        c[:, b, 2] = noise[:, b]
        c[:, b, 3] = 0.7

    class Cache:
        def internals(self, layer, direction):
            return {"c": c}

    rnn = SimpleNamespace(kind="lstm", forward=lambda u: (None, None, Cache()))
    model = SimpleNamespace(rnn=rnn, rnn_inputs=lambda x: (x, None))
    t = timer_cells(model, batch)
    assert t["ramp"] == [True, True, False, False]
    assert t["timer"] == [True, False, False, False]
    assert t["timer_fraction"] == 0.25 and t["ramp_fraction"] == 0.5
    assert t["reset_rate"][0] == 1.0 and t["reset_rate"][1] == 0.0
