"""Screen changes to the paper-task regime over many seeds (the runs behind the screen tables
of docs/gers2002_recipe.md, "The paper's own tasks").

Each change is a JSON object of TrainConfig fields set on top of
``lstmlab.experiments.gers2002_paper.paper_task_config`` (the regime in force); each seed is
trained on one of two processes. Prints one line per run and the solved count per change.
The regime before 2026-12-06 is the change
``{"gate_bias": {"i": 0, "f": 2, "o": 2}, "schedule": "constant"}``.

    python scripts/gers2002_paper_screen.py CONFIG VARIANT FIRST_SEED END_SEED [CHANGE ...]
    python scripts/gers2002_paper_screen.py pfg-cos-10 peephole 0 10 '{}' '{"lr": 1e-2}'
"""
import json
import sys
import time
from multiprocessing import Pool

from lstmlab.experiments.gers2002_paper import paper_task_config
from lstmlab.train.loop import train


def run(job):
    name, variant, seed, change = job
    over = json.loads(change)
    if "betas" in over:
        over["betas"] = tuple(over["betas"])
    t0 = time.perf_counter()
    try:
        s = train(paper_task_config(name, variant, seed, **over), None, quiet=True)
    except Exception as e:                    # a diverged run counts as failed, the rest go on
        return change, seed, False, f"({type(e).__name__})", 0.0, time.perf_counter() - t0
    return change, seed, s["solve_rate"] >= 1.0, s.get("iters_run"), \
        s.get("consecutive_mean") or 0.0, time.perf_counter() - t0


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    name, variant, first, end = argv[0], argv[1], int(argv[2]), int(argv[3])
    changes = argv[4:] or ["{}"]
    for c in changes:
        bad = {"seed", "variant", "task"} & set(json.loads(c))
        if bad:
            sys.exit(f"CHANGE: {', '.join(sorted(bad))} come(s) from the command line, not from the change")
    jobs = [(name, variant, s, c) for c in changes for s in range(first, end)]
    results = {}
    with Pool(2) as pool:
        for change, seed, solved, iters, consec, wall in pool.imap_unordered(run, jobs):
            results.setdefault(change, {})[seed] = solved
            print(f"{change} seed {seed}: {'SOLVED' if solved else 'failed'} after {iters} "
                  f"updates, {consec:.0f} correct events, {wall:.0f} s", flush=True)
    for change, by_seed in results.items():
        won = [s for s in sorted(by_seed) if by_seed[s]]
        print(f"{name} {variant} {change}: {len(won)}/{len(by_seed)} solved (seeds {won})")


if __name__ == "__main__":
    main(sys.argv[1:])
