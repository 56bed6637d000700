"""The ``lstmlab`` command line: one subcommand per job.

Each subcommand parses its options here and calls into the package; nothing else lives here.
Bad options print a one-line error and exit with code 2 (argparse's convention).
"""
from __future__ import annotations

import argparse
import os
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
    print("| variant | layout | worst tensor | rel. error | ok |")
    print("|---|---|---|---:|---|")
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


def _seed_list(text: str) -> list[int]:
    """'0-9' -> [0..9]; '1,3,5' and '0-2,7' work too."""
    out = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0-9 or 0,3,5, got {text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative seeds like 0-9, got {text!r}")
    return out


def _output_options(parser, out: str) -> None:
    """The options every experiment shares: --jobs, --no-figures, --out, --quiet."""
    parser.add_argument("--jobs", type=_positive_int, metavar="N", help="parallel processes (default: all cores)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    parser.add_argument("--out", default=out, metavar="DIR", help=f"output folder (default ./{out})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or messages")


def _name_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of names, got {text!r}")
    return names


def _int_list(text: str) -> list[int]:
    try:
        v = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 150,300, got {text!r}") from None
    if not v or min(v) < 3:
        raise argparse.ArgumentTypeError(f"expected integers >= 3 like 150,300, got {text!r}")
    return v


def _budget_list(text: str) -> list[tuple[int, int]]:
    """``T:ITERS[,T:ITERS...]`` -> [(T, iters), ...], T >= 3 and iters >= 1."""
    try:
        v = [tuple(int(y) for y in x.split(":")) for x in text.split(",") if x.strip()]
    except ValueError:
        v = []
    if not v or any(len(b) != 2 or b[0] < 3 or b[1] < 1 for b in v):
        raise argparse.ArgumentTypeError(f"expected T:ITERS pairs like 1000:24000, got {text!r}")
    return v


def _int_at_least(minimum: int, what: str):
    """An argparse type: an integer >= minimum, else a one-line error saying ``what`` is expected."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _probability(text: str, closed: bool = False) -> float:
    """A number in [0, 1) (dropout), or in [0, 1] with ``closed`` (a teacher-forcing ratio)."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not (0 <= v <= 1 if closed else 0 <= v < 1):
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1{']' if closed else ')'}, got {text!r}")
    return v


def _probability_closed(text: str) -> float:
    return _probability(text, closed=True)


def _task_arg(text: str):
    import json as _json
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        value = _json.loads(v)
    except ValueError:
        value = v
    if isinstance(value, list):
        value = tuple(value)
    return k.strip(), value


def _train_config(args):
    from .experiments.gers2002 import PAPER_TASKS, paper_task_config, recipe_config
    from .train.config import TrainConfig

    given = {n: getattr(args, n) for n in ("variant", "seed") if getattr(args, n) is not None}
    from .tasks.seq2seq import SEQ2SEQ_TASKS
    text_opts = [o for o, n in (("--data", "data"), ("--seq-len", "seq_len"), ("--epochs", "epochs"))
                 if getattr(args, n) is not None]
    if text_opts and args.task != "charlm":
        raise ValueError(f"{text_opts[0]}: only for the charlm task, not {args.task}")
    s2s_opts = [o for o, n in (("--attention", "attention"), ("--bidirectional", "bidirectional"),
                               ("--bridge", "bridge"), ("--teacher-forcing", "teacher_forcing"))
                if getattr(args, n) is not None]
    if s2s_opts and args.task not in SEQ2SEQ_TASKS:
        raise ValueError(f"{s2s_opts[0]}: only for the sequence-to-sequence tasks "
                         f"({', '.join(SEQ2SEQ_TASKS)}), not {args.task}")
    args.variant = args.variant or ("lstm" if args.task in ("charlm", *SEQ2SEQ_TASKS) else "peephole")
    args.seed = 0 if args.seed is None else args.seed
    if args.config:
        cfg = TrainConfig.from_json(args.config)
        if cfg.task != args.task:
            raise ValueError(f"--config: the file is for task {cfg.task!r}, not {args.task!r}")
    elif args.task == "msd-pair":
        cfg = recipe_config(args.variant, args.seed, args.iters or 3000)
    elif args.task == "charlm":
        from .experiments.charlm import charlm_config
        shape = {n: getattr(args, n) for n in ("layers", "hidden", "batch", "seq_len", "epochs")
                 if getattr(args, n) is not None}                  # the recipe's defaults otherwise
        cfg = charlm_config(args.data, args.variant, seed=args.seed, **shape)
    elif args.task in PAPER_TASKS:
        cfg = paper_task_config(args.task, args.variant, args.seed, args.iters)
    elif args.task in SEQ2SEQ_TASKS:
        from .experiments.seq2seq import ATTENTION_NAMES, seq2seq_config
        by_report_name = {shown: a for a, shown in ATTENTION_NAMES.items()}   # luong -> general
        attention = by_report_name.get(args.attention, args.attention or "general")
        cfg = seq2seq_config(args.task, attention, args.seed,
                             variant=args.variant, bidirectional=args.bidirectional)
    else:
        cfg = TrainConfig(task=args.task, task_args={}, variant=args.variant, seed=args.seed)
    over = {}
    for name in ("hidden", "layers", "dropout", "embed", "tbptt", "optimizer", "momentum",
                 "batch", "lr", "schedule", "warmup", "clip", "forget_bias",
                 "eval_every", "eval_size", "checkpoint_every", "backend", "bridge",
                 "teacher_forcing", "peephole_grad"):
        v = getattr(args, name)
        if v is not None:
            over[name] = v
    if args.config:
        over.update(given)
        if args.iters:
            over["iters"] = args.iters
    elif args.iters and args.task == "charlm":
        over["iters"] = args.iters
        over.setdefault("eval_every", min(cfg.eval_every, args.iters))
    elif args.iters:
        over["iters"] = args.iters
        if cfg.schedule == "step":
            over["lr_step"] = max(args.iters // 2, 1)
        over.setdefault("eval_every", max(min(cfg.eval_every, args.iters // 10 or 1), 1))
        over.setdefault("checkpoint_every", max(min(cfg.checkpoint_every, args.iters // 5 or 1), 1))
    task_args = dict(cfg.task_args)
    if args.T is not None:
        if args.task == "msd-pair":
            task_args = {"T": args.T, "scale_intervals": True}
        elif args.task in ("msd", "gts"):
            task_args["length"] = args.T
        elif args.task in ("adding", "copy", "adding-1997", "multiplication"):
            task_args["T"] = args.T
        else:
            raise ValueError(f"--T: {args.task} has no length T (pfg: use --task-arg n_periods=N; "
                             "temporal-order: its sequences are 100-110 steps)")
    for k, v in args.task_arg or []:
        if k in ("D_min", "D_max"):
            task_args.pop("scale_intervals", None)
        task_args[k] = v
    over["task_args"] = task_args
    return cfg.replace(**over)


def _cmd_train(args) -> int:
    from .train.loop import TrainingDiverged, train

    cfg = _train_config(args)
    out = args.out or os.path.join("runs", f"{cfg.task}-{cfg.variant_name}-s{cfg.seed}")
    if args.resume and not os.path.exists(os.path.join(out, "checkpoint.safetensors")):
        raise ValueError(f"--resume: no checkpoint in {out}")
    if not args.quiet:
        print(f"training {cfg.task} ({cfg.variant_name}, seed {cfg.seed}, H={cfg.hidden}, "
              f"{cfg.iters} iterations) into {out}", file=sys.stderr)
    try:
        s = train(cfg, out, resume=args.resume, quiet=args.quiet,
                  snapshot_every=args.snapshot_every or 0)
    except TrainingDiverged as e:
        print(f"lstmlab train: {e}", file=sys.stderr)
        return 1
    keys = [s["headline"]] + [k for k in ("mse", "xent", "baseline", "solve_rate", "within1_rate",
                                          "timing_error", "consecutive_mean")
                              if k in s and k != s["headline"]]
    label = {"mse": "test_mse", "bpc": "valid_bpc", "xent": "test_xent"}
    if cfg.task == "charlm":
        from .experiments.charlm import split_metrics
        from .train.loop import load_run
        keys, test = ["bpc"], split_metrics(load_run(out), "test")
        s["test_bpc"] = test["bpc"]
        keys.append("test_bpc")
    print(f"{cfg.task} {cfg.variant_name} seed {cfg.seed}: " +
          ", ".join(f"{label.get(k, k)} {s[k]:.4g}" for k in keys) +
          f" ({s['iters']} iterations, {s['wall_s']:.1f} s) -> {out}")
    return 0


def _cmd_sample(args) -> int:
    from .experiments.charlm import generate, stream_write, word_stats
    from .train.loop import load_run

    run = load_run(args.run_dir)
    prime = args.prime.encode("utf-8").decode("unicode_escape") if args.escapes else args.prime
    text = generate(run, prime=prime, length=args.length, temperature=args.temperature,
                    top_k=args.top_k, seed=args.seed, write=stream_write,
                    echo_prime=not args.quiet_prime)
    sys.stdout.write("\n")
    if args.word_stats:
        sys.stdout.flush()
        w = word_stats(run, text, prime)
        share = f"{100 * w['share']:.0f}%" if w["words"] else "-"
        others = ", ".join(w["invented"][:20]) + (", ..." if len(w["invented"]) > 20 else "")
        print(f"words: {w['words']}, in the training text: {w['known']} ({share})"
              + (f"; the {len(w['invented'])} distinct others: {others}" if others else ""),
              file=sys.stderr)
    return 0


def _cmd_translate(args) -> int:
    from .experiments.seq2seq import translate
    from .train.loop import load_run

    r = translate(load_run(args.run_dir), args.text, beam=args.beam, max_len=args.max_len)
    print(r["output"])
    if args.attention:
        if r["attention"] is None:
            raise ValueError("--attention: this model has no attention (trained with --attention none)")
        out = list(r["output"]) + (["<eos>"] if r["finished"] else [])
        print("attention (rows: output, columns: source):")
        print("      " + " ".join(f"{c!s:>4}" for c in r["source"]))
        for c, row in zip(out, r["attention"]):
            print(f"{c:>5} " + " ".join(f"{w:4.2f}" for w in row))
    if not r["finished"]:
        print(f"lstmlab translate: no end-of-sequence within {len(r['tokens'])} tokens",
              file=sys.stderr)
    return 0


def _cmd_reproduce(args) -> int:
    from .experiments import gers2002

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    records = gers2002.reproduce(
        args.out, seeds=args.seeds, iters=args.iters, jobs=args.jobs, recipe=args.recipe,
        sweep_T=args.sweep_T, T_values=args.T_values, sweep_seeds=args.sweep_seeds,
        sweep_iters=args.sweep_iters, sweep_budgets=args.sweep_budget,
        paper_tasks=args.paper_tasks, paper_seeds=args.paper_seeds,
        paper_iters=args.paper_iters, paper_configs=args.paper_configs,
        paper_variants=args.paper_variants, paper_grad=args.paper_grad,
        figures=not args.no_figures, quiet=args.quiet, log=log)
    main = [r for r in records if r["experiment"] == "main"]
    for v in gers2002.VARIANTS:
        sr = [r["solve_rate"] for r in main if r["variant"] == v]
        ms = [r["test_mse"] for r in main if r["variant"] == v]
        if sr:
            import numpy as np
            print(f"{v:9s} solve rate {np.mean(sr):.3f} ± {np.std(sr, ddof=1) if len(sr) > 1 else 0:.3f} "
                  f"(min {min(sr):.3f}), test MSE {np.mean(ms):.2e} over {len(sr)} seeds")
    paper = [r for r in records if r["experiment"] == "paper-tasks"]
    for name in dict.fromkeys(r["config"] for r in paper):
        counts = ", ".join(f"{v} {sum(r['solved'] for r in rs)}/{len(rs)}" for v in args.paper_variants
                           if (rs := [r for r in paper if r["config"] == name and r["variant"] == v]))
        print(f"{name:12s} solved (1000 correct in test): {counts}")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_reproduce_longrange(args) -> int:
    from .experiments import longrange

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    records = longrange.reproduce(args.out, setting="quick" if args.quick else "full",
                                  tasks=args.tasks, seeds=args.seeds, iters=args.iters,
                                  jobs=args.jobs, figures=not args.no_figures, quiet=args.quiet,
                                  log=log)
    for r in longrange.summary_rows(records):
        if "mean" in r:
            print(f"{r['case']:22s} {r['variant']:9s} solved {r['solved']}/{r['done']}, beats "
                  f"baseline {r['beats']}/{r['done']}, {r['metric']} {r['mean']:.3g} ± {r['std']:.2g}")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_reproduce_seq2seq(args) -> int:
    from .experiments import seq2seq

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    records = seq2seq.reproduce(args.out, setting="quick" if args.quick else "full",
                                seeds=args.seeds, iters=args.iters, jobs=args.jobs,
                                figures=not args.no_figures, quiet=args.quiet, log=log)
    for r in seq2seq.summary_rows(records):
        if "exact_mean" in r:
            L = "held out" if r["length"] is None else f"length {r['length']}"
            print(f"{r['case']:28s} {r['attention']:9s} {L:11s} exact match "
                  f"{r['exact_mean']:.3f} ± {r['exact_std']:.3f} ({r['seeds']} seeds)")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_reproduce_ablation(args) -> int:
    from .experiments import ablation

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    records = ablation.reproduce(args.out, setting="quick" if args.quick else "full",
                                 seeds=args.seeds, iters=args.iters, jobs=args.jobs,
                                 figures=not args.no_figures, quiet=args.quiet, log=log)
    for r in ablation.compare(records):
        if r["seeds"]:
            p = "" if r.get("p") is None else f", p = {r['p']:.3g} against {ablation.FULL}"
            print(f"{r['task']:12s} {r['rank']}. {r['variant']:9s} MSE {r['mse_mean']:.3g} ± "
                  f"{r['mse_std']:.2g} ({r['seeds']} seeds{p})")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_reproduce_greff(args) -> int:
    from .experiments import greff2017

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    if args.report_only:
        given = [f for f, v in (("--task", args.task), ("--quick", args.quick), ("--trials", args.trials),
                                ("--variants", args.variants), ("--ray", args.ray),
                                ("--jobs", args.jobs)) if v]
        if given:
            raise ValueError(f"--report-only: trains nothing and takes the task from results.json; "
                             f"drop {', '.join(given)}")
        if args.out is None:
            raise ValueError("--report-only: give the study's folder with --out")
        records, task = greff2017.rewrite_report(args.out, figures=not args.no_figures, log=log)
    else:
        task = args.task or "jsb"
        args.out = args.out or ("greff2017" if task == "jsb" else f"greff2017-{task}")
        records = greff2017.reproduce(args.out, setting="quick" if args.quick else "full",
                                      trials=args.trials, variants=args.variants, jobs=args.jobs,
                                      ray=args.ray, figures=not args.no_figures, quiet=args.quiet,
                                      log=log, task=task)
    spec = greff2017.TASKS[task]
    per = greff2017.analyse(records, task)["variants"]
    scored = [v for v in per if per[v]["done"]]
    for v in sorted(scored, key=lambda v: per[v]["best_test"]) + [v for v in per if v not in scored]:
        d = per[v]
        p = "" if "p_all" not in d or d["p_all"] != d["p_all"] else f", Welch p = {d['p_all']:.3g} against V"
        best = "no scored trial" if not d["done"] else \
            (f"best test {spec['metric'].upper()} {d['best_test']:{spec['fmt']}}, "
             f"median {d['median_test']:{spec['fmt']}}")
        div = f", {d['diverged']} diverged" if d["diverged"] else ""
        print(f"{v:5s} {best} ({d['done']} of {d['trials']} trials{div}{p})")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_reproduce_gradflow(args) -> int:
    from .experiments import gradflow

    log = (lambda *a, **k: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    seeds, tseeds, iters = args.seeds, args.trained_seeds, args.iters
    if args.quick:
        seeds, tseeds, iters = [0, 1], [0], 100
    records = gradflow.reproduce(args.out, seeds=seeds, trained_seeds=tseeds, iters=iters,
                                 jobs=args.jobs, figures=not args.no_figures, quiet=args.quiet,
                                 log=log)
    for r in gradflow.summary_table(records):
        m, s = r["orders_lost_h"]
        print(f"{r['model']:13s} {r['state']:9s} orders lost over {gradflow.STEPS} steps: "
              f"{m:5.1f} ± {s:.1f} ({r['seeds']} seeds)")
    print(f"report: {args.out}/report.md")
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import run_sweep

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    rows = run_sweep(args.spec, db=args.db, out=args.out, jobs=args.jobs, ray=args.ray,
                     quiet=args.quiet, log=log)
    counts = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"sweep: {len(rows)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0 if counts.get("done", 0) == len(rows) else 1


def _cmd_results(args) -> int:
    from .sweep.results import format_table, summarize, to_csv

    if args.csv:
        sys.stdout.write(to_csv(args.db, args.where))
        return 0
    s = summarize(args.db, args.where, args.group_by, args.metric, args.baseline)
    print(format_table(s))
    return 0


def _cmd_plot(args) -> int:
    from .viz.run import plot_run

    log = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    if args.cells or args.cell:
        from .experiments.charlm import cells_page
        from .train.loop import load_run
        chosen = [c.strip() for part in args.cell or [] for c in part.split(",") if c.strip()]
        run = load_run(args.run_dir)
        res = cells_page(run, args.out or os.path.join(args.run_dir, "figures"), chosen or None,
                         n_chars=args.chars)
        for r in res["search"]:
            print(f"{r['feature']:14s} cell {r['cell']:8s} r = {r['r']:+.3f}")
        print(f"wrote {res['html']} and {res['json']}")
        return 0
    what = None
    if args.what:
        what = [w.strip() for part in args.what for w in part.split(",") if w.strip()]
    paths = plot_run(args.run_dir, what=what, sample=args.sample, out=args.out, gif=args.gif, log=log)
    print(f"{len(paths)} figure(s) in {os.path.dirname(paths[0]) if paths else args.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage is left to --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _cmd_bench(args) -> int:
    """Load benchmarks/bench_train_step.py from the source checkout and run its command line."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_train_step.py"
    if not path.is_file():
        print(f"lstmlab bench: error: {path} not found (benchmarks live in the source checkout; "
              "install with pip install -e)", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("lstmlab_bench_train_step", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod.main(args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="lstmlab", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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

    b = sub.add_parser("bench", add_help=False,   # main() hands its arguments over unparsed
                       help="time a training iteration: reference, compiled and torch.nn.LSTM (W1-W3); "
                            "'lstmlab bench --help' for its options")
    b.add_argument("bench_args", nargs=argparse.REMAINDER)
    b.set_defaults(func=_cmd_bench)

    from .core.spec import PRESETS
    from .tasks import TASKS

    t = sub.add_parser(
        "train", help="train one model on a task (timing: msd-pair, msd, gts, pfg; long lags: adding, "
                       "adding-1997, multiplication, temporal-order, copy; text: charlm)",
        description="Train one recurrent model on a task and write a run folder (config.json, "
                    "metrics.jsonl, checkpoint and weights in safetensors, summary.json). The task "
                    "decides the loss (MSE for the timing tasks and adding, softmax cross-entropy for "
                    "copy) and the headline metric. Defaults: lstmlab's msd-pair recipe (T=150, D in "
                    "[30, 60], H=8, batch 32, 3000 iterations); for msd, gts, pfg the paper's one-cell "
                    "network with identity squashing; for charlm (a character-level language model on "
                    "--data, default Python's language reference and 26 stdlib modules' source) "
                    "a 2 x 256 LSTM on one-hot characters, 32 streams, chunks of --seq-len 100 "
                    "with the state carried, Adam 3e-3 cosine, clip 5, --dropout 0.5 between the layers, float32, --epochs 20 "
                    "(about 50 min on one core), bits per character on the "
                    "validation split each epoch and on the test split at the end. Exit code 1 "
                    "when training diverges (the last good checkpoint is kept).")
    t.add_argument("task", choices=list(TASKS), help="the task")
    t.add_argument("--variant", choices=[*PRESETS, "gru", "rnn"],
                   help="cell preset (default peephole; lstm = no peepholes)")
    t.add_argument("--seed", type=_nonneg_int,
                   help="seed of the initial weights, training batches and test set (default 0)")
    t.add_argument("--hidden", type=_positive_int, metavar="H", help="number of cells (msd-pair default 8)")
    t.add_argument("--layers", type=_positive_int, metavar="L", help="stacked recurrent layers (default 1)")
    t.add_argument("--dropout", type=_probability, metavar="P", help="dropout between stacked layers (default 0; charlm 0.5)")
    t.add_argument("--embed", type=_nonneg_int, metavar="E",
                   help="token tasks: embedding size (default 0: one-hot input)")
    t.add_argument("--tbptt", type=_nonneg_int, metavar="N",
                   help="truncated BPTT: one update per chunk of N steps, state carried (default 0: full BPTT)")
    t.add_argument("--optimizer", choices=["adam", "sgd"], help="Adam (default) or SGD with --momentum")
    t.add_argument("--momentum", type=_probability, metavar="M", help="SGD momentum (default 0.9)")
    t.add_argument("--iters", type=_positive_int, metavar="N", help="training iterations (msd-pair default 3000)")
    t.add_argument("--batch", type=_positive_int, metavar="B", help="sequences per iteration (default 32)")
    t.add_argument("--lr", type=_positive_float, metavar="X", help="peak learning rate of Adam")
    t.add_argument("--schedule", choices=["constant", "step", "cosine"], help="learning-rate schedule")
    t.add_argument("--warmup", type=_nonneg_int, metavar="N", help="linear warm-up iterations")
    t.add_argument("--clip", type=float, metavar="X", help="global gradient-norm clip (0: none)")
    t.add_argument("--forget-bias", type=float, metavar="X", help="initial forget-gate bias")
    t.add_argument("--T", type=_positive_int, metavar="N",
                   help="sequence length; for msd-pair the D range scales with T (D in [30, 60] * T/150); for adding, adding-1997, multiplication, copy their T")
    t.add_argument("--task-arg", action="append", type=_task_arg, metavar="KEY=VALUE",
                   help="a task argument, e.g. D_min=20 or delays=[0,1] (repeatable)")
    t.add_argument("--data", metavar="FILE",
                   help="charlm: a UTF-8 text file (default: what CPython ships, prose and code: "
                        "the language reference, pydoc_data/topics.py, and 26 standard-library "
                        "modules' source, 937,481 characters with Python 3.11.7)")
    t.add_argument("--seq-len", type=_positive_int, metavar="N",
                   help="charlm: steps per truncated-BPTT chunk, the state carried between chunks (default 100)")
    t.add_argument("--epochs", type=_positive_int, metavar="N",
                   help="charlm: passes over the training text (default 20; --iters overrides)")
    t.add_argument("--attention", choices=["none", "dot", "general", "luong", "bahdanau"],
                   help="reverse, sort, addition, dates: the decoder's attention (default general, "
                        "Luong's multiplicative score, which the seq2seq report calls luong; "
                        "none: the encoder's final state is all the decoder gets)")
    t.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None,
                   help="reverse, sort, addition, dates: a bidirectional encoder (default: on with "
                        "general and bahdanau attention)")
    t.add_argument("--bridge", choices=["dense", "copy", "zero"],
                   help="seq2seq: how the decoder's initial state comes from the encoder's final "
                        "one (default dense: tanh of a learned map)")
    t.add_argument("--teacher-forcing", type=_probability_closed, metavar="P",
                   help="seq2seq: probability that a decoder input is the gold previous token, "
                        "else the model's own choice (default 1)")
    t.add_argument("--peephole-grad", choices=["full", "cut"],
                   help="full BPTT (default), or cut: no error flows back through the peepholes "
                        "(Gers et al. 2002's truncated gradient)")
    t.add_argument("--eval-every", type=_positive_int, metavar="N", help="evaluate every N iterations")
    t.add_argument("--eval-size", type=_positive_int, metavar="N", help="held-out test sequences (default 512)")
    t.add_argument("--checkpoint-every", type=_nonneg_int, metavar="N", help="checkpoint every N iterations")
    t.add_argument("--backend", choices=["auto", "reference", "compiled"],
                   help="auto (compiled kernels when numba is there), reference (NumPy) or compiled")
    t.add_argument("--snapshot-every", type=_positive_int, metavar="N",
                   help="keep the weights at iteration 0 and every N iterations in OUT/snapshots "
                        "(the frames of lstmlab plot OUT --gif)")
    t.add_argument("--config", metavar="FILE", help="start from a config.json (options given here override it)")
    t.add_argument("--out", metavar="DIR", help="run folder (default runs/TASK-VARIANT-sSEED)")
    t.add_argument("--resume", action="store_true",
                   help="continue the killed run in --out from its checkpoint (bit-identical result)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or messages, only the result line")
    t.set_defaults(func=_cmd_train)

    w = sub.add_parser(
        "sweep", help="run every config of a TOML sweep spec (grid, random search), results in SQLite",
        description="Expand SPEC.toml ([base] config fields, a [grid] of lists crossed with each other, "
                    "an optional [random] search of n draws from choice / uniform / log_uniform / "
                    "int_uniform) into runs whose ids hash their configs, and train them on a local "
                    "process pool (default) or a Ray cluster. Every run's config, status, final metrics "
                    "and timing go to an SQLite database; rerunning the spec skips finished runs and "
                    "resumes killed ones from their checkpoints. Exit code 1 if a run failed or diverged.")
    w.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    w.add_argument("--db", metavar="FILE", help="results database (default OUT/results.sqlite)")
    w.add_argument("--out", metavar="DIR", help="folder of the run folders OUT/<id> (default runs/<spec name>)")
    w.add_argument("--jobs", type=_positive_int, metavar="N", help="parallel processes (default: all cores)")
    w.add_argument("--ray", metavar="ADDRESS",
                   help="run on Ray: 'local' starts an instance here, 'auto' joins this machine's cluster, "
                        "or HOST:PORT (needs pip install 'lstmlab[ray]')")
    w.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    w.set_defaults(func=_cmd_sweep)

    q = sub.add_parser(
        "results", help="summarise a sweep's results database: mean ± std per group, Welch t-tests",
        description="Group the finished runs of a results database by a config field and print, per "
                    "group, the mean ± std, min, max and count of a metric, with Welch's t-test of each "
                    "group against a baseline group, as a Markdown table; --csv prints every run instead.")
    q.add_argument("db", metavar="DB", help="the SQLite file written by lstmlab sweep")
    q.add_argument("--where", action="append", metavar="KEY=VALUE",
                   help="keep runs whose config field (dotted: task_args.T), status or metrics.X equals "
                        "VALUE (repeatable)")
    q.add_argument("--group-by", default="variant", metavar="FIELD", help="config field to group by (default variant)")
    q.add_argument("--metric", metavar="M", help="metric to compare (default: the task's headline)")
    q.add_argument("--baseline", metavar="GROUP", help="group the t-tests compare against (default: the first)")
    q.add_argument("--csv", action="store_true", help="print every matching run as CSV instead")
    q.set_defaults(func=_cmd_results)

    from .viz.run import FIGURES

    pl = sub.add_parser(
        "plot", help="draw a run folder's figures: curves, predictions, gates, peepholes, weights, "
                     "gradient flow; --gif for the training animation",
        description="Draw figures of a finished run folder (written by lstmlab train or a sweep), "
                    "from the saved files only: training curves; one held-out sequence's input, "
                    "target and output; heatmaps of every gate, the cell state and the output over "
                    "that sequence; the peephole weights (peephole cells); the weight matrices per "
                    "gate; the gradient flow back through time (this model untrained and trained, "
                    "beside an untrained RNN and GRU of the same size, log scale). --gif renders one "
                    "frame per weight snapshot (train with --snapshot-every N).")
    pl.add_argument("run_dir", metavar="RUN_DIR", help="the run folder")
    pl.add_argument("--what", action="append", metavar="LIST",
                    help=f"figures to draw, comma-separated, from {','.join(FIGURES)} (default: all "
                         "that apply to the cell)")
    pl.add_argument("--sample", type=_nonneg_int, default=0, metavar="N",
                    help="which held-out sequence of the run's test set to show (default 0)")
    pl.add_argument("--out", metavar="DIR", help="folder of the figures (default RUN_DIR/figures)")
    pl.add_argument("--gif", action="store_true",
                    help="also render training.gif from the run's weight snapshots")
    pl.add_argument("--cells", action="store_true",
                    help="charlm runs: search every cell for the one that tracks each text feature "
                         "(quotes, brackets, indentation, position in the line, inside a word) and "
                         "write cells.html (held-out text coloured by those cells) and cells.json")
    pl.add_argument("--cell", action="append", metavar="NAMES",
                    help="with --cells: colour by these cells instead, e.g. L1.17,L0.3 (layer.cell)")
    pl.add_argument("--chars", type=_positive_int, default=20000, metavar="N",
                    help="with --cells: held-out characters the search reads (default 20000)")
    pl.add_argument("--quiet", action="store_true", help="no messages, only the result line")
    pl.set_defaults(func=_cmd_plot)

    sm = sub.add_parser(
        "sample", help="generate text from a trained charlm run, streaming to stdout",
        description="Read --prime through a trained character-level model (lstmlab train charlm), "
                    "then draw --length characters one at a time from softmax(logits / temperature), "
                    "optionally from the --top-k most likely only. The same --seed gives the same "
                    "text. The run's text file must be unchanged (its hashes are checked).")
    sm.add_argument("run_dir", metavar="RUN_DIR", help="the charlm run folder")
    sm.add_argument("--prime", default="\n", metavar="TEXT",
                    help="text to start from (default a newline); every character must be in the "
                         "model's vocabulary")
    sm.add_argument("--escapes", action="store_true", help="read \\n, \\t in --prime as escapes")
    sm.add_argument("--quiet-prime", action="store_true", help="do not echo the prime")
    sm.add_argument("--length", type=_positive_int, default=500, metavar="N",
                    help="characters to generate (default 500)")
    sm.add_argument("--temperature", type=_positive_float, default=1.0, metavar="T",
                    help="softmax temperature > 0 (default 1; lower is more conservative)")
    sm.add_argument("--top-k", type=_positive_int, metavar="K",
                    help="draw only among the K most likely characters")
    sm.add_argument("--seed", type=_nonneg_int, default=0, metavar="S",
                    help="seed of the draws (default 0)")
    sm.add_argument("--word-stats", action="store_true",
                    help="after the sample, print to stderr how many of its words (English words "
                         "and Python names; not the prime's, nor a last one that may be cut) occur "
                         "in the training text, and the distinct invented ones")
    sm.set_defaults(func=_cmd_sample)

    tr = sub.add_parser(
        "translate", help="decode a text with a trained sequence-to-sequence run",
        description="Read TEXT (one character per source token: letters for reverse and sort, "
                    "digits and + for addition, a date in words for dates) through a run of "
                    "lstmlab train reverse|sort|addition|dates and print what the decoder emits: "
                    "greedy, or the best of --beam K hypotheses by log-likelihood.")
    tr.add_argument("run_dir", metavar="RUN_DIR", help="the seq2seq run folder")
    tr.add_argument("text", metavar="TEXT", help="the source, e.g. 'march 3, 2021'")
    tr.add_argument("--beam", type=_positive_int, default=1, metavar="K",
                    help="beam width (default 1: greedy decoding)")
    tr.add_argument("--max-len", type=_positive_int, metavar="N",
                    help="most tokens to emit (default twice the source length + 10)")
    tr.add_argument("--attention", action="store_true",
                    help="also print the attention weights (output characters by source characters)")
    tr.set_defaults(func=_cmd_translate)

    r = sub.add_parser(
        "reproduce", help="reproduce a paper's experiments or a classic claim (gers2002, gradient-flow, long-range, ablation, seq2seq, greff2017)",
        description="Reproduce an experiment: each writes results.json, report.md (our numbers beside "
                    "the published ones), figures/ and one run folder per training run; finished "
                    "runs in --out are reused and killed ones resumed. 'lstmlab reproduce NAME --help' "
                    "lists each one's options.")
    rs = r.add_subparsers(dest="paper", metavar="EXPERIMENT", parser_class=_Parser)
    rs.required = True
    r = rs.add_parser(
        "gers2002", help="Gers, Schraudolph & Schmidhuber (2002): peephole vs plain LSTM on msd-pair",
        description="Reproduce Gers, Schraudolph & Schmidhuber (2002): peephole vs plain LSTM on msd-pair "
                    "over seeds, run in parallel; writes results.json, report.md, figures/ and one run "
                    "folder per run. Finished runs in --out are reused and killed ones resumed.")
    r.add_argument("--seeds", type=_seed_list, default=list(range(10)), metavar="SEEDS",
                   help="seeds, e.g. 0-9 (default) or 0,3,5")
    r.add_argument("--iters", type=_positive_int, default=3000, metavar="N", help="iterations per run (default 3000)")
    r.add_argument("--recipe", choices=["ours", "npow"], default="ours",
                   help="training recipe: ours (default) or the npow reproduction's")
    r.add_argument("--sweep-T", action="store_true",
                   help="also sweep T over --T-values with the D range scaled with T (not by default)")
    r.add_argument("--T-values", type=_int_list, default=[150, 300, 600, 1000], metavar="LIST",
                   help="T values of the sweep (default 150,300,600,1000)")
    r.add_argument("--sweep-seeds", type=_seed_list, metavar="SEEDS", help="seeds of the sweep (default: --seeds)")
    r.add_argument("--sweep-iters", type=_positive_int, metavar="N", help="iterations of sweep runs (default: --iters)")
    r.add_argument("--sweep-budget", type=_budget_list, default=[], metavar="LIST",
                   help="extra sweep points T:ITERS, e.g. 1000:24000 (T = 1000 with 24000 iterations), "
                        "run with --sweep-seeds beside those of --sweep-T")
    from .experiments.gers2002_paper import DEFAULT_CONFIGS, PAPER_CONFIGS, PAPER_VARIANTS
    r.add_argument("--paper-tasks", action="store_true",
                   help="also run the paper's own tasks with its one-cell network, trained on "
                        "streams that end at the first error (not by default)")
    r.add_argument("--paper-configs", type=_name_list, default=list(DEFAULT_CONFIGS), metavar="LIST",
                   help=f"which paper tasks (default {','.join(DEFAULT_CONFIGS)}; "
                        f"all: {','.join(PAPER_CONFIGS)})")
    r.add_argument("--paper-variants", type=_name_list, default=list(PAPER_VARIANTS), metavar="LIST",
                   help=f"cells of the paper-task runs (default {','.join(PAPER_VARIANTS)})")
    r.add_argument("--paper-seeds", type=_seed_list, default=list(range(10)), metavar="SEEDS",
                   help="trials (seeds) of each paper task and cell (default 0-9)")
    r.add_argument("--paper-iters", type=_positive_int, metavar="N",
                   help="training streams per paper-task run (default: each task's budget, "
                        "10000); a run stops once solved")
    r.add_argument("--paper-grad", choices=["full", "cut"], default="full",
                   help="full BPTT (default), or cut: no error through the peepholes (the paper's)")
    _output_options(r, "gers2002")
    r.set_defaults(func=_cmd_reproduce)

    f = rs.add_parser(
        "gradient-flow", help="how far the gradient flows back through time: RNN, GRU, LSTM, forget bias 0-5",
        description="Measure the gradient-flow profile (RMS norm of dL/dh_t and dL/dc_t for a probe on "
                    "the last step, ~ ||d h_T / d h_t||) on the adding problem at T = 150: untrained "
                    "RNN, GRU and LSTM with forget bias 0 to 5 over --seeds, and RNN, GRU, LSTM (bias 1 "
                    "and 3) trained on that task over --trained-seeds; writes the table of orders of "
                    "magnitude lost over 100 steps, the figure and the report.")
    f.add_argument("--seeds", type=_seed_list, default=list(range(5)), metavar="SEEDS",
                   help="seeds of the untrained models (default 0-4)")
    f.add_argument("--trained-seeds", type=_seed_list, default=list(range(3)), metavar="SEEDS",
                   help="seeds of the trained models (default 0-2)")
    f.add_argument("--iters", type=_positive_int, default=3000, metavar="N",
                   help="training iterations (default 3000)")
    f.add_argument("--quick", action="store_true",
                   help="a smoke run: seeds 0-1, one trained seed, 100 iterations (seconds)")
    _output_options(f, "gradient-flow")
    f.set_defaults(func=_cmd_reproduce_gradflow)

    lr = rs.add_parser(
        "long-range", help="long time lags: LSTM, peephole, GRU, RNN on adding, multiplication, "
                           "temporal order and copy",
        description="Train lstm, peephole, gru and rnn (same hidden size) on the long-time-lag tasks: "
                    "the adding problem of 1997 (T = 100, 500) and of 2016 (T = 100, 200, 400), "
                    "multiplication (T = 100), temporal order 6a and 6b, and copy memory (T = 100, "
                    "200, 400; the GRU also 750 and 1000), over seeds; writes results.json (one record per run), report.md (the "
                    "table beside the published numbers), learning curves and the gradient-flow "
                    "figure of the trained and untrained models. --quick: the 1997 adding problem "
                    "at T = 100 with 2 seeds and short adding and copy runs.")
    lr.add_argument("--quick", action="store_true", help="the quick setting (short smoke runs)")
    lr.add_argument("--tasks", type=_name_list, metavar="LIST",
                    help="only these tasks, e.g. adding-1997,copy (default: all of the setting)")
    lr.add_argument("--seeds", type=_seed_list, metavar="SEEDS",
                    help="seeds of every case (default: each case's own, 2-5 seeds)")
    lr.add_argument("--iters", type=_positive_int, metavar="N",
                    help="cap every run at N iterations (default: each case's own)")
    _output_options(lr, "long-range")
    lr.set_defaults(func=_cmd_reproduce_longrange)

    sq = rs.add_parser(
        "seq2seq", help="encoder-decoder LSTMs with and without attention on reverse, sort, "
                        "addition and dates",
        description="Train the encoder-decoder (lstmlab.core.seq2seq) without attention and with "
                    "Luong's (general) and the additive (Bahdanau) score on reverse (5-30 symbols) "
                    "and sort (5-20), scored per source length (the bottleneck curve), on addition "
                    "of up to 4 digits and on dates written in words, scored on held-out "
                    "(format, month) patterns; 3 seeds; reverse also with teacher forcing 0.5 and "
                    "0. Writes results.json (one record per run and length: task, attention, "
                    "length, seed, exact_match, token_accuracy), report.md, figures/accuracy.png "
                    "and figures/attention.png. --quick: reverse of 3-8 symbols, one seed, 300 "
                    "iterations.")
    sq.add_argument("--quick", action="store_true", help="the quick setting (a smoke run)")
    sq.add_argument("--seeds", type=_seed_list, metavar="SEEDS", help="seeds of every case (default 0-2)")
    sq.add_argument("--iters", type=_positive_int, metavar="N",
                    help="cap every run at N iterations (default: 3000, dates 8000)")
    _output_options(sq, "seq2seq")
    sq.set_defaults(func=_cmd_reproduce_seq2seq)

    ab = rs.add_parser(
        "ablation", help="which gate matters: nig, nfg, nog, niaf, noaf, cifg, lstm, gru against "
                         "the peephole LSTM",
        description="Remove each gate and each activation of the peephole LSTM in turn (nig, nfg, nog, "
                    "niaf, noaf, cifg; plus lstm without peepholes and gru), train each on the adding "
                    "problem of 1997 (T = 100) and on msd-pair (timing) over seeds, and rank them by "
                    "held-out MSE with Welch's t-test against the full cell; writes results.json, "
                    "report.md (one table, the comparison with Greff et al. 2017) and "
                    "figures/ablation.png. --quick: 3 seeds and short runs.")
    ab.add_argument("--quick", action="store_true", help="the quick setting (3 seeds, short runs)")
    ab.add_argument("--seeds", type=_seed_list, metavar="SEEDS",
                    help="seeds of every variant and task (default 0-7; quick 0-2)")
    ab.add_argument("--iters", type=_positive_int, metavar="N",
                    help="cap every run at N iterations (default: adding 4000, msd-pair 3000)")
    _output_options(ab, "ablation")
    ab.set_defaults(func=_cmd_reproduce_ablation)

    gf = rs.add_parser(
        "greff2017", help="LSTM: A Search Space Odyssey on the Bach chorales (or the adding "
                          "problem): nine LSTM variants and GRU, a random search each, Welch's "
                          "t-tests, hyperparameter importance",
        description="Greff et al. (2017) on the Bach chorales of music21's corpus (task jsb; "
                    "needs pip install 'lstmlab[music]'): for each of V (peephole), NIG, NFG, NOG, "
                    "NIAF, NOAF, NP (lstm), CIFG, FGR and GRU, --trials draws from the paper's "
                    "random-search space (hidden 20-200, learning rate 1e-6 to 1e-2, momentum, input "
                    "noise), each trained with SGD and early stopping on the validation NLL; "
                    "writes results.json, report.md (best and median test NLL per variant, Welch's "
                    "t-tests against V, hyperparameter importance, the paper's findings beside "
                    "ours) and figures/boxes.png, figures/lr.png, all runs in OUT/results.sqlite "
                    "(resumable). --task adding runs the study on a long-lag task instead, the "
                    "adding problem at T = 30 (10 trials per variant, at most 5000 updates of 8 "
                    "sequences; the learning rate 100 times the drawn one, no input noise), "
                    "metric the test MSE, into ./greff2017-adding by default. --quick: 20 "
                    "chorales, 2 trials of 2 epochs (adding: 2 trials of 100 updates).")
    gf.add_argument("--quick", action="store_true", help="the quick setting (a smoke run)")
    gf.add_argument("--task", choices=("jsb", "adding"),
                    help="jsb: the Bach chorales (default); adding: the adding problem at T = 30")
    gf.add_argument("--report-only", action="store_true",
                    help="train nothing: re-derive report.md, the figures and results.json's "
                         "analysis from the records in OUT/results.json (after the analysis "
                         "changed, or without the store); the task comes from the file; takes "
                         "only --out, --no-figures and --quiet")
    gf.add_argument("--trials", type=_positive_int, metavar="N",
                    help="random-search trials per variant (default 20, adding 10; the paper ran 200)")
    gf.add_argument("--variants", type=_name_list, metavar="V,...",
                    help="some of V,NIG,NFG,NOG,NIAF,NOAF,NP,CIFG,FGR,GRU (default all)")
    gf.add_argument("--ray", metavar="ADDRESS",
                    help="run the trials on Ray: 'local' starts an instance here, 'auto' joins this "
                         "machine's cluster, or HOST:PORT (needs pip install 'lstmlab[ray]')")
    _output_options(gf, "greff2017")
    gf.set_defaults(func=_cmd_reproduce_greff, out=None)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:               # its options belong to benchmarks/bench_train_step.py
        return _cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:
        print(f"lstmlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:                 # the reader left (`lstmlab sample ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no error at exit
        return 141                          # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
