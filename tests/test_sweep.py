"""Sweeps: spec expansion and its errors, the SQLite store, skip and resume, kill -9 of a real
sweep, the same results on a real local Ray instance, the results command."""
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from lstmlab.cli import main
from lstmlab.sweep import expand, load_spec, parse_spec, run_id, run_sweep, summarize

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

SPEC = """
name = "tiny"
[base]
task = "msd-pair"
task_args = { T = 20, D_min = 3, D_max = 6 }
hidden = 4
iters = ITERS
eval_every = 10
eval_size = 16
checkpoint_every = 10
backend = "reference"
[grid]
variant = ["lstm", "peephole"]
seed = SEEDS
"""


def write_spec(tmp_path, iters=30, seeds="[0, 1]", extra="", name="spec.toml"):
    p = tmp_path / name
    p.write_text(SPEC.replace("ITERS", str(iters)).replace("SEEDS", seeds) + extra)
    return p


def test_grid_random_and_stable_ids(tmp_path):
    spec = load_spec(write_spec(tmp_path, extra="""
[random]
n = 3
seed = 4
lr = { log_uniform = [1e-4, 1e-1] }
hidden = { choice = [4, 8] }
clip = { uniform = [0.5, 2.0] }
"""))
    runs = expand(spec)
    assert len(runs) == 3 * 2 * 2
    assert [r[0] for r in runs] == [r[0] for r in expand(spec)]          # reproducible draws
    assert len({r[0] for r in runs}) == len(runs)
    assert all(1e-4 <= c["lr"] <= 1e-1 and c["hidden"] in (4, 8) for _, c in runs)
    rid, cfg = runs[0]
    assert run_id(cfg) == rid and run_id({**cfg, "seed": 7}) != rid
    dotted = parse_spec({"base": {"task": "msd-pair", "task_args": {"T": 20, "D_min": 3, "D_max": 6}},
                         "grid": {"task_args.T": [20, 30]}})
    assert [c["task_args"] for _, c in expand(dotted)] == [{"T": 20, "D_min": 3, "D_max": 6},
                                                           {"T": 30, "D_min": 3, "D_max": 6}]


