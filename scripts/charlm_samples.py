"""What a char-LM run writes at one temperature, over many seeds (README.md's samples).

For each prime, ``--seeds`` samples of ``--length`` characters (``generate``, as ``lstmlab
sample`` draws them), and per prime: the median and lowest share of the samples' words found in
the training text (``word_stats``), how many samples fall into a run of at least ``--run``
spaces (a weak model at a low temperature keeps adding spaces once it is inside a long run) and
how many of those end in that run, never leaving it.

    python scripts/charlm_samples.py runs/charlm-side-by-side/lstmlab-run
    python scripts/charlm_samples.py RUN --temperature 1.0 --prime "class "
    python scripts/charlm_samples.py RUN --space-runs      # why: the corpus's and the model's
                                                            # chance of one more space in a run

``--space-runs`` prints, for runs of n spaces (n = 4, 8, ..., 48), the share of the training
text's runs of at least n spaces that go on past n, beside the model's probability of a space
after a newline and n spaces (its state read from the prime ``"\n"``), and that probability at
``--temperature``: sharpened as the sampler does, p^(1/T) over the sum of all characters' p^(1/T).

``--indents`` reads the first 40,000 characters of the validation split through the model (from
a zero state, the true text as input) and prints, at the line starts after n spaces (n = 4, 8,
12, 16), the model's mean P(space) where the text has one more space and where the indentation
ends there: how well the model knows, in context, how deep the line is indented.
"""
import argparse
import re

import numpy as np

from lstmlab.experiments.charlm import _step_logits, generate, text_features, word_stats
from lstmlab.train.loop import load_run

#: Three primes that start code (an indented method, a class body, a module's first def) and
#: three that do not say whether prose or code follows.
PRIMES = ["    def ", "class Stack:\n    def ", "import os\n\n\ndef ", "def ", "class ", "\n"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--prime", action="append",
                    help="repeatable (default: the six of README.md, PRIMES)")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--length", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    ap.add_argument("--run", type=int, default=40, help="spaces that count as a run (default 40)")
    ap.add_argument("--space-runs", action="store_true",
                    help="print the corpus's and the model's chance of one more space in a run")
    ap.add_argument("--indents", action="store_true",
                    help="print the model's chance of one more space at line starts of held-out "
                         "text, where the indentation goes on and where it ends")
    a = ap.parse_args()
    if not a.temperature > 0:
        ap.error(f"--temperature: expected a positive number, got {a.temperature}")
    run = load_run(a.run_dir)
    if a.space_runs:
        space_runs(run, a.temperature)
        return
    if a.indents:
        indents(run, a.temperature)
        return
    spaces = re.compile(" {%d,}" % a.run)
    ending = re.compile(" {%d,}$" % a.run)
    for prime in a.prime or PRIMES:
        shares, stuck, ends = [], 0, 0
        for seed in range(a.seeds):
            text = generate(run, prime=prime, length=a.length, temperature=a.temperature, seed=seed)
            shares.append(word_stats(run, text, prime)["share"])
            stuck += spaces.search(text) is not None
            ends += ending.search(text) is not None
        print(f"prime {prime!r}: words in the training text, median {np.nanmedian(shares):.0%}, "
              f"lowest {np.nanmin(shares):.0%}; samples with a run of >= {a.run} spaces: "
              f"{stuck} of {a.seeds}, {ends} of them ending in it")


def space_runs(run, temperature):
    corpus = run["task"].corpus
    train = corpus.decode(corpus.split("train"))
    lengths = np.array([len(m.group()) for m in re.finditer(" +", train)])   # (runs,)
    sp = corpus.vocab.index(" ")
    logits, state = _step_logits(run["model"], corpus.encode("\n", "prime"), None)
    model = []                                                # P(space | newline + n spaces)
    for n in range(49):
        z = logits - logits.max()
        p, q = np.exp(z), np.exp(z / temperature)
        model.append((p[sp] / p.sum(), q[sp] / q.sum()))
        logits, state = _step_logits(run["model"], [sp], state)
    print(f"| n spaces | training runs >= n | corpus: share going on | model P(space) | "
          f"at T = {temperature} |")
    print("|---:|---:|---:|---:|---:|")
    for n in range(4, 49, 4):
        at_least = int((lengths >= n).sum())
        share = (lengths > n).sum() / at_least if at_least else float("nan")
        print(f"| {n} | {at_least} | {share:.2f} | {model[n][0]:.2f} | {model[n][1]:.3f} |")


def indents(run, temperature, n_chars=40000):
    corpus = run["task"].corpus
    ids = corpus.split("valid")[:n_chars]                                 # (N,)
    text = corpus.decode(ids)
    pred, _, _ = run["model"].forward(np.asarray(ids, dtype=np.int64)[:, None], None)   # (N, 1, V)
    z = pred[:, 0].astype(np.float64)
    sp = corpus.vocab.index(" ")
    p_space = {}
    for T in (1.0, temperature):
        q = np.exp((z - z.max(axis=1, keepdims=True)) / T)
        p_space[T] = q[:, sp] / q.sum(axis=1)                             # (N,) P(next is a space)
    f = text_features(text)
    chars = np.array(list(text))                                          # (N,)
    indent = f["indent"][:-1]               # (N-1,) leading spaces of the line up to position t
    leading = (chars[:-1] == " ") & (indent == f["line_position"][:-1])   # t in that leading run
    goes_on = chars[1:] == " "
    at = {(n, on): np.flatnonzero(leading & (indent == n) & (goes_on == on))
          for n in (4, 8, 12, 16) for on in (True, False)}   # positions t after n spaces
    print(f"| n spaces | goes on: lines | P(space) | at T = {temperature} | ends: lines | P(space) | "
          f"at T = {temperature} |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (4, 8, 12, 16):
        cells = []
        for on in (True, False):
            t = at[n, on]
            cells += [str(len(t)), f"{p_space[1.0][t].mean():.2f}" if len(t) else "-",
                      f"{p_space[temperature][t].mean():.2f}" if len(t) else "-"]
        print(f"| {n} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
