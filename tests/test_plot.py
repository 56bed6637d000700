"""lstmlab plot: every figure of runs of every task and cell, drawn from the saved folder."""
import os

import numpy as np
import pytest

from lstmlab.cli import main
from lstmlab.tasks import TASKS

pytest.importorskip("matplotlib")

T_ARG = {"msd-pair": 30, "msd": 30, "gts": 30, "adding": 12, "copy": 5, "adding-1997": 24,
         "multiplication": 24}


def _train(tmp_path, task, variant, *extra):
    out = str(tmp_path / f"{task}-{variant}")
    args = ["train", task, "--variant", variant, "--iters", "12", "--hidden", "3",
            "--eval-size", "8", "--eval-every", "4", "--quiet", "--out", out, *extra]
    if task in T_ARG:
        args += ["--T", str(T_ARG[task])]
    assert main(args) == 0
    return out


def _not_blank(path):
    from matplotlib.image import imread

    img = imread(path)[..., :3]                                            # (h, w, 3) in [0, 1]
    assert img.shape[0] > 100 and img.shape[1] > 100
    ink = (img.min(axis=2) < 0.8).mean()                                   # non-white pixels
    assert 0.01 < ink < 0.95, f"{path}: {ink:.3f} of the image is ink"
    assert img.std() > 0.05


def _check(out_dir, names):
    for n in names:
        p = os.path.join(out_dir, f"{n}.png")
        assert os.path.getsize(p) > 5000, p
        _not_blank(p)


SEQ2SEQ = [t for t in TASKS if getattr(TASKS[t], "kind", None) == "seq2seq"]


@pytest.mark.parametrize("task", [t for t in TASKS if t not in SEQ2SEQ])
def test_plot_every_task(tmp_path, task, capsys):
    run = _train(tmp_path, task, "lstm")
    assert main(["plot", run, "--quiet", "--sample", "1"]) == 0
    _check(os.path.join(run, "figures"), ["curves", "predictions", "gates", "weights", "gradflow"])
    assert not os.path.exists(os.path.join(run, "figures", "peepholes.png"))   # lstm has none
    assert "5 figure(s)" in capsys.readouterr().out


