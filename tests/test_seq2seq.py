"""The encoder-decoder (lstmlab.core.seq2seq): gradient check of the whole model, a PyTorch
autograd transcription as the oracle, decoding, attention weights and bad input."""
import numpy as np
import pytest

from lstmlab.core.gradcheck import numeric_gradient, rel_error
from lstmlab.core.seq2seq import BOS, EOS, Seq2Seq

S, T, B = 5, 4, 3
SRC_LEN, TGT_LEN = np.array([5, 2, 4]), np.array([4, 1, 3])


def _model(rng, **kw):
    """A small model whose weights are all redrawn N(0, 0.6^2): attention far from uniform, and
    no gradient that is small only because an initial weight was."""
    m = Seq2Seq(9, 8, embed=3, hidden=4, seed=1, **kw)
    for v in m.params.values():
        v[...] = rng.normal(0, 0.6, v.shape)
    return m


def _data(rng):
    return rng.integers(3, 9, (S, B)), rng.integers(2, 8, (T, B))


CASES = [  # attention, cell, bidirectional, bridge, layers, teacher forcing
    ("none", "lstm", False, "dense", 1, 1.0),
    ("dot", "lstm", False, "dense", 2, 1.0),
    ("dot", "gru", False, "copy", 1, 0.5),
    ("general", "peephole", True, "dense", 2, 0.5),
    ("general", "rnn", False, "zero", 1, 1.0),
    ("bahdanau", "lstm", True, "dense", 1, 1.0),
    ("bahdanau", "gru", False, "dense", 1, 0.5),
]


@pytest.mark.parametrize("attention,cell,bi,bridge,layers,tf", CASES)
def test_gradient_check_of_the_whole_model(attention, cell, bi, bridge, layers, tf, rng):
    """Every parameter's hand-derived gradient against central differences (float64), with
    source padding, target lengths, a bidirectional encoder and free-running steps (tf < 1: the
    drawn choices are the same in every evaluation)."""
    m = _model(rng, attention=attention, cell=cell, bidirectional=bi, bridge=bridge, layers=layers)
    src, tgt = _data(rng)

    def loss():
        return m.loss(src, tgt, SRC_LEN, TGT_LEN, teacher_forcing=tf,
                      rng=np.random.default_rng(3))[0]

    _, dlogits, cache = m.loss(src, tgt, SRC_LEN, TGT_LEN, teacher_forcing=tf,
                               rng=np.random.default_rng(3))
    g = m.backward(dlogits, cache)
    assert list(g) == list(m.params)
    errors = {k: rel_error(g[k], numeric_gradient(loss, m.params[k], 1e-5)) for k in m.params}
    assert max(errors.values()) < 1e-6, sorted(errors.items(), key=lambda kv: -kv[1])[:3]
    for k in m.params:                    # no parameter without a gradient (padding aside)
        assert np.abs(g[k]).max() > 0, k


