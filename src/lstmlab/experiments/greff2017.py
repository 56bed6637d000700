"""Greff et al. (2017), "LSTM: A Search Space Odyssey", on the Bach chorales: the variant study.

``reproduce()`` (``lstmlab reproduce greff2017``) draws ``trials`` hyperparameter settings per
variant from the paper's random-search space and trains each, through the sweep store, on the
chorales (:mod:`lstmlab.tasks.chorales`, the task ``jsb``). Each variant gets its own draws
(seeded by the variant's position and the trial number), as in the paper. Then:

* per variant the test NLL of the trial with the best validation NLL, and the distribution of
  the test NLL over trials (box plots, as the paper's Fig. 3);
* Welch's t-test of each variant against V on the test NLL, over all trials and over the top
  10% by validation NLL (at least 2 trials), as the paper's Sec. 5.1;
* hyperparameter importance (:func:`main_effects`): the fraction of the variance of the test
  NLL that each hyperparameter explains alone, pooled over the LSTM variants;
* learning rate against test NLL, per variant (a figure).

The search space (as the issue quotes the paper): hidden size log-uniform in [20, 200],
learning rate log-uniform in [1e-6, 1e-2], momentum 1 - log-uniform in [0.01, 1], input noise
standard deviation uniform in [0, 1]. One hidden layer, sigmoid outputs (the Bernoulli NLL),
SGD with momentum on one chorale per update, early stopping on the validation NLL.

Our loss is the mean over a chorale's frames; the paper's gradient is the sum over them, so the
learning rate a trial uses is the drawn one times the mean number of predicted frames of a
training chorale (:data:`FRAMES_PER_CHORALE`): the same step per chorale.

``task="adding"`` runs the same study on a long-lag task instead: the adding problem of
Arjovsky et al. (2016) at ``T =`` :data:`ADDING_T` (:class:`lstmlab.tasks.longrange.Adding`),
batches of :data:`ADDING_BATCH` sequences, the MSE at the last step as the metric (baseline 1/6
for the constant 1), scored on a fresh set of :data:`ADDING_TEST` sequences. The paper ran no
such task, and two parts of its space do not carry over (both measured, see the README): the
learning rate is the drawn one times :data:`ADDING_LR_SCALE` (the range moved up two decades,
to [1e-4, 1]: with the batch-sum factor alone no finished trial of a first study learnt), and there is
no input noise (noise of the space's size on the marker channel hides the markers).
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from ..core.io import atomic_write_bytes, atomic_write_json
from ..sweep.execute import check_out_dir, run_in_store
from ..sweep.spec import run_id
from ..train.config import TrainConfig
from .runner import default_jobs

__all__ = ["VARIANTS", "SPACE", "TASKS", "SETTINGS", "draw", "trial_config", "reproduce",
           "rewrite_report", "welch",
           "main_effects", "analyse", "write_report"]

#: The paper's names -> lstmlab's cells: V is the peephole LSTM, NP the modern one.
VARIANTS = {"V": "peephole", "NIG": "nig", "NFG": "nfg", "NOG": "nog", "NIAF": "niaf",
            "NOAF": "noaf", "NP": "lstm", "CIFG": "cifg", "FGR": "fgr", "GRU": "gru"}
#: The random-search space: name -> (kind, low, high).
SPACE = {"hidden": ("log-int", 20, 200), "lr": ("log", 1e-6, 1e-2),
         "one_minus_momentum": ("log", 0.01, 1.0), "input_noise": ("uniform", 0.0, 1.0)}
#: Mean predicted frames of a training chorale (music21 10.5's corpus, our split): the factor
#: between the paper's summed loss and our mean loss.
FRAMES_PER_CHORALE = 54.4
#: The adding problem's lag, batch and fresh test set (``task="adding"``).
ADDING_T = 30
ADDING_BATCH = 8
ADDING_TEST = 2560
ADDING_LR_SCALE = 100.0
#: Per task and setting: trials per variant and the budget of one trial (jsb: epochs of as many
#: updates as training chorales, ``limit`` chorales; adding: ``updates``), early stopping after
#: ``patience`` evaluations without a better validation metric.
SETTINGS = {"jsb": {"quick": {"trials": 2, "epochs": 2, "patience": 2, "limit": 20},
                    "full": {"trials": 20, "epochs": 100, "patience": 5, "limit": None}},
            "adding": {"quick": {"trials": 2, "updates": 100, "patience": 2},
                       "full": {"trials": 10, "updates": 5000, "patience": 8}}}
#: A trial "learnt" when its test NLL is below half the untrained 88 ln 2 = 61.0 (sigmoid 1/2
#: everywhere); those that never left it would otherwise dominate the variance.
LEARNT_BELOW = 0.5 * 88 * math.log(2)
#: Per task: the records' metric (``valid_<metric>``, ``test_<metric>``, lower is better), its
#: unit, the threshold below which a trial counts as having learnt (jsb: above; adding: a
#: tenth of the constant predictor's 1/6: the trials end either below 0.01 or above 0.14), the
#: factor from the drawn learning rate to the one a trial uses, the report's number format,
#: whether the figures plot the metric on a log scale, and which trials the importance verdict
#: reads: on the chorales those that learnt (the few stuck at the untrained NLL would dominate
#: the variance), on the adding problem all (whether a trial learns is the outcome itself).
TASKS = {"jsb": {"metric": "nll", "unit": "test NLL (nats per frame)", "title": "the Bach chorales",
                 "learnt_below": LEARNT_BELOW, "lr_scale": FRAMES_PER_CHORALE, "fmt": ".3f",
                 "log": False, "importance_on": "learnt"},
         "adding": {"metric": "mse", "unit": "test MSE (last step)",
                    "title": f"the adding problem at T = {ADDING_T}", "learnt_below": 0.1 / 6.0,
                    "lr_scale": ADDING_LR_SCALE, "fmt": ".4f", "log": True, "importance_on": "all"}}
#: Published JSB test NLLs (nats per frame) the report puts ours beside.
PUBLISHED = (("tanh RNN", 9.10, "Chung et al. 2014"), ("GRU", 8.54, "Chung et al. 2014"),
             ("LSTM", 8.67, "Chung et al. 2014"), ("LSTM", 8.45, "Bai et al. 2018"),
             ("GRU", 8.43, "Bai et al. 2018"), ("RNN", 8.91, "Bai et al. 2018"))


def draw(variant_index: int, trial: int) -> dict:
    """Trial ``trial``'s hyperparameters for the variant at ``variant_index`` of VARIANTS."""
    rng = np.random.default_rng([2017, variant_index, trial])
    out = {}
    for name, (kind, lo, hi) in SPACE.items():
        u = rng.random()
        if kind == "uniform":
            out[name] = lo + u * (hi - lo)
        else:
            v = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
            out[name] = int(round(v)) if kind == "log-int" else v
    return out


