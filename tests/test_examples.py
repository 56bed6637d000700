"""The example scripts: the PyTorch word-level language model (nn.LSTM and lstmlab.torch.LSTM side by side) and the character-level model (lstmlab's engine and nn.LSTM)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "word_language_model.py")


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_quick_run_gives_nn_lstms_perplexity_within_one_percent(tmp_path):
    """Same weights, same batches, no dropout: the two implementations train alike (float32
    differences grow over 30 SGD steps at lr 20, so the bound is 1%, not bit equality), and the
    model learns (perplexity far below the vocabulary size)."""
    out = tmp_path / "wlm.json"
    r = _run("--quick", "--json", str(out))
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())["results"]
    ppl = {x["impl"]: x["history"][-1]["val_ppl"] for x in res}
    assert abs(ppl["lstmlab"] / ppl["torch"] - 1) < 0.01
    vocab = int(r.stdout.split("vocabulary ")[1].split(";")[0])
    assert ppl["torch"] < vocab / 5


def test_peephole_variant_trains_and_bad_arguments_exit_2(tmp_path):
    out = tmp_path / "p.json"
    r = _run("--quick", "--impl", "lstmlab", "--variant", "peephole", "--json", str(out))
    assert r.returncode == 0, r.stderr
    (res,) = json.loads(out.read_text())["results"]
    assert res["variant"] == "peephole" and res["history"][-1]["val_ppl"] < 1000
    for bad in (["--variant", "bogus"], ["--dropout", "1.5"], ["--nhid", "0"],
                ["--tied", "--nhid", "100"]):
        r = _run(*bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip()


CHAR_SCRIPT = os.path.join(ROOT, "examples", "char_language_model.py")


def test_char_lm_side_by_side_quick_run_matches_torch(tmp_path):
    """Same weights, batches and Adam in float32: after 40 updates the two test bpc agree to
    1e-3 relative (rounding only), and the model has learned (below uniform guessing)."""
    r = subprocess.run([sys.executable, CHAR_SCRIPT, "--quick", "--json", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert abs(res["test_ratio"] - 1) < 1e-3
    assert res["torch"]["test_bpc"] < 0.9 * np.log2(103) and len(res["torch"]["curve"]) == 2
    assert [p["iter"] for p in res["torch"]["curve"]] == [p["iter"] for p in res["lstmlab"]["curve"]]
    assert os.path.exists(res["figure"])
    with open(os.path.join(tmp_path, "lstmlab-run", "config.json")) as f:
        assert json.load(f)["dropout"] == 0.0          # torch cannot draw the recipe's masks
