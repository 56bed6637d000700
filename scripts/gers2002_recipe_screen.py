"""Screen changes to the msd-pair recipe over many seeds (the runs behind docs/gers2002_recipe.md).

Each named change is applied on top of ``lstmlab.experiments.gers2002.recipe_config`` (the
current recipe) and trained for 3000 iterations per seed (unless the change sets ``iters``) on
two processes; names joined by ``+`` combine (``peephole_zero+T300``). Prints one line per run
and a summary (mean and minimum solve rate) per change and variant.

    python scripts/gers2002_recipe_screen.py CHANGES VARIANTS FIRST_SEED END_SEED
    python scripts/gers2002_recipe_screen.py as_is,beta2_0.999 peephole 0 10
    python scripts/gers2002_recipe_screen.py peephole_zero,peephole_zero+T300 peephole 0 10
"""
import sys
from multiprocessing import Pool

import numpy as np

from lstmlab.experiments.gers2002 import recipe_config
from lstmlab.train.loop import train

CHANGES = {
    "as_is": {},
    "beta2_0.999": {"betas": (0.9, 0.999)},
    "init_0.1": {"init_range": 0.1},
    "beta2_0.999_init_0.1": {"betas": (0.9, 0.999), "init_range": 0.1},
    "noclip": {"clip": 0.0},
    "lr_2e-2": {"lr": 2e-2},
    "peephole_zero": {"peephole_init": "zero"},     # peephole vectors start at 0, not N(0, 0.1^2)
    "T300": {"T": 300},                             # the D range scaled with T, as --sweep-T does
    "T600": {"T": 600},
    "T1000": {"T": 1000},
    "iters9000": {"iters": 9000},
    "iters12000": {"iters": 12000},
}


def _change(name: str) -> dict:
    over = {}
    for part in name.split("+"):
        over.update(CHANGES[part])
    return over


def run(job):
    change, variant, seed = job
    over = _change(change)
    summary = train(recipe_config(variant, seed, over.pop("iters", 3000), **over), None, quiet=True)
    return change, variant, seed, summary["solve_rate"], summary["wall_s"]


def main(argv):
    if len(argv) != 4:
        sys.exit(__doc__)
    changes, variants = argv[0].split(","), argv[1].split(",")
    jobs = [(c, v, s) for c in changes for s in range(int(argv[2]), int(argv[3])) for v in variants]
    results = {}
    with Pool(2) as pool:
        for change, variant, seed, solve, wall_s in pool.imap_unordered(run, jobs):
            results.setdefault((change, variant), {})[seed] = solve
            print(change, variant, seed, f"{solve:.3f}", f"{wall_s:.0f} s", flush=True)
    for (change, variant), by_seed in sorted(results.items()):
        a = np.array([by_seed[s] for s in sorted(by_seed)])
        print(f"{change} {variant}: mean {a.mean():.3f} min {a.min():.3f} over {len(a)} seeds :: "
              + " ".join(f"{x:.2f}" for x in a))


if __name__ == "__main__":
    main(sys.argv[1:])