def trial_config(variant: str, hp: dict, epochs: int = 0, patience: int = 5, limit=None,
                 task: str = "jsb", updates: int = 0) -> TrainConfig:
    """The run of one trial: ``variant`` a key of VARIANTS, ``hp`` from :func:`draw`.

    jsb: ``epochs`` of as many updates (one chorale each, drawn with replacement) as there are
    training chorales; the validation NLL is measured after each. adding: ``updates`` batches
    of ADDING_BATCH, the validation MSE (512 held-out sequences) every 250, no input noise
    whatever ``hp`` says (see the module doc)."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    budget = ("updates", updates) if task == "adding" else ("epochs", epochs)
    if isinstance(budget[1], bool) or not isinstance(budget[1], int) or budget[1] < 1:
        raise ValueError(f"{budget[0]}: expected an integer >= 1 for task {task}, got {budget[1]!r}")
    noise = 0.0 if task == "adding" else float(hp["input_noise"])
    common = dict(variant=VARIANTS[variant], hidden=int(hp["hidden"]), seed=0, optimizer="sgd",
                  momentum=1.0 - float(hp["one_minus_momentum"]), schedule="constant", clip=0.0,
                  input_noise=noise, patience=patience, dtype="float32")
    if task == "adding":
        every = min(250, updates)
        return TrainConfig(task="adding", task_args={"T": ADDING_T}, iters=updates,
                           batch=ADDING_BATCH, lr=float(hp["lr"]) * TASKS["adding"]["lr_scale"],
                           eval_every=every, eval_size=512, checkpoint_every=4 * every, **common)
    from ..tasks.chorales import load_chorales
    n_train = len(load_chorales(limit).split("train"))
    args = {} if limit is None else {"limit": limit}
    return TrainConfig(task="jsb", task_args=args, test_task_args={"split": "valid"},
                       iters=epochs * n_train, batch=1, lr=float(hp["lr"]) * TASKS["jsb"]["lr_scale"],
                       eval_every=n_train, eval_size=1, checkpoint_every=n_train, **common)


def test_metrics(run_dir) -> dict:
    """The test metrics of a finished trial's best (validation) weights: jsb on the test
    chorales, adding on a fresh set of ADDING_TEST sequences (the same for every trial)."""
    from ..train.config import fresh_test_rng
    from ..train.loop import evaluate, load_run
    run = load_run(run_dir, best=True)
    cfg = run["config"]
    task = cfg.make_task(test=True)
    if cfg.task == "jsb":
        test = task.__class__(split="test", limit=cfg.task_args.get("limit"))
        return evaluate(run["model"], test, test.sample(1))
    return evaluate(run["model"], task, task.sample(ADDING_TEST, fresh_test_rng(cfg.seed)))


def reproduce(out: str, setting: str = "full", trials: int | None = None,
              variants=None, jobs: int | None = None, ray: str | None = None,
              figures: bool = True, quiet: bool = False, log=print, task: str = "jsb") -> list[dict]:
    """Train every trial of ``task`` (``jsb`` or ``adding``) into ``out`` through the sweep
    store (finished trials are reused) and write results.json (one record per trial),
    report.md and the figures; returns the records."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    if setting not in SETTINGS[task]:
        raise ValueError(f"setting: expected one of {', '.join(SETTINGS[task])}, got {setting!r}")
    st = dict(SETTINGS[task][setting])
    if trials is not None:
        if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
            raise ValueError(f"trials: expected an integer >= 1, got {trials!r}")
        st["trials"] = trials
    names = list(VARIANTS) if variants is None else list(variants)
    bad = [v for v in names if v not in VARIANTS]
    if bad or not names:
        raise ValueError(f"variants: expected some of {', '.join(VARIANTS)}, got {bad or names}")
    jobs = default_jobs() if jobs is None else jobs
    check_out_dir(out)
    held = _study_task(out)
    if held not in (None, task):
        raise ValueError(f"--out: {out} holds the {held} study; give the {task} study a folder "
                         "of its own")
    if task == "jsb":
        from ..tasks.chorales import load_chorales
        load_chorales(st["limit"], progress=not quiet)   # parse (or read the cache) once, here
    t0 = time.perf_counter()
    budget = {k: st[k] for k in ("epochs", "limit", "updates") if k in st}
    plan = []
    for v in names:
        for k in range(st["trials"]):
            hp = draw(list(VARIANTS).index(v), k)
            if task == "adding":
                hp["input_noise"] = 0.0                 # not searched: it would hide the markers
            plan.append((v, k, hp, trial_config(v, hp, patience=st["patience"], task=task, **budget)))
    runs = list({run_id(c.to_dict()): c.to_dict() for *_, c in plan}.items())
    log(f"greff2017 {task} ({setting}): {len(names)} variants x {st['trials']} trials = "
        f"{len(runs)} runs on {'Ray ' + ray if ray else f'{jobs} process(es)'}")
    name = "greff2017" if task == "jsb" else f"greff2017-{task}"
    rows = {r["id"]: r for r in run_in_store(name, runs, db=os.path.join(out, "results.sqlite"),
                                             out=os.path.join(out, "runs"), jobs=jobs, ray=ray,
                                             quiet=quiet, log=log)}
    m = TASKS[task]["metric"]
    records = []
    for v, k, hp, c in plan:
        row = rows[run_id(c.to_dict())]
        rec = {"variant": v, "cell": VARIANTS[v], "trial": k, **hp, "status": row["status"],
               "run": row["id"]}
        if task == "jsb":
            rec["epochs"] = c.iters // c.eval_every
        if row["status"] == "done":
            summary = row["metrics"]
            test = test_metrics(row["run_dir"])
            rec[f"valid_{m}"] = summary[f"best_{m}"]
            if task == "jsb":
                rec.update(best_epoch=summary["best_iter"] // c.eval_every, test_nll=test["nll"],
                           test_frame_accuracy=test["frame_accuracy"])
            else:
                rec.update(best_update=summary["best_iter"], test_mse=test["mse"],
                           test_solve_rate=test["solve_rate"])
            rec["wall_s"] = row["wall_s"]
        else:
            rec["error"] = row.get("error")
        records.append(rec)
    _write_outputs(out, records, task, setting, st, figures, time.perf_counter() - t0,
                   ray or f"{jobs} process(es)")
    log(f"greff2017: wrote {os.path.join(out, 'results.json')} and {os.path.join(out, 'report.md')}"
        f" ({time.perf_counter() - t0:.0f} s)")
    return records