def _torch_loss(m, src, tgt, src_len, tgt_len):
    """The same model written in torch (nn.LSTM / nn.GRU for the stacks, the decoder one step at
    a time; the engine's state dict loaded as it is): loss and gradients by autograd."""
    torch = pytest.importorskip("torch")
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    P = {k: torch.tensor(v, requires_grad=True) for k, v in m.params.items()}
    kind = {"gru": nn.GRU}.get(m.cell, nn.LSTM)
    E, H, L = m.embed, m.hidden, m.layers
    enc = kind(E, H, L, bidirectional=m.bidirectional).double()
    dec = kind(E + (H if m.feed else 0), H, L).double()
    fn = torch.func.functional_call
    e = P["src_embed.weight"][torch.as_tensor(src)]
    packed = pack_padded_sequence(e, torch.as_tensor(src_len), enforce_sorted=False)
    encp = {k[4:]: v for k, v in P.items() if k.startswith("enc.")}
    Yp, s_n = fn(enc, encp, (packed,))
    Y, _ = pad_packed_sequence(Yp, total_length=src.shape[0])             # (S, B, Hy)
    parts = s_n if m.lstm else (s_n,)
    init = []
    for part, p in zip("hc", parts):
        rows = []
        for layer in range(L):
            cat = torch.cat(list(p[layer * m.dirs:(layer + 1) * m.dirs]), dim=1)
            z = cat @ P[f"bridge_{part}_l{layer}.weight"].T + P[f"bridge_{part}_l{layer}.bias"]
            rows.append(torch.tanh(z) if part == "h" else z)
        init.append(torch.stack(rows))
    state = tuple(init) if m.lstm else init[0]
    mask = torch.as_tensor(np.arange(src.shape[0])[:, None] < src_len[None, :])
    if m.attention == "general":
        K = Y @ P["attn.W_a"].T
    elif m.attention == "bahdanau":
        K = Y @ P["attn.U_k"].T
    else:
        K = Y
    decp = {k[4:]: v for k, v in P.items() if k.startswith("dec.")}
    a = torch.zeros(src.shape[1], H, dtype=torch.float64)
    tgt_t = torch.as_tensor(tgt)
    total = 0.0
    for t in range(tgt.shape[0]):
        token = torch.full((src.shape[1],), BOS) if t == 0 else tgt_t[t - 1]
        emb = P["tgt_embed.weight"][token]
        d = torch.cat([emb, a], dim=1) if m.feed else emb
        y, state = fn(dec, decp, (d[None], state))
        h = y[0]
        if m.feed:
            if m.attention == "bahdanau":
                score = torch.tanh(K + (h @ P["attn.W_q"].T)[None]) @ P["attn.v"]
            else:
                score = torch.einsum("sbh,bh->sb", K, h)
            alpha = torch.softmax(score.masked_fill(~mask, float("-inf")), dim=0)
            ctx = torch.einsum("sb,sbh->bh", alpha, Y)
            a = torch.tanh(torch.cat([ctx, h], 1) @ P["att_out.weight"].T + P["att_out.bias"])
        else:
            a = h
        logp = torch.log_softmax(a @ P["out.weight"].T + P["out.bias"], dim=1)
        counted = torch.as_tensor(t < tgt_len)
        total = total - (logp[torch.arange(src.shape[1]), tgt_t[t]] * counted).sum()
    loss = total / float((np.arange(tgt.shape[0])[:, None] < tgt_len[None, :]).sum())
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in P.items()}


@pytest.mark.parametrize("attention,cell,bi", [("none", "lstm", False), ("dot", "gru", False),
                                               ("general", "lstm", True),
                                               ("bahdanau", "lstm", True)])
def test_torch_transcription_gives_the_same_loss_and_gradients(attention, cell, bi, rng):
    m = _model(rng, attention=attention, cell=cell, bidirectional=bi, layers=2)
    src, tgt = _data(rng)
    loss, dlogits, cache = m.loss(src, tgt, SRC_LEN, TGT_LEN)
    g = m.backward(dlogits, cache)
    tloss, tg = _torch_loss(m, src, tgt, SRC_LEN, TGT_LEN)
    assert abs(loss - tloss) < 1e-10
    assert set(tg) == set(g)
    for k in g:
        np.testing.assert_allclose(g[k], tg[k], rtol=1e-10, atol=1e-10, err_msg=k)


def test_beam_search_never_scores_below_greedy_and_width_one_is_greedy():
    """On 36 random models (each attention, weights of scale 0.8, 1.5 and 3: on the sharper ones
    an earlier search, which stopped once `beam` hypotheses had finished, scored below greedy),
    20 sources each and widths 2, 4, 8: the beam's log-likelihood is never below greedy
    decoding's where greedy finished, and sometimes above; a beam of 1 is greedy decoding,
    tokens and score."""
    rng = np.random.default_rng(123)
    better = total = 0
    for i in range(36):
        attention, scale = ("none", "dot", "general", "bahdanau")[i % 4], (0.8, 1.5, 3.0)[i % 3]
        m = Seq2Seq(12, 10, embed=4, hidden=8, attention=attention, seed=i)
        for v in m.params.values():
            v[...] = rng.normal(0, scale, v.shape)
        src, n = rng.integers(3, 12, (6, 20)), rng.integers(1, 7, 20)
        greedy = m.greedy(src, n, max_len=8)
        for x, y in zip(greedy, m.beam_search(src, n, beam=1, max_len=8)):
            assert x["tokens"] == y["tokens"] and abs(x["logp"] - y["logp"]) < 1e-12
        for width in (2, 4, 8):
            for x, y in zip(greedy, m.beam_search(src, n, beam=width, max_len=8)):
                if x["finished"]:
                    total += 1
                    assert y["finished"] and y["logp"] >= x["logp"] - 1e-12, (i, attention, width)
                    better += y["logp"] > x["logp"] + 1e-9
    assert total > 300 and better > 0