def test_a_run_whose_linear_cell_runs_away_still_plots(tmp_path, monkeypatch, capsys):
    """The paper's identity-squashed cell can grow without bound on a long test stream, through
    values near the float64 maximum (where matplotlib's tick code overflows) to inf and NaN: the
    figures leave those steps blank and say from which step, instead of failing."""
    from lstmlab.core.io import load_arrays, save_arrays
    from lstmlab.train.model import SeqModel
    run = _train(tmp_path, "pfg", "peephole")
    path = os.path.join(run, "weights.safetensors")
    params, meta = load_arrays(path)
    H = params["rnn.bias_ih_l0"].shape[0] // 4
    params["rnn.bias_ih_l0"][H:2 * H] = 50.0            # forget gate open: nothing decays
    params["rnn.weight_hh_l0"][2 * H:3 * H] = 10.0      # cell input 10 h: the state grows
    save_arrays(path, params, meta)                     # geometrically, to inf in the stream
    forward = SeqModel.forward

    def runaway(self, x, *args, **kwargs):              # the output passes 1e308, then inf, NaN
        out = forward(self, x, *args, **kwargs)
        out[0][5:8] = np.array([1e308, -1.7e308, np.inf])[:, None, None]
        out[0][8:] = np.nan
        return out
    monkeypatch.setattr(SeqModel, "forward", runaway)
    assert main(["plot", run, "--quiet", "--what", "predictions,gates"]) == 0
    _check(os.path.join(run, "figures"), ["predictions", "gates"])
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("task", SEQ2SEQ)
def test_plot_seq2seq_runs_draw_their_curves_and_refuse_the_rest(tmp_path, task, capsys):
    run = _train(tmp_path, task, "lstm")
    assert main(["plot", run, "--quiet"]) == 0
    _check(os.path.join(run, "figures"), ["curves"])
    assert "1 figure(s)" in capsys.readouterr().out
    for extra in (["--what", "gates"], ["--gif"]):
        assert main(["plot", run, "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert "not drawn for sequence-to-sequence runs" in err and "Traceback" not in err


@pytest.mark.parametrize("variant", ["peephole", "cifg", "gru", "rnn"])
def test_plot_every_cell(tmp_path, variant):
    run = _train(tmp_path, "adding", variant, "--snapshot-every", "4")
    figs = str(tmp_path / "figs")
    assert main(["plot", run, "--quiet", "--out", figs, "--gif"]) == 0
    names = ["curves", "predictions", "gates", "weights", "gradflow"]
    if variant == "peephole":
        names.append("peepholes")
    _check(figs, names)
    from PIL import Image

    gif = Image.open(os.path.join(figs, "training.gif"))
    assert gif.format == "GIF"
    assert gif.n_frames == len(os.listdir(os.path.join(run, "snapshots"))) == 4   # 0, 4, 8, 12
    frames = []
    for k in range(gif.n_frames):
        gif.seek(k)
        frames.append(np.asarray(gif.convert("RGB"), dtype=float))
    assert np.abs(frames[0] - frames[-1]).mean() > 0.5          # the frames differ


def test_plot_errors(tmp_path, capsys):
    run = _train(tmp_path, "adding", "lstm")

    def err(*args):
        assert main(["plot", *args]) == 2
        e = capsys.readouterr().err
        assert e.startswith("lstmlab plot: error: ") and e.count("\n") == 1, e
        return e

    assert "no such run folder" in err(str(tmp_path / "nowhere"))
    assert "no config.json" in err(str(tmp_path))
    assert "unknown figure 'heat'" in err(run, "--what", "gates,heat")
    assert "sample" in err(run, "--sample", "99")
    assert "no peephole weights" in err(run, "--what", "peepholes")
    assert "no weight snapshots" in err(run, "--gif", "--what", "curves")
    w = os.path.join(run, "weights.safetensors")
    with open(w, "r+b") as f:                       # corrupt the arrays, keep the size
        f.seek(-8, 2)
        f.write(b"\x00\x01\x02\x03\x04\x05\x06\x07")
    assert "cannot be read" in err(run)
    os.unlink(w)
    assert "no weights.safetensors" in err(run)
    with open(os.path.join(run, "config.json"), "w") as f:
        f.write("{not json")
    assert "cannot be read" in err(run)


def test_generated_streams_draw_msd_targets_only_at_the_spikes(tmp_path, monkeypatch):
    """The paper-task figure: a gts panel draws its target at every step (a line), an msd
    panel only at the spike steps it scores (no target 0 drawn between the spikes)."""
    import matplotlib.pyplot as plt

    from lstmlab.experiments.gers2002_paper import paper_task_config
    from lstmlab.train import train
    from lstmlab.viz.timing import plot_generated_streams
    runs = {}
    for task in ("gts", "msd"):
        cfg = paper_task_config(task, "peephole", 0, 3, task_args={"F": 5, "delays": [0, 1],
                                "n_spikes": 4}, test_task_args={"n_spikes": 8, "required": 8})
        train(cfg, tmp_path / task, quiet=True)
        runs[task] = str(tmp_path / task)
    monkeypatch.setattr(plt, "close", lambda *a: None)           # keep the figure to look at
    path = plot_generated_streams(runs, str(tmp_path / "g.png"), cycles=2)
    assert os.path.getsize(path) > 0
    axes = plt.gcf().axes
    gts_target, msd_target = axes[0].lines[0], axes[2].lines[0]
    assert gts_target.get_linestyle() == "--" and len(gts_target.get_xdata()) == 10
    assert msd_target.get_linestyle() == "None" and 1 <= len(msd_target.get_xdata()) <= 2