# --------------------------------------------------------------------------------------------
# The study's files
# --------------------------------------------------------------------------------------------

def _study_task(out) -> str | None:
    """The task of the study whose results.json is in ``out`` (None: no readable one)."""
    try:
        with open(os.path.join(out, "results.json")) as f:
            res = json.load(f)
        return res.get("task", "jsb") if isinstance(res, dict) and "runs" in res else None
    except (OSError, ValueError):
        return None


#: What every record needs for the analysis (and, once done, ``valid_<m>``, ``test_<m>``).
_RECORD_KEYS = ("variant", "trial", "status", "lr", "hidden", "one_minus_momentum", "input_noise")


def rewrite_report(out: str, figures: bool = True, log=print) -> tuple[list[dict], str]:
    """Re-derive the analysis, report.md and the figures of a finished study from the records
    in ``out/results.json`` alone (no training, no store): for a study whose analysis has
    changed since it ran, or whose store is gone. The task and setting come from the file.
    Returns the records and the task."""
    path = os.path.join(out, "results.json")

    def bad(why):
        return ValueError(f"--out: {path} is not a greff2017 results.json ({why})")

    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f"--out: no readable greff2017 results.json in {out} ({e})") from None
    if not isinstance(res, dict) or not isinstance(res.get("runs"), list):
        raise bad("no list of runs")
    task, setting = res.get("task", "jsb"), res.get("setting")
    if not isinstance(task, str) or task not in TASKS or not isinstance(setting, str) \
            or setting not in SETTINGS[task]:
        raise bad(f"unknown task or setting: {task!r}, {setting!r}")
    missing = [k for k in SETTINGS[task][setting] if k not in res]
    if missing:
        raise bad(f"no {', '.join(missing)}")
    m = TASKS[task]["metric"]
    for i, r in enumerate(res["runs"]):
        need = _RECORD_KEYS + ((f"valid_{m}", f"test_{m}") if isinstance(r, dict)
                               and r.get("status") == "done" else ())
        if not isinstance(r, dict) or any(k not in r for k in need) or r["variant"] not in VARIANTS:
            raise bad(f"run {i} lacks one of {', '.join(need)} or has an unknown variant")
    st = {k: res[k] for k in SETTINGS[task][setting]}
    _write_outputs(out, res["runs"], task, setting, st, figures, None, None)
    log(f"greff2017: re-derived {os.path.join(out, 'report.md')} from {path}")
    return res["runs"], task