@pytest.mark.parametrize("raw,key", [
    ({"bogus": 1}, "bogus"),
    ({"grid": {"seed": 3}}, "grid.seed"),
    ({"grid": {"seed": []}}, "grid.seed"),
    ({"random": {"n": 2, "lr": {"gauss": [0, 1]}}}, "random.lr"),
    ({"random": {"n": 2, "lr": {"log_uniform": [0, 1]}}}, "random.lr"),
    ({"random": {"n": 2, "lr": {"uniform": [2, 1]}}}, "random.lr"),
    ({"random": {"n": 0, "lr": {"uniform": [1, 2]}}}, "random.n"),
    ({"base": {"nope": 1}}, "nope"),
    ({"base": {"hidden": "eight"}}, "hidden"),
    ({"base": {"task": "msd-pair", "task_args": {"T": 3, "scale_intervals": True}}}, "degenerate"),
])
def test_malformed_specs_name_the_key(raw, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        parse_spec(raw)


def one_line_exit_2(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err, err
    return err


def test_bad_command_lines_are_one_line_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[grid]\nvariant = []\n')
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "grid.variant" in one_line_exit_2(["sweep", str(bad)], capsys)
    assert "not valid TOML" in one_line_exit_2(["sweep", str(afile)], capsys)
    assert "--out" in one_line_exit_2(["sweep", str(spec), "--out", str(afile)], capsys)
    assert "--db" in one_line_exit_2(["sweep", str(spec), "--out", str(tmp_path / "o"),
                                      "--db", str(tmp_path)], capsys)
    assert "--ray" in one_line_exit_2(["sweep", str(spec), "--out", str(tmp_path / "o2"),
                                       "--ray", "127.0.0.1:1"], capsys)
    assert "DB" in one_line_exit_2(["results", str(tmp_path / "none.sqlite")], capsys)
    os.chmod(tmp_path / "o", 0o500)
    try:
        if not os.access(tmp_path / "o", os.W_OK):          # root can write anywhere
            assert "--out" in one_line_exit_2(["sweep", str(spec), "--out", str(tmp_path / "o")], capsys)
    finally:
        os.chmod(tmp_path / "o", 0o700)


def test_sweep_stores_every_run_and_a_rerun_skips_them(tmp_path):
    spec = write_spec(tmp_path)
    rows = run_sweep(spec, out=tmp_path / "out", jobs=1, quiet=True)
    assert [r["status"] for r in rows] == ["done"] * 4
    assert all("solve_rate" in r["metrics"] and r["wall_s"] > 0 for r in rows)
    assert all(os.path.isfile(os.path.join(r["run_dir"], "weights.safetensors")) for r in rows)
    again = run_sweep(spec, out=tmp_path / "out", jobs=1, quiet=True)
    assert [(r["started"], r["finished"]) for r in again] == [(r["started"], r["finished"]) for r in rows]
    db = tmp_path / "out" / "results.sqlite"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s = summarize(db, group_by="variant", metric="solve_rate")
    assert [g["group"] for g in s["groups"]] == ["lstm", "peephole"]
    assert all(g["n"] == 2 for g in s["groups"]) and s["groups"][1]["p"] is not None


def test_results_command_table_and_csv(tmp_path, capsys):
    spec = write_spec(tmp_path)
    run_sweep(spec, out=tmp_path / "out", jobs=1, quiet=True)
    db = str(tmp_path / "out" / "results.sqlite")
    assert main(["results", db, "--metric", "mse", "--baseline", "peephole"]) == 0
    out = capsys.readouterr().out
    assert "| lstm | 2 |" in out and "Welch p vs peephole" in out
    assert main(["results", db, "--csv", "--where", "variant=lstm"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and {r["config.variant"] for r in rows} == {"lstm"}
    assert all(float(r["metrics.mse"]) > 0 for r in rows)
    assert main(["results", db, "--group-by", "seed", "--where", "task_args.T=20"]) == 0


def test_kill_9_of_a_running_sweep_and_a_rerun_finish_every_run_once(tmp_path):
    spec = write_spec(tmp_path, iters=400, seeds="[0, 1, 2]")
    out, db = tmp_path / "out", tmp_path / "out" / "results.sqlite"
    env = {**os.environ, "PYTHONPATH": SRC, "LSTMLAB_TEST_WARMUP": "0"}
    cmd = [sys.executable, "-m", "lstmlab.cli", "sweep", str(spec), "--out", str(out), "--jobs", "2",
           "--quiet"]
    p = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    statuses = []
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            try:
                statuses = [s for (s,) in sqlite3.connect(db, timeout=5).execute("SELECT status FROM runs")]
            except sqlite3.OperationalError:
                continue
            if "done" in statuses and "running" in statuses:
                break
    os.killpg(p.pid, signal.SIGKILL)                      # the sweep, its pool and its workers
    p.wait()
    assert "done" in statuses and "running" in statuses, statuses
    con = sqlite3.connect(db)
    before = {i: f for i, s, f in con.execute("SELECT id, status, finished FROM runs") if s == "done"}
    con.close()
    rows = run_sweep(spec, out=out, jobs=1, quiet=True)      # in this process: no fork after threads
    assert len(rows) == 6 and all(r["status"] == "done" for r in rows)
    for r in rows:
        if r["id"] in before:                              # finished before the kill: not rerun
            assert r["finished"] == before[r["id"]]
        iters = [json.loads(line)["iter"] for line in open(os.path.join(r["run_dir"], "metrics.jsonl"))]
        assert iters == sorted(set(iters)) and iters[-1] == 400      # one run, no step twice
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 6


def test_ray_local_gives_the_results_of_the_local_pool(tmp_path):
    pytest.importorskip("ray")
    spec = write_spec(tmp_path)
    env = {**os.environ, "PYTHONPATH": SRC}
    subprocess.run([sys.executable, "-m", "lstmlab.cli", "sweep", str(spec), "--out",
                    str(tmp_path / "a"), "--jobs", "2", "--quiet"], env=env, check=True)
    local = run_sweep(spec, out=tmp_path / "a", quiet=True)       # all done: read back, none run
    on_ray = run_sweep(spec, out=tmp_path / "b", jobs=2, ray="local", quiet=True)
    import ray
    assert not ray.is_initialized()                   # the Ray the sweep started is shut down
    assert [r["id"] for r in on_ray] == [r["id"] for r in local]
    for a, b in zip(local, on_ray):
        assert b["status"] == "done"
        assert {k: v for k, v in a["metrics"].items() if k != "lr"} == \
            {k: v for k, v in b["metrics"].items() if k != "lr"}
