"""The character-level language model: corpus and streams, training with the state carried
across iterations (exact resume), sampling, the cell search and its HTML page, bad input."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from lstmlab.experiments.charlm import (charlm_config, generate, search_cells, split_metrics,
                                        text_features, word_stats)
from lstmlab.tasks import make_task
from lstmlab.tasks.text import CORPUS_MODULES, default_corpus_text
from lstmlab.train.loop import load_run, train
from lstmlab.viz.cells import dump_dom, find_chromium, screenshot, write_cells_html

EXE = [sys.executable, "-m", "lstmlab.cli"]
TEXT = "".join(f'def f{i}(x):\n    return "{i}" + (x * {i % 7})\n' for i in range(400))


def run(*args, cwd=None):
    return subprocess.run([*EXE, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, "CI": "1"})


@pytest.fixture
def text_file(tmp_path):
    p = tmp_path / "code.txt"
    p.write_text(TEXT, encoding="utf-8")
    return p


def _tiny(data, **over):
    kw = dict(layers=1, hidden=16, batch=4, seq_len=20, epochs=1, dtype="float64")
    kw.update({k: over.pop(k) for k in list(over) if k in kw})
    return charlm_config(data, "lstm", kw["layers"], kw["hidden"], kw["batch"], kw["seq_len"],
                         kw["epochs"], dtype=kw["dtype"], **over)


def test_default_corpus_splits_and_vocabulary():
    task = make_task("charlm")
    c = task.corpus
    assert c.text == default_corpus_text() and len(c.text) > 400_000
    assert list(c.vocab) == sorted(set(c.text)) and task.input_size == len(c.vocab)
    (a0, a1), (b0, b1), (t0, t1) = c.bounds
    assert a0 == 0 and a1 == b0 and b1 == t0 and t1 == len(c.text)
    assert abs((t1 - t0) / len(c.text) - 0.05) < 1e-3 and abs((b1 - b0) / len(c.text) - 0.05) < 1e-3
    assert c.decode(c.split("valid")) == c.text[b0:b1]


def test_default_corpus_is_the_reference_and_stdlib_code_in_alternation():
    import sysconfig
    from pydoc_data.topics import topics
    text = default_corpus_text()
    lib = sysconfig.get_paths()["stdlib"]
    prose = [topics[k] for k in sorted(topics)]
    code = [open(os.path.join(lib, m + ".py"), encoding="utf-8").read() for m in CORPUS_MODULES]
    # walk the text: each next document is the next of the kind with fewer characters so far
    pos, i, j, n_prose, n_code, kinds = 0, 0, 0, 0, 0, []
    while i < len(prose) or j < len(code):
        if j == len(code) or (i < len(prose) and n_prose <= n_code):
            doc, i, n_prose = prose[i], i + 1, n_prose + len(prose[i])
        else:
            doc, j, n_code = code[j], j + 1, n_code + len(code[j])
        assert text.startswith(doc, pos)
        kinds.append(j > 0 and doc is code[j - 1])
        pos += len(doc) + 2
        assert pos - 2 == len(text) or text[pos - 2:pos] == "\n\n"
    assert pos - 2 == len(text)
    assert sum(a != b for a, b in zip(kinds, kinds[1:])) > 20            # the kinds alternate
    assert 0.4 < n_code / (n_code + n_prose) < 0.6


def test_default_corpus_without_its_stdlib_modules_is_a_clear_error(monkeypatch, tmp_path):
    import sysconfig
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": str(tmp_path)})
    with pytest.raises(ValueError, match=r"^data: the built-in corpus needs the standard library's \w+\.py"):
        default_corpus_text()


def test_stream_batches_are_contiguous_chunks_and_targets_are_the_next_character(text_file):
    task = make_task("charlm", data=str(text_file), seq_len=20)
    B, K = 4, task.chunks_per_epoch(4)
    ids = task.corpus.split("train")
    L = (len(ids) - 1) // B
    assert K == L // 20
    b0, b1 = task.stream_batch(B, 0), task.stream_batch(B, 1)
    assert b0.x.shape == (20, B) and np.array_equal(b0.y[:-1], b0.x[1:])
    assert np.array_equal(b1.x[0], b0.y[-1])                       # the streams go on
    assert np.array_equal(b0.x[0], ids[np.arange(B) * L])          # stream b starts at b L
    assert bool(b0.info["reset"]) and not bool(b1.info["reset"])
    assert bool(task.stream_batch(B, K).info["reset"]) and np.array_equal(task.stream_batch(B, K).x, b0.x)


def test_predict_in_time_chunks_equals_one_pass(text_file):
    from lstmlab.train.loop import build_model
    cfg = _tiny(str(text_file), layers=2)
    model = build_model(cfg, cfg.make_task())
    x = cfg.make_task(test=True).sample(3).x
    assert np.abs(model.predict(x, steps=17) - model.predict(x)).max() < 1e-12


def test_training_learns_and_resume_with_carried_state_is_exact(tmp_path, text_file):
    cfg = _tiny(str(text_file), iters=120, eval_every=40, checkpoint_every=40, lr=1e-2)
    full = train(cfg, tmp_path / "full", quiet=True)
    assert full["bpc"] < 0.7 * np.log2(cfg.make_task().input_size)   # far below uniform guessing
    train(cfg, tmp_path / "cut", quiet=True, stop_after=50)           # killed mid-epoch
    resumed = train(cfg, tmp_path / "cut", resume=True, quiet=True)
    for k, v in full["params"].items():
        assert np.array_equal(v, resumed["params"][k]), k
    saved = json.loads((tmp_path / "full" / "data.json").read_text())
    assert saved["splits"]["test"]["end"] == len(TEXT) and len(saved["vocab"]) == len(set(TEXT))
    run_ = load_run(tmp_path / "full")
    assert split_metrics(run_, "test")["bpc"] < 0.7 * np.log2(len(saved["vocab"]))


def test_peephole_cells_train_with_a_clipped_cell_state(text_file):
    from lstmlab.train.loop import build_model
    plain = _tiny(str(text_file))
    assert plain.cell_clip is None and "cell_clip" not in plain.to_dict()    # lstm runs keep their ids
    assert "cell_clip" not in charlm_config(str(text_file), "gru", 1, 8, 4, 20, 1).to_dict()
    cfg = charlm_config(str(text_file), "peephole", 1, 16, 4, 20, 1, dtype="float64")
    assert cfg.cell_clip == 5.0 and cfg.variant == "peephole"
    model = build_model(cfg, cfg.make_task())
    assert model.rnn.spec.peephole and model.rnn.spec.cell_clip == 5.0
    model.params["rnn.weight_cf_l0"][...] = 1.0          # the runaway: f held at 1 by a large c
    model.params["rnn.weight_ci_l0"][...] = 1.0
    x = cfg.make_task().stream_batch(4, 0).x
    state = (np.zeros((1, 4, 16)), np.full((1, 4, 16), 50.0))
    _, (h, c), _ = model.forward(x, state)
    assert np.abs(c).max() <= 5.0 and np.abs(c).max() > 4.0
    unclipped = build_model(cfg.replace(cell_clip=None), cfg.make_task())
    unclipped.load_params(model.params)
    assert np.abs(unclipped.forward(x, state)[1][1]).max() > 50.0
    with pytest.raises(ValueError, match="cell_clip"):
        charlm_config(str(text_file), "gru", 1, 8, 4, 20, 1, cell_clip=5.0)


def test_changed_text_file_is_refused(tmp_path, text_file):
    cfg = _tiny(str(text_file), iters=5, eval_every=5)
    train(cfg, tmp_path / "r", quiet=True)
    text_file.write_text(TEXT.replace("return", "yield "), encoding="utf-8")
    with pytest.raises(ValueError, match="not the text the run was trained on"):
        load_run(tmp_path / "r")


def test_cli_train_sample_reproducible_and_cells(tmp_path, text_file):
    out = tmp_path / "run"
    r = run("train", "charlm", "--data", str(text_file), "--layers", "1", "--hidden", "24",
            "--batch", "4", "--seq-len", "25", "--iters", "80", "--lr", "0.01", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert "valid_bpc" in r.stdout and "test_bpc" in r.stdout
    args = ["sample", str(out), "--prime", "def ", "--length", "120", "--temperature", "0.5",
            "--seed", "3"]
    a, b, c = run(*args), run(*args), run(*args[:-1], "4")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout and a.stdout != c.stdout and a.stdout.startswith("def ")
    assert len(a.stdout) == len("def ") + 120 + 1
    w = run(*args, "--word-stats")
    assert w.returncode == 0 and w.stdout == a.stdout
    stats = word_stats(load_run(out), a.stdout[len("def "):-1], "def ")
    assert w.stderr.startswith(f"words: {stats['words']}, in the training text: {stats['known']} ")
    r = run("plot", str(out), "--cells", "--chars", "3000")
    assert r.returncode == 0, r.stderr
    page = (out / "figures" / "cells.html").read_text(encoding="utf-8")
    found = json.loads((out / "figures" / "cells.json").read_text())
    assert {s["feature"] for s in found["search"]} == set(found["features"])
    assert page.count("<section") == len(found["shown"]) and "<script" not in page
    r = run("plot", str(out), "--cells", "--cell", "L0.3,L0.5")
    assert r.returncode == 0 and (out / "figures" / "cells.html").read_text().count("<section") == 2


def test_generate_checks_its_arguments(tmp_path, text_file):
    train(_tiny(str(text_file), iters=3, eval_every=3), tmp_path / "r", quiet=True)
    run_ = load_run(tmp_path / "r")
    assert generate(run_, "def", 30, 0.7, top_k=3, seed=1) == generate(run_, "def", 30, 0.7, top_k=3, seed=1)
    for kw, name in ((dict(temperature=0), "temperature"), (dict(temperature=-1), "temperature"),
                     (dict(prime="\u00e9t\u00e9"), "prime"), (dict(prime=""), "prime"),
                     (dict(length=0), "length"), (dict(top_k=0), "top_k")):
        with pytest.raises(ValueError, match=f"^{name}"):
            generate(run_, **{"prime": "d", **kw})


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"), (b"\x00\x01\x02binary\x00" * 100, "looks binary"),
    ("caf\u00e9 ".encode("latin-1") * 500, "not UTF-8"), (b"short text", "fewer than one chunk")])
def test_bad_data_files_give_one_line_errors(tmp_path, content, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    r = run("train", "charlm", "--data", str(p), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr


def test_bad_cli_arguments_exit_2(tmp_path, text_file):
    train(_tiny(str(text_file), iters=3, eval_every=3), tmp_path / "r", quiet=True)
    cases = [["sample", str(tmp_path / "r"), "--temperature", "0"],
             ["sample", str(tmp_path / "r"), "--prime", "\u00e9"],
             ["sample", str(tmp_path / "nothing")],
             ["train", "charlm", "--data", str(tmp_path / "missing.txt")],
             ["train", "adding", "--seq-len", "5"],
             ["train", "charlm", "--data", str(text_file), "--batch", "1000"],
             ["plot", str(tmp_path / "r"), "--cells", "--cell", "L9.9"]]
    for args in cases:
        r = run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, args
        assert r.stdout == "", args              # nothing (not even the prime) before the error


def test_text_features_on_a_designed_string():
    f = text_features('a("x")\n  b')
    assert list(f["in_quotes"]) == [0, 0, 1, 1, 1, 0, 0, 0, 0, 0]
    assert list(f["bracket_depth"]) == [0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    assert list(f["indent"]) == [0, 0, 0, 0, 0, 0, 0, 1, 2, 2]
    assert list(f["line_position"]) == [1, 2, 3, 4, 5, 6, 0, 1, 2, 3]
    assert list(f["in_word"]) == [1, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_search_finds_the_cell_that_tracks_a_feature():
    rng = np.random.default_rng(0)
    f = text_features(TEXT[:3000])
    acts = rng.normal(size=(3000, 6))
    acts[:, 4] = -np.tanh(f["line_position"] / 10) + 0.1 * rng.normal(size=3000)
    rec = {r["feature"]: r for r in search_cells(acts, f, [f"L0.{j}" for j in range(6)])}
    assert rec["line_position"]["cell"] == "L0.4" and rec["line_position"]["r"] < -0.8
    assert abs(rec["in_quotes"]["r"]) < 0.9


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install chromium)")
def test_cells_page_renders_in_headless_chromium(tmp_path):
    text = 'x = "quoted"\n(a, [b])\n'
    acts = np.stack([np.linspace(-1, 1, len(text)), -np.linspace(-1, 1, len(text))], axis=1)
    page = write_cells_html(tmp_path / "c.html", text, acts,
                            [{"cell": "L0.1", "caption": "one"}, {"cell": "L1.2", "caption": "two"}], "t")
    dom = dump_dom(page)
    assert dom.count('<section class="cell"') == 2 and dom.count("<span") >= 2 * len(text)
    png = screenshot(page, tmp_path / "c.png", 600, 400)
    from PIL import Image
    im = np.asarray(Image.open(png).convert("RGB")).astype(int)
    red = (im[:, :, 0] > 200) & (im[:, :, 2] < 120)
    blue = (im[:, :, 2] > 200) & (im[:, :, 0] < 120)
    assert red.sum() > 50 and blue.sum() > 50                     # both ends of the scale shown


def test_word_stats_counts_words_of_the_training_split(tmp_path, text_file):
    cfg = _tiny(str(text_file), iters=2, eval_every=2)
    train(cfg, tmp_path / "r", quiet=True)
    r = load_run(tmp_path / "r")
    w = word_stats(r, "def f12(x):\n    return zork + 0xff * frob_1 + zork + ret")
    # def f12 x return zork frob_1 zork (0xff is a number; the cut 'ret' at the end is left out)
    assert (w["words"], w["known"], w["invented"]) == (7, 4, ["zork", "frob_1"])
    assert w["share"] == pytest.approx(4 / 7)
    # f399 is defined only in the last 5% of the text, outside the training split
    assert word_stats(r, "f3 f399 ")["invented"] == ["f399"]
    # a word that began in the prime is not the sample's
    assert word_stats(r, "urn x ", prime="def ret")["words"] == 1
    assert math.isnan(word_stats(r, "(1 + 2)")["share"])
    with pytest.raises(ValueError, match="^text: "):
        word_stats(r, None)
