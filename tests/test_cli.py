"""Tests of the command line: help, one-line errors with exit code 2, `lstmlab train`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.cli import main

EXE = [sys.executable, "-m", "lstmlab.cli"]


def run(*args, cwd=None):
    return subprocess.run([*EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "CI": "1"})


@pytest.mark.parametrize("cmd", [[], ["train"], ["reproduce"], ["reproduce", "gers2002"],
                                 ["reproduce", "gradient-flow"], ["plot"], ["gradcheck"]])
def test_help_works(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: lstmlab" in out
    if cmd == ["train"]:
        for opt in ("--variant", "--seed", "--hidden", "--iters", "--batch", "--lr", "--T", "--out", "--resume"):
            assert opt in out
    if cmd == ["reproduce"]:
        for name in ("gers2002", "gradient-flow"):
            assert name in out
    if cmd == ["reproduce", "gers2002"]:
        for opt in ("--seeds", "--out", "--sweep-T", "--jobs", "--paper-tasks"):
            assert opt in out
    if cmd == ["reproduce", "gradient-flow"]:
        for opt in ("--seeds", "--trained-seeds", "--quick", "--out"):
            assert opt in out
    if cmd == ["plot"]:
        for opt in ("--what", "--sample", "--out", "--gif"):
            assert opt in out


@pytest.mark.parametrize("argv", [
    ["train", "msd-pair", "--iters", "abc"],
    ["train", "msd-pair", "--bogus"],
    ["train", "nosuchtask"],
    ["train", "msd-pair", "--variant", "peep"],
    ["train", "msd-pair", "--lr", "-1"],
    ["reproduce", "gers2002", "--seeds", "9-0"],
    ["reproduce", "gers2003"],
    ["frobnicate"],
])
def test_bad_options_give_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "error" in err and "Traceback" not in err


def test_bad_value_from_the_package_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["train", "msd-pair", "--task-arg", "D_max=500", "--iters", "2", "--out", str(tmp_path / "x"),
               "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "D_max" in err


def test_train_writes_a_run_folder(tmp_path):
    r = run("train", "msd-pair", "--iters", "5", "--out", "tmp", "--backend", "reference", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr                       # no progress bar when not on a terminal
    d = tmp_path / "tmp"
    for f in ("config.json", "metrics.jsonl", "weights.safetensors", "checkpoint.safetensors", "summary.json"):
        assert (d / f).exists(), f
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["iters"] == 5 and cfg["task"] == "msd-pair" and cfg["variant"] == "peephole"
    recs = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    assert recs[0]["iter"] == 0 and recs[-1]["iter"] == 5
    assert {"mse", "solve_rate", "lr", "train_loss"} <= set(recs[-1])
    assert "solve_rate" in r.stdout


def test_train_resume_and_quiet(tmp_path, capsys):
    out = str(tmp_path / "r")
    args = ["train", "msd-pair", "--iters", "6", "--hidden", "2", "--batch", "2", "--T", "30",
            "--eval-size", "4", "--checkpoint-every", "3", "--backend", "reference", "--out", out, "--quiet"]
    assert main(args) == 0
    from lstmlab.core.io import load_arrays
    w1, _ = load_arrays(os.path.join(out, "weights.safetensors"))
    cfg = json.loads(open(os.path.join(out, "config.json")).read())
    assert cfg["task_args"] == {"T": 30, "scale_intervals": True}
    assert main(args + ["--resume"]) == 0              # resuming a finished run changes nothing
    w2, _ = load_arrays(os.path.join(out, "weights.safetensors"))
    assert all(np.array_equal(w1[k], w2[k]) for k in w1)
    captured = capsys.readouterr()
    assert captured.err == ""


def test_train_divergence_exit_1(tmp_path, capsys):
    rc = main(["train", "msd-pair", "--iters", "30", "--lr", "1e200", "--clip", "0", "--hidden", "2",
               "--T", "30", "--eval-size", "4", "--checkpoint-every", "1", "--backend", "reference",
               "--out", str(tmp_path / "d"), "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "last good checkpoint" in err


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    """A real kill: SIGKILL a running `lstmlab train`, resume it, compare with an uninterrupted run."""
    import signal
    import time

    from lstmlab.core.io import load_arrays

    common = ["train", "msd-pair", "--iters", "250", "--hidden", "3", "--batch", "4", "--T", "40",
              "--eval-size", "8", "--eval-every", "50", "--checkpoint-every", "7", "--backend", "reference",
              "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*EXE, *common, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "CI": "1"})
    ckpt = killed / "checkpoint.safetensors"
    deadline = time.time() + 60
    it = 0
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists():
            try:
                it = load_arrays(ckpt)[1]["iter"]
            except (ValueError, OSError):
                it = 0
            if it >= 21:
                break
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "weights.safetensors").exists()
    r = run(*common, "--out", str(killed), "--resume")
    assert r.returncode == 0, r.stderr
    r = run(*common, "--out", str(tmp_path / "straight"))
    assert r.returncode == 0, r.stderr
    a, _ = load_arrays(killed / "weights.safetensors")
    b, _ = load_arrays(tmp_path / "straight" / "weights.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in b)
    ma = (killed / "metrics.jsonl").read_text().splitlines()
    mb = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in lines]  # noqa: E731
    assert strip(ma) == strip(mb)


@pytest.mark.parametrize("argv", [
    ["train", "msd-pair", "--T", "3"],                         # the answer step is fixed
    ["train", "msd-pair", "--task-arg", "D_min=1", "--task-arg", "D_max=5"],
    ["train", "copy", "--task-arg", "n_copy=0"],
    ["train", "copy", "--dropout", "1.5"],
    ["train", "adding", "--T", "2"],
])
def test_degenerate_or_bad_task_settings_are_one_line_exit_2(tmp_path, capsys, argv):
    try:
        rc = main([*argv, "--iters", "2", "--out", str(tmp_path / "x"), "--quiet"])
    except SystemExit as e:                               # argparse's own errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err, err
    assert not (tmp_path / "x").exists()


def test_train_a_token_task_with_the_new_model_options(tmp_path):
    r = run("train", "copy", "--T", "4", "--task-arg", "n_copy=2", "--layers", "2", "--embed", "4",
            "--hidden", "8", "--tbptt", "5", "--iters", "6", "--eval-every", "3", "--eval-size", "8",
            "--backend", "reference", "--out", "cp", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "xent" in r.stdout and "baseline" in r.stdout
    cfg = json.loads((tmp_path / "cp" / "config.json").read_text())
    assert cfg["layers"] == 2 and cfg["embed"] == 4 and cfg["tbptt"] == 5