def _write_outputs(out, records, task, setting, st, figures, wall_s, where) -> None:
    """The figures, report.md and, last, results.json (the records and their analysis)."""
    analysis = analyse(records, task)
    figs = {}
    if figures:
        from ..viz import have_matplotlib
        if have_matplotlib():
            from ..viz.greff import plot_boxes, plot_lr
            figs[f"{TASKS[task]['unit']} per variant"] = plot_boxes(
                records, os.path.join(out, "figures", "boxes.png"), task)
            figs["learning rate against the test metric"] = plot_lr(
                records, os.path.join(out, "figures", "lr.png"), task)
    write_report(out, records, analysis, figs, setting, st, wall_s, where, task)
    atomic_write_json(os.path.join(out, "results.json"),
                      {"task": task, "setting": setting, **st, "runs": records, "analysis": analysis},
                      sort_keys=False)


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

def welch(a, b) -> tuple[float, float]:
    """Welch's t and two-sided p of samples ``a`` against ``b`` (scipy); NaN with < 2 each."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    from scipy.stats import ttest_ind
    t, p = ttest_ind(a, b, equal_var=False)
    return float(t), float(p)


def main_effects(X: dict, y, bins: int = 5) -> dict:
    """The fraction of Var(y) each input explains alone, ``Var(E[y | x_i]) / Var(y)``: for
    inputs drawn independently (a random search), fANOVA's main-effect fractions (Hutter et
    al. 2014). Estimated from the samples by the correlation ratio over ``bins`` equal-count
    bins of each input (log scale for the log-distributed ones), with the small-sample bias
    removed (``(SS_between - (k - 1) s^2_within) / SS_total``, clipped at 0).

    ``X``: name -> (n,) values; ``y`` (n,). Returns name -> fraction; ``"interactions"`` is
    what the main effects leave (interactions and noise)."""
    y = np.asarray(y, float)
    n = len(y)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    out = {}
    for name, x in X.items():
        x = np.asarray(x, float)
        k = max(1, min(bins, n // 2))
        edges = np.quantile(x, np.linspace(0, 1, k + 1)[1:-1])
        idx = np.searchsorted(edges, x, side="right")                        # (n,) bin of each
        ss_b = ss_w = 0.0
        for j in range(k):
            yj = y[idx == j]
            if len(yj):
                ss_b += len(yj) * (yj.mean() - y.mean()) ** 2
                ss_w += ((yj - yj.mean()) ** 2).sum()
        s2w = ss_w / max(n - k, 1)
        out[name] = 0.0 if ss_tot == 0 else max(0.0, (ss_b - (k - 1) * s2w) / ss_tot)
    out["interactions"] = max(0.0, 1.0 - sum(out.values()))
    return out


def analyse(records, task: str = "jsb") -> dict:
    """Per variant the best trial (by validation) and the distribution over trials, Welch's
    t-tests against V, and the hyperparameter importance over the LSTM variants' trials (all,
    and those that learnt: below ``TASKS[task]["learnt_below"]``). ``effective_step``: the
    fraction of the variance that the step ``lr / (1 - momentum)`` explains alone (a function
    of two draws, so not one of the main effects) over the trials ``TASKS[task]
    ["importance_on"]`` names, and per decade of it ``(decade, scored, learnt, diverged,
    median test metric)`` over the LSTM variants' trials."""
    m = TASKS[task]["metric"]
    tk, vk = f"test_{m}", f"valid_{m}"
    done = [r for r in records if r.get(tk) is not None and np.isfinite(r[tk])]
    per = {}
    for v in VARIANTS:
        mine = [r for r in records if r["variant"] == v]
        if not mine:
            continue
        rs = sorted((r for r in done if r["variant"] == v), key=lambda r: r[vk])
        top = rs[:max(2, int(math.ceil(0.1 * len(rs))))]
        per[v] = {"trials": len(mine), "done": len(rs),
                  "diverged": sum(r["status"] == "diverged" for r in mine),
                  "best_test": rs[0][tk] if rs else None, "best_valid": rs[0][vk] if rs else None,
                  "best_trial": rs[0]["trial"] if rs else None,
                  "median_test": float(np.median([r[tk] for r in rs])) if rs else None,
                  "learnt": sum(r[tk] < TASKS[task]["learnt_below"] for r in rs),
                  "all": [r[tk] for r in rs], "top": [r[tk] for r in top]}
    for v, d in per.items():
        if v != "V" and "V" in per:
            d["t_all"], d["p_all"] = welch(d["all"], per["V"]["all"])
            d["t_top"], d["p_top"] = welch(d["top"], per["V"]["top"])
    lstm = [r for r in done if r["variant"] != "GRU"]
    learnt = [r for r in lstm if r[tk] < TASKS[task]["learnt_below"]]

    def importance(rs):
        if len(rs) < 4:
            return {}
        X = {"learning rate": np.log10([r["lr"] for r in rs]),
             "hidden size": np.log10([r["hidden"] for r in rs]),
             "momentum": np.log10([r["one_minus_momentum"] for r in rs]),
             "input noise": [r["input_noise"] for r in rs]}
        X = {k: x for k, x in X.items() if np.ptp(x) > 0}      # not searched (adding: noise)
        return main_effects(X, [r[tk] for r in rs])

    def log_step(rs):
        return np.log10([r["lr"] / r["one_minus_momentum"] for r in rs])       # (n,)

    step = {}
    on = learnt if TASKS[task]["importance_on"] == "learnt" else lstm
    if len(on) >= 4:
        s = np.floor(log_step(lstm))                                            # (n,) decades
        y = np.array([r[tk] for r in lstm])                                     # (n,)
        lost = np.floor(log_step([r for r in records if r["variant"] != "GRU"
                                  and r["status"] == "diverged"]))
        decades = [(int(d), int((s == d).sum()), int((y[s == d] < TASKS[task]["learnt_below"]).sum()),
                    int((lost == d).sum()), float(np.median(y[s == d])) if (s == d).any() else None)
                   for d in np.union1d(np.unique(s), np.unique(lost))]
        step = {"fraction": main_effects({"step": log_step(on)}, [r[tk] for r in on])["step"],
                "by_decade": decades}
    return {"variants": per, "importance": importance(lstm), "importance_trials": len(lstm),
            "importance_learnt": importance(learnt), "learnt_trials": len(learnt),
            "effective_step": step}