def test_attention_weights_sum_to_one_over_the_source_and_ignore_padding(rng):
    m = _model(rng, attention="general", bidirectional=True)
    src, _ = _data(rng)
    out = m.greedy(src, SRC_LEN, max_len=6)
    src2 = src.copy()
    src2[SRC_LEN[1]:, 1] = 3                        # other padding: nothing changes
    out2 = m.greedy(src2, SRC_LEN, max_len=6)
    for b, (r, r2) in enumerate(zip(out, out2)):
        assert r["attention"].shape == (len(r["tokens"]) + r["finished"], SRC_LEN[b])
        np.testing.assert_allclose(r["attention"].sum(axis=1), 1.0, atol=1e-12)
        assert r["tokens"] == r2["tokens"]
        np.testing.assert_array_equal(r["attention"], r2["attention"])
    assert m.greedy(src, SRC_LEN, max_len=6)[0]["tokens"] == out[0]["tokens"]   # deterministic
    assert Seq2Seq(9, 8, attention="none").greedy(src)[0]["attention"] is None


def test_teacher_forcing_zero_feeds_the_models_own_choices(rng):
    """With teacher_forcing=0 every input after BOS is the previous step's argmax, which is what
    greedy decoding emits: the recorded inputs are the greedy tokens."""
    m = _model(rng, attention="dot")
    src, tgt = _data(rng)
    _, cache = m.forward(src, tgt, teacher_forcing=0.0)
    greedy = m.greedy(src, max_len=T)
    for b in range(B):
        emitted = (greedy[b]["tokens"] + [EOS])[:T - 1]
        np.testing.assert_array_equal(cache["inputs"][1:1 + len(emitted), b], emitted)


@pytest.mark.parametrize("call,msg", [
    (lambda m: m.forward(np.zeros((0, 2), int), np.ones((2, 2), int)), "src: empty"),
    (lambda m: m.forward(np.full((2, 2), 9), np.ones((2, 2), int)), r"src: expected token ids in \[0, 9\)"),
    (lambda m: m.forward(np.ones((2, 2), int), np.full((2, 2), -1)), r"tgt: expected token ids in \[0, 8\)"),
    (lambda m: m.forward(np.ones((2, 2)), np.ones((2, 2), int)), "src: expected .* integer token ids"),
    (lambda m: m.forward(np.ones((2, 2), int), np.ones((2, 3), int)), "tgt: expected 2 sequences"),
    (lambda m: m.forward(np.ones((2, 2), int), np.ones((2, 2), int), [3, 1]), r"src_lengths: expected lengths in \[1, 2\]"),
    (lambda m: m.loss(np.ones((2, 2), int), np.ones((2, 2), int), None, [0, 1]), r"tgt_lengths: expected lengths in \[1, 2\]"),
    (lambda m: m.forward(np.ones((2, 2), int), np.ones((2, 2), int), teacher_forcing=1.5), "teacher_forcing"),
    (lambda m: m.beam_search(np.ones((2, 2), int), beam=0), "beam: expected an integer >= 1"),
    (lambda m: m.greedy(np.ones((2, 2), int), max_len=0), "max_len: expected an integer >= 1"),
])
def test_bad_input_is_refused_with_the_arguments_name(call, msg):
    with pytest.raises(ValueError, match=msg):
        call(Seq2Seq(9, 8, embed=3, hidden=4))


@pytest.mark.parametrize("kw,msg", [({"attention": "luong"}, "attention: expected one of"),
                                    ({"bridge": "mean"}, "bridge: expected one of"),
                                    ({"bridge": "copy", "bidirectional": True}, "bridge: 'copy'"),
                                    ({"attention": "dot", "bidirectional": True}, "attention: 'dot'"),
                                    ({"hidden": 0}, "hidden: expected an integer >= 1")])
