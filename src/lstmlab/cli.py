"""The ``lstmlab`` command line: one subcommand per job.

Each subcommand parses its options here and calls into the package; nothing else lives here.
Bad options print a one-line error and exit with code 2 (argparse's convention).
"""
from __future__ import annotations

import argparse
import sys
import time


def _cmd_gradcheck(args) -> int:
    from .core.gradcheck import SUITE_LAYOUTS, gradcheck_suite
    from .core.spec import PRESETS

    known = [*PRESETS, "gru", "rnn"]
    variants = args.variant or known
    for v in variants:
        if v not in known:
            print(f"lstmlab gradcheck: error: --variant: unknown {v!r}; expected one of {', '.join(known)}",
                  file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    worst, failed = 0.0, 0
    print(f"gradient check ({args.backend} backend, float64, central differences, tolerance {args.tol:g})")
    print(f"| variant | layout | worst tensor | rel. error | ok |")
    print(f"|---|---|---|---:|---|")
    for v, layout, report in gradcheck_suite(variants, list(SUITE_LAYOUTS), backend=args.backend,
                                             seed=args.seed):
        name, err = max(report.items(), key=lambda kv: kv[1])
        ok = err < args.tol
        failed += not ok
        worst = max(worst, err)
        print(f"| {v} | {layout} | {name} | {err:.2e} | {'yes' if ok else 'NO'} |", flush=True)
    print(f"worst relative error {worst:.2e}; {failed} case(s) above tolerance; "
          f"{time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lstmlab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("gradcheck", help="check every cell's hand-derived gradients against finite differences",
                       description="Gradient-check every LSTM preset, GRU and RNN (one layer, two stacked "
                                   "layers, bidirectional; non-zero biases and initial states; variable "
                                   "lengths) in float64. Exits 1 when any relative error exceeds --tol.")
    g.add_argument("--variant", action="append", metavar="V",
                   help="check only this variant (repeatable); default: all")
    g.add_argument("--tol", type=float, default=1e-6, help="largest relative error accepted (default 1e-6)")
    g.add_argument("--backend", choices=["reference", "compiled", "auto"], default="reference",
                   help="which implementation to check (default: reference, the hand-derived NumPy code)")
    g.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    g.set_defaults(func=_cmd_gradcheck)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"lstmlab {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
