"""What a char-LM run writes at one temperature, over many seeds (README.md's samples).

For each prime, ``--seeds`` samples of ``--length`` characters (``generate``, as ``lstmlab
sample`` draws them), and per prime: the median and lowest share of the samples' words found in
the training text (``word_stats``), and how many samples fall into a run of at least ``--run``
spaces (a weak model at a low temperature keeps adding spaces once it is inside a long run).

    python scripts/charlm_samples.py runs/charlm-side-by-side/lstmlab-run
    python scripts/charlm_samples.py RUN --temperature 1.0 --prime "class "
"""
import argparse
import re

import numpy as np

from lstmlab.experiments.charlm import generate, word_stats
from lstmlab.train.loop import load_run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--prime", action="append", help="repeatable (default: 'def ', 'class ', newline)")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--length", type=int, default=600)
    ap.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default 10)")
    ap.add_argument("--run", type=int, default=40, help="spaces that count as a run (default 40)")
    a = ap.parse_args()
    run = load_run(a.run_dir)
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


if __name__ == "__main__":
    main()