#: Per task, the report's lines on the data and the budget (``{...}`` filled from the setting).
_DEVIATIONS = {
    "jsb": ["Data: the 371 chorales of music21's corpus, split by position (223/74/74), not "
            "the 382 of the JSB set (229/76/77) from another edition; one frame per quarter "
            "note, transposed to C major / C minor by music21's key analysis. Numbers compare "
            "with the published ones only roughly.",
            "Learning rate: the paper's range times the mean frames per training chorale "
            f"({FRAMES_PER_CHORALE:g}), since our loss is the mean over frames and theirs the "
            "sum; one chorale per update; no gradient clipping.",
            "Budget: {trials} trials per variant and at most {epochs} epochs, against the "
            "paper's 200 trials (`--trials 200 --ray ADDRESS` runs theirs on a cluster)."],
    "adding": ["Task: the paper ran no long-lag task. This is the adding problem of Arjovsky et "
               f"al. (2016) at T = {ADDING_T} (two marked values of U[0, 1], their sum at the last "
               "step); at T = 40, 50 and 100 a screened setting that learnt T = 30 stayed at or "
               "above the constant predictor's MSE (README).",
               f"Learning rate: the paper's range times {ADDING_LR_SCALE:g}, i.e. [1e-4, 1] on our "
               f"loss (the mean over a batch of {ADDING_BATCH}). Times the batch alone ([8e-6, "
               "8e-2]), with the space's input noise, none of the 52 trials of a first study that "
               "finished learnt (validation MSE 0.150 to 0.161, one more diverged); no gradient "
               "clipping.",
               "Input noise: none. Noise with a standard deviation of up to 1 on the marker "
               "channel hides the markers, which are 1 against 0.",
               "Budget: {trials} trials per variant of at most {updates} updates (early stopping "
               f"on 512 validation sequences), scored on a fresh set of {ADDING_TEST}; a trial "
               "that diverges (an infinite loss) is counted, not scored."]}