def test_bad_construction_is_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Seq2Seq(9, 8, **kw)


# -- tasks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["reverse", "sort", "addition", "dates"])
def test_tasks_pad_end_with_eos_and_score_their_own_targets(name):
    from lstmlab.tasks import make_task
    task = make_task(name)
    b = task.sample(16, np.random.default_rng(0))
    src_n, tgt_n = b.info["src_lengths"], b.info["tgt_lengths"]
    for k in range(16):
        assert (b.x[:src_n[k], k] >= 3).all() and (b.x[src_n[k]:, k] == 0).all()
        assert b.y[tgt_n[k] - 1, k] == EOS and (b.y[tgt_n[k]:, k] == 0).all()
        assert (b.y[:tgt_n[k] - 1, k] >= 3).all()
    assert b.x.max() < task.input_size and b.y.max() < task.output_size
    np.testing.assert_array_equal(b.mask.sum(axis=0), tgt_n)
    assert task.evaluate(b.y, b) == {"exact_match": 1.0, "token_accuracy": 1.0}
    wrong = b.y.copy()
    wrong[0, 0] = 3 if wrong[0, 0] != 3 else 4              # one token of one sequence
    r = task.evaluate(wrong, b)
    assert r["exact_match"] == 15 / 16 and r["token_accuracy"] == 1 - 1 / b.mask.sum()
    longer = np.concatenate([b.y, np.full((1, 16), 5)])      # something after EOS: not exact
    assert task.evaluate(longer, b)["exact_match"] == 0.0
    again = task.sample(16, np.random.default_rng(0))
    np.testing.assert_array_equal(again.x, b.x)              # a pure function of the seed


def test_reverse_sort_addition_targets():
    from lstmlab.tasks import make_task
    rng = np.random.default_rng(1)
    for s, t in make_task("reverse").pairs(20, rng):
        assert t == s[::-1] and 5 <= len(s) <= 10
    for s, t in make_task("sort").pairs(20, rng):
        assert t == sorted(s)
    add = make_task("addition", digits=4)
    for s, t in add.pairs(50, rng):
        a, b = _addends(s)
        assert int(add.decode_text(t)) == a + b


def _addends(ids):
    text = "".join("0123456789+"[i - 3] for i in ids)
    a, b = text.split("+")
    return int(a), int(b)


def test_dates_hold_out_whole_format_month_patterns():
    """The test split has only the held-out (format, month) combinations, training none of
    them; every format and every month occurs in both; every month word (full name and
    three-letter abbreviation) occurs in a training source; targets are the ISO dates."""
    import datetime

    from lstmlab.tasks.seq2seq import DATE_FORMATS, Dates
    seen = {"train": set(), "test": set()}
    for split in seen:
        task = Dates(split=split)
        for s, t in task.pairs(400, np.random.default_rng(2)):
            iso = "".join("-0123456789"[i - 3] for i in t)
            day = datetime.date.fromisoformat(iso)
            text = "".join(Dates.src_chars[i - 3] for i in s)
            fmt = [f(day) for f in DATE_FORMATS].index(text)
            assert Dates.held_out(fmt, day.month) == (split == "test")
            seen[split].add((fmt, day.month))
    for split, combos in seen.items():
        assert {f for f, _ in combos} == set(range(9)) and {m for _, m in combos} == set(range(1, 13))
    assert not seen["train"] & seen["test"] and len(seen["test"]) == 27
    from lstmlab.tasks.seq2seq import _MONTHS
    words = {w for fmt, m in seen["train"] for w in
             DATE_FORMATS[fmt](datetime.date(2001, m, 3)).replace(",", " ").split()}
    assert {n for n in _MONTHS} | {n[:3] for n in _MONTHS} <= words


@pytest.mark.parametrize("name,kw,msg", [("reverse", {"min_length": 0}, "min_length"),
                                         ("sort", {"min_length": 6, "max_length": 5}, "max_length"),
                                         ("addition", {"digits": 0}, "digits"),
                                         ("dates", {"split": "valid"}, "split")])
