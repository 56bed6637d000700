"""What a char-LM run writes at one temperature, over many seeds (README.md's samples).

For each prime, ``--seeds`` samples of ``--length`` characters (``generate``, as ``lstmlab
sample`` draws them), and per prime: the median and lowest share of the samples' words found in
the training text (``word_stats``), and how many samples fall into a run of at least ``--run``
spaces (a weak model at a low temperature keeps adding spaces once it is inside a long run).

    python scripts/charlm_samples.py runs/charlm-side-by-side/lstmlab-run
    python scripts/charlm_samples.py RUN --temperature 1.0 --prime "class "
    python scripts/charlm_samples.py RUN --space-runs      # why: the corpus's and the model's
                                                            # chance of one more space in a run

``--space-runs`` prints, for runs of n spaces (n = 4, 8, ..., 48), the share of the training
text's runs of at least n spaces that go on past n, beside the model's probability of a space
after a newline and n spaces (its state read from the prime ``"\n"``), and that probability at
``--temperature``: sharpened as the sampler does, p^(1/T) over the sum of all characters' p^(1/T).
"""
import argparse
import re

import numpy as np

from lstmlab.experiments.charlm import _step_logits, generate, word_stats
from lstmlab.train.loop import load_run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--prime", action="append", help="repeatable (default: 'def ', 'class ', newline)")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--length", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    ap.add_argument("--run", type=int, default=40, help="spaces that count as a run (default 40)")
    ap.add_argument("--space-runs", action="store_true",
                    help="print the corpus's and the model's chance of one more space in a run")
    a = ap.parse_args()
    if not a.temperature > 0:
        ap.error(f"--temperature: expected a positive number, got {a.temperature}")
    run = load_run(a.run_dir)
    if a.space_runs:
        space_runs(run, a.temperature)
        return
    spaces = re.compile(" {%d,}" % a.run)
    for prime in a.prime or ["def ", "class ", "\n"]:
        shares, stuck = [], 0
        for seed in range(a.seeds):
            text = generate(run, prime=prime, length=a.length, temperature=a.temperature, seed=seed)
            shares.append(word_stats(run, text, prime)["share"])
            stuck += spaces.search(text) is not None
        print(f"prime {prime!r}: words in the training text, median {np.nanmedian(shares):.0%}, "
              f"lowest {np.nanmin(shares):.0%}; samples with a run of >= {a.run} spaces: "
              f"{stuck} of {a.seeds}")


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


if __name__ == "__main__":
    main()