def write_report(out, records, analysis, figs, setting, st, wall_s, where, task: str = "jsb") -> str:
    per, imp = analysis["variants"], analysis["importance"]
    spec = TASKS[task]
    M = spec["metric"].upper()
    order = sorted(per, key=lambda v: (per[v]["best_test"] is None, per[v]["best_test"] or 0.0))
    flags = (" --task adding" if task != "jsb" else "") + (" --quick" if setting == "quick" else "") \
        + ("" if st["trials"] == SETTINGS[task][setting]["trials"] else f" --trials {st['trials']}")
    budget = (f"at most {st['epochs']} epochs, the validation NLL after each" if task == "jsb" else
              f"at most {st['updates']} updates of {ADDING_BATCH} sequences, the validation MSE "
              "every 250")
    lines = [f"# Greff et al. (2017) on {spec['title']} ({setting} setting)", "",
             f"`lstmlab reproduce greff2017{flags}`: "
             f"{len(records)} trials ({st['trials']} per variant, {budget}; early stopping after "
             f"{st['patience']} evaluations without a better one), "
             + (f"{wall_s:.0f} s on {where} (finished trials in the store are reused; "
                if wall_s is not None else "this report re-derived from results.json (")
             + f"the trials' own times add up to {sum(r.get('wall_s') or 0.0 for r in records):.0f} s). "
             f"The {spec['unit']} of each trial's best validation weights.", "",
             f"| variant | cell | trials done | learnt | best trial's test {M} | its "
             f"validation {M} | median test {M} | Welch p vs V (all) | "
             "Welch p vs V (top 10%, at least 2) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def fmt(x):
        return "" if x is None else format(x, spec["fmt"])

    for v in order:
        d = per[v]
        p = lambda key: "" if v == "V" or not np.isfinite(d.get(key, float("nan"))) else \
            f"{d[key]:.3g} ({'worse' if d['t' + key[1:]] > 0 else 'better'})"  # noqa: E731
        div = f" ({d['diverged']} diverged)" if d["diverged"] else ""
        lines.append(f"| {v} | `{VARIANTS[v]}` | {d['done']} of {d['trials']}{div} | {d['learnt']} | "
                     f"{fmt(d['best_test'])} | {fmt(d['best_valid'])} | "
                     f"{fmt(d['median_test'])} | {p('p_all')} | {p('p_top')} |")
    lines += [""]
    if task == "jsb":
        lines += [f"'learnt': test NLL below {LEARNT_BELOW:.1f}, half the untrained model's 88 ln 2. "
                  "Published JSB test NLLs: " + "; ".join(f"{n} {x:.2f} ({src})" for n, x, src in PUBLISHED)
                  + ". Greff et al. report their JSB results as figures, not a table.", ""]
    else:
        lines += [f"'learnt': test MSE below {spec['learnt_below']:.4f}, a tenth of the constant "
                  "predictor's 1/6. A diverged trial (an infinite loss) is counted but not "
                  "scored. We know of no published numbers for this search on this task.", ""]
    verdict_on = "trials that learnt" if spec["importance_on"] == "learnt" and \
        analysis.get("importance_learnt") else "scored trials"
    if imp:
        lines += ["## Hyperparameter importance", "",
                  f"Fraction of the variance of the test {M} over "
                  f"{analysis['importance_trials']} scored LSTM-variant trials that each "
                  "hyperparameter explains alone (`main_effects`: fANOVA's main effects for "
                  "independent draws, estimated by binning):", ""]
        lines += [f"- {k}: {x:.2f}" for k, x in sorted(imp.items(), key=lambda kv: -kv[1])]
        il = analysis.get("importance_learnt") or {}
        if il and spec["importance_on"] == "learnt":
            lines += ["", f"The same over the {analysis['learnt_trials']} trials that learnt (the "
                      "others, far from the learnt ones, would dominate the variance):", ""]
            lines += [f"- {k}: {x:.2f}" for k, x in sorted(il.items(), key=lambda kv: -kv[1])]
        step = analysis.get("effective_step") or {}
        if step:
            lines += ["", f"The step `lr / (1 - momentum)` (a function of two draws; lr on the "
                      f"paper's scale, the trials use {spec['lr_scale']:g} times it) explains "
                      f"{step['fraction']:.2f} of the variance over the {verdict_on} alone. Per "
                      "decade of it, the LSTM-variant trials:", "",
                      f"| lr / (1 - momentum) | scored | learnt | diverged | median test {M} |",
                      "|---|---|---|---|---|"]
            lines += [f"| 1e{d} to 1e{d + 1} | {n} | {k} | {lost} | {fmt(med)} |"
                      for d, n, k, lost, med in step["by_decade"]]
        lines.append("")
    lines += ["## Beside the paper", ""] + _beside(
        per, analysis["importance_learnt"] if verdict_on == "trials that learnt" else imp,
        verdict_on, analysis.get("effective_step") or {}, task)
    for name, path in figs.items():
        lines += ["", f"![{name}]({os.path.relpath(path, out)})"]
    lines += ["", "## Deviations", ""]
    lines += ["- " + t.format(**st) for t in _DEVIATIONS[task]]
    lines += ["- The t-tests on so few trials have little power: a missing significant "
              "difference is not evidence of none.",
              "- Importance: one-at-a-time variance fractions by binning, not the random-forest "
              "fANOVA of Hutter et al. that the paper used."]
    text = "\n".join(lines) + "\n"
    atomic_write_bytes(os.path.join(out, "report.md"), [text.encode()])
    return text


def _beside(per, imp, which: str, step=None, task: str = "jsb") -> list[str]:
    """The paper's findings beside ours. Its findings come from TIMIT, IAM Online and JSB: on
    the chorales a verdict (agrees or not), on another task only the comparison."""
    out = []

    def sig(v, key="p_all"):
        d = per.get(v)
        if not d or key not in d or not np.isfinite(d[key]):
            return None
        return d[key] < 0.05, d["t" + key[1:]] > 0

    where = "" if task == "jsb" else f" on {TASKS[task]['title']}"
    for v, paper in (("NFG", "significantly worse"), ("NOAF", "significantly worse"),
                     ("CIFG", "no significant difference"), ("NP", "no significant difference")):
        s = sig(v)
        if s is None:
            out.append(f"- {v}: the paper finds {paper}; not tested here{where} (too few trials).")
            continue
        ours = ("significantly worse" if s[1] else "significantly better") if s[0] else \
            "no significant difference"
        verdict = (": agrees" if ours == paper else ": does NOT agree") if task == "jsb" else \
            (", the same as the paper's" if ours == paper else ", unlike the paper's")
        out.append(f"- {v}: the paper finds {paper}; we find {ours}{where} (p = "
                   f"{per[v]['p_all']:.3g}, {per[v]['done']} against {per['V']['done']} scored "
                   f"trials){verdict}.")
    if imp:
        top = max((k for k in imp if k != "interactions"), key=lambda k: imp[k])
        out.append(f"- The paper finds the learning rate by far the most important "
                   f"hyperparameter; here ({which}) the largest main effect is the "
                   f"{top} ({imp[top]:.2f}, the main effects leave {imp['interactions']:.2f} to "
                   f"interactions, the variants and trial noise)"
                   + (": agrees" if top == "learning rate" and imp[top] >= 0.25 else
                      ": it comes first, as in the paper, but explains little: 'by far the most "
                      "important' is NOT confirmed" if top == "learning rate" else
                      ": does NOT agree") + ".")
        if step:
            out.append(f"- The step lr / (1 - momentum), the learning rate and momentum together, "
                       f"explains {step['fraction']:.2f} alone"
                       + (", more than any single hyperparameter." if step["fraction"] > imp[top]
                          else "."))
    return out