def test_task_arguments_are_checked(name, kw, msg):
    from lstmlab.tasks import make_task
    with pytest.raises(ValueError, match=msg):
        make_task(name, **kw)


# -- the training loop and the command line ---------------------------------------------------

def test_the_loop_trains_reverse_with_attention_and_resumes_exactly(tmp_path):
    """A short run of the recipe on short sequences learns (exact match well above the 0.0 it
    starts from), and a run killed halfway and resumed ends with the same weights."""
    from lstmlab.experiments.seq2seq import seq2seq_config
    from lstmlab.train.loop import train
    cfg = seq2seq_config("reverse", "general", iters=120, hidden=24, embed=8, eval_every=60,
                         eval_size=64, checkpoint_every=60, task_args={"min_length": 3,
                                                                       "max_length": 5})
    full = train(cfg, tmp_path / "a", quiet=True)
    assert full["exact_match"] > 0.3
    train(cfg, tmp_path / "b", quiet=True, stop_after=70)
    resumed = train(cfg, tmp_path / "b", resume=True, quiet=True)
    for k in full["params"]:
        np.testing.assert_array_equal(full["params"][k], resumed["params"][k], err_msg=k)


def test_cli_train_and_translate(tmp_path, capsys):
    from lstmlab.cli import main
    out = str(tmp_path / "run")
    assert main(["train", "reverse", "--iters", "40", "--hidden", "16", "--embed", "8",
                 "--eval-size", "16", "--task-arg", "max_length=6", "--quiet", "--out", out]) == 0
    assert "exact_match" in capsys.readouterr().out
    assert main(["translate", out, "abcd", "--beam", "3", "--attention"]) == 0
    text = capsys.readouterr().out
    assert "attention (rows: output, columns: source)" in text
    assert all(c in "abcdefghij" for c in text.splitlines()[0])
    for argv, msg in ((["translate", out, "abZ"], "not in the source vocabulary"),
                      (["translate", out, ""], "empty source"),
                      (["translate", out, "ab", "--beam", "0"], "--beam"),
                      (["train", "copy", "--attention", "dot"], "only for the sequence-to-sequence"),
                      (["train", "reverse", "--teacher-forcing", "1.5"], "--teacher-forcing")):
        try:
            code = main(argv)
        except SystemExit as e:              # argparse's own checks
            code = e.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err


def test_cli_attention_luong_is_the_reports_name_for_general(tmp_path, capsys):
    import json

    from lstmlab.cli import main
    configs = {}
    for name in ("luong", "general", "dot"):
        out = tmp_path / name
        assert main(["train", "reverse", "--attention", name, "--iters", "1", "--hidden", "8",
                     "--embed", "4", "--eval-size", "4", "--quiet", "--out", str(out)]) == 0
        configs[name] = json.loads((out / "config.json").read_text())
    assert configs["luong"] == configs["general"]
    assert configs["dot"] != configs["general"]


def test_reproduce_quick_writes_records_report_and_figures(tmp_path):
    """The quick setting end to end with its runs capped at 60 iterations: one record per run
    and scored length with the fields the issue names, the report and both figures; a second
    call reuses the finished runs and gives the same records."""
    import json

    from lstmlab.experiments import seq2seq
    out = tmp_path / "s2s"
    records = seq2seq.reproduce(str(out), "quick", iters=60, jobs=1, quiet=True, log=lambda m: None)
    assert len(records) == 4                                     # 2 attentions x 2 lengths
    for r in records:
        assert {"task", "attention", "length", "seed", "exact_match", "token_accuracy"} <= set(r)
        assert r["attention"] in ("none", "luong") and 0 <= r["exact_match"] <= 1
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == records and "reverse (luong)" in saved["attention_examples"]
    report = (out / "report.md").read_text()
    assert "| reverse | luong | 8 |" in report and "Deviations" in report
    assert (out / "figures" / "accuracy.png").stat().st_size > 0
    assert (out / "figures" / "attention.png").stat().st_size > 0
    assert seq2seq.reproduce(str(out), "quick", iters=60, jobs=1, quiet=True,
                             log=lambda m: None) == records
    with pytest.raises(ValueError, match="setting"):
        seq2seq.cases("medium")
