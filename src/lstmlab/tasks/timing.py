"""Precise-timing tasks: data generators and metrics (pure NumPy).

Four tasks share one small interface so that a training loop can treat them alike::

    task = make_task("msd", F=10, delays=(0, 1))
    batch = task.sample(32, rng)            # Batch(x (T, B, D_in), y (T, B, D_out), mask (T, B), info)
    pred = model(batch.x)                   # (T, B, D_out), produced by the caller
    task.evaluate(pred, batch)              # {"mse": ..., "solve_rate": ..., ...}

``task.input_size``, ``task.output_size`` and ``task.T`` describe the arrays. The loss is meant to
be the squared error ``(pred - y)**2`` averaged over the steps where ``mask`` is True.

Tasks
-----
``msd-pair`` (:class:`MSDPair`)
    The short two-spike task of the npow reproduction: spikes at ``t1`` and ``t2 = t1 + D``, the
    network must answer with a spike at ``t1 + 2D``. Scored by the exact step of the output peak.
``msd``, ``gts``, ``pfg`` (:class:`MSD`, :class:`GTS`, :class:`PFG`)
    The three tasks of Gers, Schraudolph & Schmidhuber, "Learning Precise Timing with LSTM
    Recurrent Networks", JMLR 3:115-143 (2002): Measuring Spike Delays, Generating Timed Spikes
    and Periodic Function Generation, scored with the paper's error tolerances (0.49 for spikes,
    0.3 for functions) and its count of consecutive correct events. ``docs/gers2002_setup.md``
    lists what the paper states, where we read it, and every choice made where it is silent.

Conventions
-----------
Arrays are time-major, step indices are 0-based (step ``t`` is the paper's time ``t + 1``), values
are float64 unless ``dtype`` says otherwise, masks are bool, and every random draw goes through
the ``np.random.Generator`` handed to ``sample``. Bad arguments raise ``ValueError`` naming the
argument.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

import numpy as np

__all__ = [
    "Batch",
    "MSDPair",
    "MSD",
    "GTS",
    "PFG",
    "PFG_WAVEFORMS",
    "TASKS",
    "make_task",
    "pfg_waveform",
    "consecutive_correct",
    "training_prefix",
]

PFG_WAVEFORMS = ("cos", "tri", "rect")


# --------------------------------------------------------------------------------------------
# The common interface
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One batch of sequences from a task.

    Attributes
    ----------
    x : ndarray, shape (T, B, D_in)
        Network input.
    y : ndarray, shape (T, B, D_out)
        Target.
    mask : ndarray of bool, shape (T, B)
        Steps at which the loss counts (the target is defined there).
    info : mapping of str to ndarray
        What the task's metric needs besides ``y`` (spike times, delays, ...); documented by
        each task's ``sample``.
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    info: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def T(self) -> int:
        """Number of time steps."""
        return self.x.shape[0]

    @property
    def batch_size(self) -> int:
        """Number of sequences ``B``."""
        return self.x.shape[1]


class _Task:
    """Behaviour shared by the task dataclasses (they define ``T``, ``sample`` and ``evaluate``)."""

    name: ClassVar[str] = ""
    #: What the training loop reads: the loss (a key of ``lstmlab.core.losses.LOSSES``), the
    #: headline metric (a key of ``evaluate``'s result) and its direction, and the input kind.
    loss: ClassVar[str] = "mse"
    headline: ClassVar[str] = "solve_rate"
    maximize: ClassVar[bool] = True
    tokens: ClassVar[bool] = False

    @property
    def input_size(self) -> int:
        """``D_in``: every timing task has a single input channel."""
        return 1

    @property
    def output_size(self) -> int:
        """``D_out``: every timing task has a single (scalar) output."""
        return 1

    @classmethod
    def create(cls, **kwargs: Any) -> "_Task":
        """Build the task from keyword arguments, rejecting unknown names with ``ValueError``."""
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not an argument of task {cls.name!r}; expected some of {known}")
        return cls(**kwargs)


# --------------------------------------------------------------------------------------------
# Argument checks (each error message starts with the argument's name)
# --------------------------------------------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"{name}: expected a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype: expected a floating dtype, got {dtype!r}") from exc
    if dt.kind != "f":
        raise ValueError(f"dtype: expected a floating dtype such as float64, got {dt}")
    return dt


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng: expected a np.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}")
    return rng


def _check_delays(value: Any) -> tuple[int, ...]:
    """Delays I(n) as a sorted tuple of distinct non-negative integers."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        items = list(value)
    except TypeError as exc:
        raise ValueError(f"delays: expected a sequence of integers >= 0, got {value!r}") from exc
    if not items:
        raise ValueError("delays: expected at least one delay, got an empty sequence")
    return tuple(sorted({_check_int("delays", d, 0) for d in items}))


def _check_batch_arg(batch: Any) -> int:
    return _check_int("batch", batch, 1)


def _check_pred(pred: Any, batch: Batch) -> np.ndarray:
    """``pred`` as an array shaped like ``batch.y``; (T, B) is accepted for a scalar output."""
    if not isinstance(batch, Batch):
        raise ValueError(f"batch: expected a Batch from task.sample, got {type(batch).__name__}")
    p = np.asarray(pred)
    if p.ndim == 2 and batch.y.shape[2] == 1:
        p = p[:, :, None]
    if p.shape != batch.y.shape:
        raise ValueError(
            f"pred: expected shape (T, B, D_out) = {batch.y.shape}, got {np.shape(pred)}")
    if not np.issubdtype(p.dtype, np.number):
        raise ValueError(f"pred: expected a numeric array, got dtype {p.dtype}")
    return p


def _require_info(batch: Batch, keys: tuple[str, ...], task: str) -> None:
    missing = [k for k in keys if k not in batch.info]
    if missing:
        raise ValueError(f"batch: lacks {missing} in batch.info; was it made by {task}.sample?")


# --------------------------------------------------------------------------------------------
# Shared metric helpers
# --------------------------------------------------------------------------------------------


def consecutive_correct(correct: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Number of correct events from the start of each sequence up to the first wrong one.

    Parameters
    ----------
    correct : array_like of bool, shape (N, B)
        ``correct[n, b]``: whether event ``n`` (a spike, or a period) of sequence ``b`` was right.
    counts : array_like of int, shape (B,), optional
        How many events sequence ``b`` really has; rows ``n >= counts[b]`` are ignored.
        Defaults to ``N`` for every sequence.

    Returns
    -------
    ndarray of int64, shape (B,)
        ``k`` such that events ``0 .. k-1`` are correct and event ``k`` is wrong (or ``k`` equals
        the number of events when none is wrong).
    """
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 2:
        raise ValueError(f"correct: expected shape (N, B), got {correct.shape}")
    N, B = correct.shape
    counts = np.full(B, N, dtype=np.int64) if counts is None else np.asarray(counts, np.int64)
    if counts.shape != (B,):
        raise ValueError(f"counts: expected shape ({B},), got {counts.shape}")
    n = np.arange(N)[:, None]                                   # (N, 1)
    first_wrong = np.where((n < counts) & ~correct, n, N)       # (N, B)
    return np.minimum(first_wrong.min(axis=0, initial=N), counts)


def _event_scores(bad: np.ndarray, segment: np.ndarray, counts: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Which events are correct, given bad steps and the event each step belongs to.

    ``bad``, ``segment``: (T, B); a step with ``segment == n`` belongs to event ``n`` (steps past
    the last event carry ``segment == counts[b]`` and are ignored). Event ``n`` is correct when
    none of its steps is bad. Returns ``correct`` (N, B) and ``valid`` (N, B), N = max(counts).
    """
    T, B = bad.shape
    N = int(counts.max()) if B else 0
    flat = segment.astype(np.int64) * B + np.arange(B)[None, :]            # (T, B)
    n_bad = np.bincount(flat.ravel(), weights=bad.ravel().astype(np.float64),
                        minlength=(N + 1) * B)[: (N + 1) * B].reshape(N + 1, B)
    valid = np.arange(N)[:, None] < counts[None, :]                          # (N, B)
    correct = (n_bad[:N] == 0) & valid                                       # (N, B)
    return correct, valid


def training_prefix(bad: np.ndarray, last_step: np.ndarray) -> np.ndarray:
    """The paper's training stream (Gers et al. 2002): each stream ends at its first wrong
    output, or at ``last_step`` (the end of its ``required``-th event) if that comes first.

    Parameters
    ----------
    bad : (T, B) bool, the steps whose output is wrong.
    last_step : (B,) int, the last step a correct stream trains on.

    Returns
    -------
    (T, B) bool: True at the steps ``0 .. min(first wrong step, last_step)`` of each stream,
    the correct prefix plus the step that failed.
    """
    T, B = bad.shape
    t = np.arange(T)[:, None]                                                # (T, 1)
    first_bad = np.where(bad, t, T).min(axis=0, initial=T)                   # (B,)
    return t <= np.minimum(first_bad, np.asarray(last_step))[None, :]        # (T, B)


def _masked_mse(err: np.ndarray, mask: np.ndarray) -> float:
    """Mean of ``err**2`` over the steps where ``mask`` is True; ``err`` is (T, B)."""
    return float(np.mean(err[mask] ** 2)) if mask.any() else float("nan")


def _draw_spike_train(rng: np.random.Generator, batch: int, T: int, F: int,
                      delays: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spike steps of ``batch`` streams of ``T`` steps with intervals ``F + I(n)``.

    ``I(n)`` is drawn uniformly from ``delays``. Spike ``n`` (0-based) sits at step
    ``T(n) - 1`` with ``T(n) = T(n-1) + F + I(n)`` and ``T(-1) = 0`` (the stream start), i.e.
    the paper's ``T(1) = F + I(1)`` in 1-based time. Every spike that fits in ``T`` steps is kept.

    Returns ``times`` (B, S) int64, ``dl`` (B, S) int64 (both -1 past a stream's last spike) and
    ``counts`` (B,), where ``S = T // (F + min(delays))`` bounds the spikes that can fit.
    """
    S = T // (F + min(delays))
    dl = rng.choice(np.asarray(delays, dtype=np.int64), size=(batch, S))     # (B, S)
    times = np.cumsum(F + dl, axis=1) - 1                                    # (B, S)
    valid = times <= T - 1                                                   # a prefix per row
    times = np.where(valid, times, -1)
    dl = np.where(valid, dl, -1)
    return times, dl, valid.sum(axis=1).astype(np.int64)


def _spike_segments(times: np.ndarray, counts: np.ndarray, T: int) -> np.ndarray:
    """(T, B) index of the spike whose interval each step belongs to.

    Steps ``T(n-1)+1 .. T(n)`` (the silence before spike ``n`` and the spike itself) belong to
    spike ``n``; steps after the last spike get ``counts[b]``.
    """
    B = times.shape[0]
    ind = np.zeros((T, B), dtype=np.int64)                                   # (T, B)
    b_idx, n_idx = np.nonzero(np.arange(times.shape[1])[None, :] < counts[:, None])
    ind[times[b_idx, n_idx], b_idx] = 1
    return np.cumsum(ind, axis=0) - ind                                      # spikes before t


def _wrong_steps(pred: Any, batch: Batch, tolerance: float) -> np.ndarray:
    """(T, B) bool: the steps with a target whose output is off by ``tolerance`` or more (NaN
    counts as wrong)."""
    p = _check_pred(pred, batch)[:, :, 0]                                    # (T, B)
    return ~(np.abs(p - batch.y[:, :, 0]) < tolerance) & batch.mask


def _spike_prefix(task: "MSD | GTS", pred: Any, batch: Batch) -> np.ndarray:
    """:func:`training_prefix` of spike streams: a stream ends at its first wrong step or at its
    ``required``-th spike."""
    _require_info(batch, ("spike_times", "n_spikes"), type(task).__name__)
    bad = _wrong_steps(pred, batch, task.tolerance)                          # (T, B)
    times = np.asarray(batch.info["spike_times"])                            # (B, S)
    k = min(task.required, times.shape[1]) - 1
    last = np.where(times[:, k] >= 0, times[:, k], batch.T - 1)              # (B,)
    return training_prefix(bad, last)


def _spike_metrics(task: "MSD | GTS", pred: Any, batch: Batch, required: int | None,
                   tolerance: float | None) -> dict[str, float]:
    """Metrics shared by MSD and GTS: an event is a spike together with its preceding interval."""
    p = _check_pred(pred, batch)[:, :, 0]                                    # (T, B)
    _require_info(batch, ("spike_times", "n_spikes"), type(task).__name__)
    required = task.required if required is None else _check_int("required", required, 1)
    tol = task.tolerance if tolerance is None else _check_positive("tolerance", tolerance)
    y = batch.y[:, :, 0]                                                     # (T, B)
    err = p - y
    bad = ~(np.abs(err) < tol) & batch.mask                                  # NaN counts as bad
    counts = np.asarray(batch.info["n_spikes"], dtype=np.int64)              # (B,)
    segment = _spike_segments(np.asarray(batch.info["spike_times"]), counts, batch.T)
    correct, valid = _event_scores(bad, segment, counts)                     # (N, B)
    run = consecutive_correct(correct, counts)                               # (B,)
    return {
        "mse": _masked_mse(err, batch.mask),
        "spike_accuracy": float(correct.sum() / max(int(valid.sum()), 1)),
        "consecutive_mean": float(run.mean()),
        "consecutive_min": float(run.min()),
        "solve_rate": float(np.mean(run >= required)),
        "required": float(required),
    }


# --------------------------------------------------------------------------------------------
# msd-pair: the npow reproduction's two-spike task
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MSDPair(_Task):
    """Two input spikes ``D`` steps apart; answer with a spike ``D`` steps after the second.

    Each sequence has ``T`` steps and one input channel that is 1.0 at ``t1`` and at
    ``t2 = t1 + D`` and 0.0 elsewhere. ``D`` is drawn uniformly from the integers
    ``D_min .. D_max``; given ``D``, ``t1`` is drawn uniformly from ``0 .. T - 1 - 2D`` so that
    the answer fits. The target is 1.0 at ``t_target = t1 + 2D`` and 0.0 at every other step;
    the loss is the per-step squared error over all steps (the mask is all True).

    A sequence is *solved* when the argmax of the prediction over the steps ``t2 + 1 .. T - 1``
    is exactly ``t_target``.

    Parameters
    ----------
    T : int
        Sequence length (default 150).
    D_min, D_max : int
        Range of the spike distance ``D`` (default 30 and 60); needs ``1 <= D_min <= D_max`` and
        ``2 * D_max <= T - 1``.
    dtype : floating dtype
        dtype of ``x`` and ``y`` (default float64).

    See Also
    --------
    MSDPair.scaled : scale ``T`` and the ``D`` range together (the T-sweep 150, 300, 600, 1000).
    """

    name: ClassVar[str] = "msd-pair"

    T: int = 150
    D_min: int = 30
    D_max: int = 60
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        T = _check_int("T", self.T, 3)
        D_min = _check_int("D_min", self.D_min, 1)
        D_max = _check_int("D_max", self.D_max, 1)
        if D_max < D_min:
            raise ValueError(f"D_max: expected D_max >= D_min = {D_min}, got {D_max}")
        if 2 * D_max > T - 1:
            raise ValueError(
                f"D_max: the answer t1 + 2*D must fit in T = {T} steps, so 2*D_max <= T - 1 = "
                f"{T - 1}; got D_max = {D_max}")
        if T - 2 * D_min < 2 or D_min < 2:
            raise ValueError(
                f"T: with T = {T} and D in [{D_min}, {D_max}] the task is degenerate (the answer "
                f"step is fixed or follows the second spike at once, so no timing is needed); "
                f"use T >= {max(2 * D_min + 2, 6)} and D_min >= 2")
        object.__setattr__(self, "T", T)
        object.__setattr__(self, "D_min", D_min)
        object.__setattr__(self, "D_max", D_max)
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))

    @classmethod
    def scaled(cls, T: int, *, base_T: int = 150, base_D_min: int = 30, base_D_max: int = 60,
               dtype: Any = np.float64) -> "MSDPair":
        """The task at length ``T`` with the ``D`` range scaled by ``T / base_T``.

        ``D_min = round(base_D_min * T / base_T)`` and likewise ``D_max`` (halves round up), so
        ``T`` = 150, 300, 600, 1000 give ``D`` ranges [30, 60], [60, 120], [120, 240], [200, 400].
        """
        T = _check_int("T", T, 3)
        base_T = _check_int("base_T", base_T, 1)
        factor = T / base_T
        D_min = max(1, math.floor(_check_int("base_D_min", base_D_min, 1) * factor + 0.5))
        D_max = max(D_min, math.floor(_check_int("base_D_max", base_D_max, 1) * factor + 0.5))
        return cls(T=T, D_min=D_min, D_max=D_max, dtype=dtype)

    @classmethod
    def create(cls, **kwargs: Any) -> "MSDPair":
        """Like the constructor; ``scale_intervals=True`` builds :meth:`scaled` from ``T``."""
        if kwargs.pop("scale_intervals", False):
            clash = sorted(set(kwargs) & {"D_min", "D_max"})
            if clash:
                raise ValueError(f"{clash[0]}: cannot be given together with scale_intervals=True")
            return cls.scaled(**kwargs)
        return super().create(**kwargs)

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """Draw ``batch`` sequences.

        Returns
        -------
        Batch
            ``x``, ``y`` (T, B, 1); ``mask`` (T, B) all True; ``info`` holds int64 arrays of
            shape (B,): ``t1``, ``t2``, ``t_target`` and ``D``.
        """
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        D = rng.integers(self.D_min, self.D_max + 1, size=B)                   # (B,)
        t1 = rng.integers(0, self.T - 2 * D)                                   # (B,) in [0, T-1-2D]
        t2 = t1 + D
        t_target = t1 + 2 * D
        cols = np.arange(B)
        x = np.zeros((self.T, B, 1), dtype=self.dtype)                         # (T, B, 1)
        x[t1, cols, 0] = 1.0
        x[t2, cols, 0] = 1.0
        y = np.zeros((self.T, B, 1), dtype=self.dtype)                         # (T, B, 1)
        y[t_target, cols, 0] = 1.0
        mask = np.ones((self.T, B), dtype=bool)                                # (T, B)
        info = {"t1": t1.astype(np.int64), "t2": t2.astype(np.int64),
                "t_target": t_target.astype(np.int64), "D": D.astype(np.int64)}
        return Batch(x=x, y=y, mask=mask, info=info)

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """Score predictions.

        Parameters
        ----------
        pred : array_like, shape (T, B, 1) or (T, B)
        batch : Batch from :meth:`sample`

        Returns
        -------
        dict
            ``mse``: mean squared error over all steps; ``solve_rate``: fraction of sequences
            whose output peak over ``t2 + 1 .. T - 1`` is exactly at ``t_target``;
            ``timing_error``: mean ``|peak - t_target|`` in steps; ``within1_rate``: fraction
            with the peak at most one step off. A sequence with a non-finite prediction in its
            window is unsolved and makes ``timing_error`` NaN.
        """
        p = _check_pred(pred, batch)[:, :, 0]                                  # (T, B)
        _require_info(batch, ("t2", "t_target"), "MSDPair")
        t2 = np.asarray(batch.info["t2"])                                      # (B,)
        t_target = np.asarray(batch.info["t_target"])                          # (B,)
        in_window = np.arange(batch.T)[:, None] > t2[None, :]                  # (T, B)
        windowed = np.where(in_window, p, -np.inf)                             # (T, B)
        finite = np.all(np.isfinite(p) | ~in_window, axis=0)                   # (B,)
        peak = np.argmax(windowed, axis=0)                                     # (B,)
        off = np.where(finite, np.abs(peak - t_target), np.nan)                # (B,)
        return {
            "mse": _masked_mse(p - batch.y[:, :, 0], batch.mask),
            "solve_rate": float(np.mean(finite & (peak == t_target))),
            "timing_error": float(np.mean(off)),
            "within1_rate": float(np.mean(finite & (np.abs(peak - t_target) <= 1))),
        }


# --------------------------------------------------------------------------------------------
# Gers et al. (2002): MSD, GTS, PFG
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MSD(_Task):
    """Measuring Spike Delays (Gers et al. 2002): report each inter-spike delay at the spike.

    The input is a stream of unit spikes. Spike ``n`` comes ``F + I(n)`` steps after spike
    ``n - 1`` (the first one ``F + I(1)`` steps after the stream start), with ``F`` a fixed
    minimal interval and the delay ``I(n)`` drawn uniformly from ``delays``. At the step of spike
    ``n`` the network must output ``I(n)``. Only spike steps carry a target (mask True there)
    unless ``targets_every_step`` is set, which adds the target 0 at every other step.

    Spike ``n`` counts as correct when ``|pred - I(n)| < tolerance`` at its step (and, with
    ``targets_every_step``, at every step since the previous spike). As in the paper, a stream
    is judged by how many consecutive spikes from its start are correct: at least ``required``
    (the paper: 100 while training, 1000 on the test stream) solves it.

    A stream has ``T`` steps and holds every spike that fits, at least ``n_spikes`` of them.
    ``n_spikes=1`` gives the paper's non-continual variant (NMSD): one interval per sequence.

    Parameters
    ----------
    F : int
        Minimal interval in steps (default 10).
    delays : sequence of int
        Possible extra delays ``I(n) >= 0`` (default (0, 1): intervals of F or F + 1 steps).
    n_spikes : int
        Spikes guaranteed per stream (default 100); sets ``T = n_spikes * (F + max(delays))``.
    length : int, optional
        Use this ``T`` instead; must be at least ``F + max(delays)``.
    targets_every_step : bool
        Also train towards 0 between spikes (default False: targets at spike steps only).
    tolerance : float
        Largest absolute error of a correct output (default 0.49).
    required : int
        Consecutive correct spikes needed to count a stream as solved (default 100).
    dtype : floating dtype
        dtype of ``x`` and ``y`` (default float64).
    """

    name: ClassVar[str] = "msd"

    F: int = 10
    delays: tuple[int, ...] = (0, 1)
    n_spikes: int = 100
    length: int | None = None
    targets_every_step: bool = False
    tolerance: float = 0.49
    required: int = 100
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        _init_spike_task(self)
        object.__setattr__(self, "targets_every_step", bool(self.targets_every_step))

    @property
    def T(self) -> int:
        """Stream length in steps."""
        return _spike_task_length(self)

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """Draw ``batch`` spike streams.

        Returns
        -------
        Batch
            ``x`` (T, B, 1): 1.0 at spike steps. ``y`` (T, B, 1): ``I(n)`` at the step of spike
            ``n``, 0.0 elsewhere. ``mask`` (T, B): True at spike steps (everywhere with
            ``targets_every_step``). ``info``: ``spike_times`` and ``spike_delays`` (B, S)
            int64, padded with -1 past a stream's last spike, and ``n_spikes`` (B,).
        """
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        T = self.T
        times, dl, counts = _draw_spike_train(rng, B, T, self.F, self.delays)   # (B, S) x2, (B,)
        b_idx, n_idx = np.nonzero(dl >= 0)
        t_idx = times[b_idx, n_idx]
        x = np.zeros((T, B, 1), dtype=self.dtype)                              # (T, B, 1)
        x[t_idx, b_idx, 0] = 1.0
        y = np.zeros((T, B, 1), dtype=self.dtype)                              # (T, B, 1)
        y[t_idx, b_idx, 0] = dl[b_idx, n_idx]
        if self.targets_every_step:
            mask = np.ones((T, B), dtype=bool)
        else:
            mask = np.zeros((T, B), dtype=bool)                                # (T, B)
            mask[t_idx, b_idx] = True
        info = {"spike_times": times, "spike_delays": dl, "n_spikes": counts}
        return Batch(x=x, y=y, mask=mask, info=info)

    def training_prefix(self, pred: Any, batch: Batch) -> np.ndarray:
        """(T, B) bool: the steps the paper trains on (:func:`training_prefix`): up to the first
        wrong spike step, at most to the ``required``-th spike."""
        return _spike_prefix(self, pred, batch)

    def evaluate(self, pred: Any, batch: Batch, required: int | None = None,
                 tolerance: float | None = None) -> dict[str, float]:
        """Score predictions with the paper's criterion.

        Parameters
        ----------
        pred : array_like, shape (T, B, 1) or (T, B)
        batch : Batch from :meth:`sample`
        required, tolerance : optional
            Override the task's ``required`` and ``tolerance``.

        Returns
        -------
        dict
            ``mse`` over masked steps; ``spike_accuracy``: fraction of all spikes correct;
            ``consecutive_mean`` / ``consecutive_min``: correct spikes from the stream start up
            to the first wrong one, averaged / minimum over the batch; ``solve_rate``: fraction
            of streams with at least ``required`` of them; ``required``.
        """
        return _spike_metrics(self, pred, batch, required, tolerance)


@dataclass(frozen=True)
class GTS(_Task):
    """Generating Timed Spikes (Gers et al. 2002): MSD with input and target exchanged.

    The target is the spike train of :class:`MSD`: 1.0 at the step of spike ``n``, which comes
    ``F + I(n)`` steps after spike ``n - 1`` (the first ``F + I(1)`` steps after the stream
    start), and 0.0 at every other step; the loss counts every step. The input carries the
    delay: ``I(n)`` at the first step of interval ``n`` (the step right after spike ``n - 1``,
    step 0 for the first interval), 0.0 elsewhere. With the default ``delays=(0,)`` the input is
    always zero and the network must generate a spike every ``F`` steps on its own.

    Spike ``n`` counts as correct when ``|pred - 1| < tolerance`` at its step and
    ``|pred| < tolerance`` at every step since spike ``n - 1`` (no missing, early or extra
    spike). A stream is solved with at least ``required`` consecutive correct spikes from its
    start. Errors after a stream's last spike do not change the count.

    Parameters
    ----------
    F : int
        Minimal interval in steps (default 10).
    delays : sequence of int
        Possible extra delays ``I(n) >= 0`` (default (0,): a strictly periodic train).
    n_spikes : int
        Spikes guaranteed per stream (default 100); sets ``T = n_spikes * (F + max(delays))``.
    length : int, optional
        Use this ``T`` instead; must be at least ``F + max(delays)``.
    tolerance : float
        Largest absolute error of a correct output (default 0.49).
    required : int
        Consecutive correct spikes needed to count a stream as solved (default 100).
    dtype : floating dtype
        dtype of ``x`` and ``y`` (default float64).
    """

    name: ClassVar[str] = "gts"

    F: int = 10
    delays: tuple[int, ...] = (0,)
    n_spikes: int = 100
    length: int | None = None
    tolerance: float = 0.49
    required: int = 100
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        _init_spike_task(self)

    @property
    def T(self) -> int:
        """Stream length in steps."""
        return _spike_task_length(self)

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """Draw ``batch`` streams.

        Returns
        -------
        Batch
            ``x`` (T, B, 1): ``I(n)`` at each interval's first step. ``y`` (T, B, 1): 1.0 at
            spike steps. ``mask`` (T, B): all True. ``info``: ``spike_times``, ``spike_delays``
            and ``cue_times`` (B, S) int64, padded with -1, and ``n_spikes`` (B,).
        """
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        T = self.T
        times, dl, counts = _draw_spike_train(rng, B, T, self.F, self.delays)   # (B, S) x2, (B,)
        # interval n starts one step after spike n-1 (step 0 for n = 0)
        cues = np.concatenate([np.zeros((B, 1), np.int64), times[:, :-1] + 1], axis=1)
        cues = np.where(dl >= 0, cues, -1)                                     # (B, S)
        b_idx, n_idx = np.nonzero(dl >= 0)
        x = np.zeros((T, B, 1), dtype=self.dtype)                              # (T, B, 1)
        x[cues[b_idx, n_idx], b_idx, 0] = dl[b_idx, n_idx]
        y = np.zeros((T, B, 1), dtype=self.dtype)                              # (T, B, 1)
        y[times[b_idx, n_idx], b_idx, 0] = 1.0
        mask = np.ones((T, B), dtype=bool)                                     # (T, B)
        info = {"spike_times": times, "spike_delays": dl, "cue_times": cues, "n_spikes": counts}
        return Batch(x=x, y=y, mask=mask, info=info)

    def training_prefix(self, pred: Any, batch: Batch) -> np.ndarray:
        """(T, B) bool: the steps the paper trains on (:func:`training_prefix`): up to the first
        wrong spike step, at most to the ``required``-th spike."""
        return _spike_prefix(self, pred, batch)

    def evaluate(self, pred: Any, batch: Batch, required: int | None = None,
                 tolerance: float | None = None) -> dict[str, float]:
        """Score predictions with the paper's criterion (keys as in :meth:`MSD.evaluate`)."""
        return _spike_metrics(self, pred, batch, required, tolerance)


def _init_spike_task(task: MSD | GTS) -> None:
    """Validate and normalise the fields MSD and GTS share."""
    F = _check_int("F", task.F, 1)
    delays = _check_delays(task.delays)
    n_spikes = _check_int("n_spikes", task.n_spikes, 1)
    longest = F + max(delays)
    if task.length is not None:
        length = _check_int("length", task.length, 1)
        if length < longest:
            raise ValueError(
                f"length: must hold at least one interval F + max(delays) = {longest} steps, "
                f"got {length}")
        object.__setattr__(task, "length", length)
    object.__setattr__(task, "F", F)
    object.__setattr__(task, "delays", delays)
    object.__setattr__(task, "n_spikes", n_spikes)
    object.__setattr__(task, "tolerance", _check_positive("tolerance", task.tolerance))
    object.__setattr__(task, "required", _check_int("required", task.required, 1))
    object.__setattr__(task, "dtype", _check_dtype(task.dtype))


def _spike_task_length(task: MSD | GTS) -> int:
    if task.length is not None:
        return task.length
    return task.n_spikes * (task.F + max(task.delays))


def pfg_waveform(kind: str, t: Any, period: int) -> np.ndarray:
    """The periodic targets of the PFG task, with values in [0, 1] and period ``period``.

    With ``u = t mod F``:

    - ``cos``:  ``f(t) = (1 - cos(2 pi t / F)) / 2``
    - ``tri``:  ``f(t) = 2u / F`` if ``u <= F/2``, else ``2 - 2u / F`` (rises from 0 to 1 and
      back, in phase with ``cos``)
    - ``rect``: ``f(t) = 1`` if ``u > F/2``, else 0

    Parameters
    ----------
    kind : {"cos", "tri", "rect"}
    t : array_like of int
        Time steps.
    period : int
        ``F``, at least 2.

    Returns
    -------
    ndarray of float64, same shape as ``t``
    """
    if kind not in PFG_WAVEFORMS:
        raise ValueError(f"waveform: expected one of {PFG_WAVEFORMS}, got {kind!r}")
    F = _check_int("F", period, 2)
    t = np.asarray(t)
    u = np.mod(t, F).astype(np.float64)
    if kind == "cos":
        return 0.5 * (1.0 - np.cos(2.0 * np.pi * u / F))
    if kind == "tri":
        return np.where(u <= F / 2, 2.0 * u / F, 2.0 - 2.0 * u / F)
    return np.where(u > F / 2, 1.0, 0.0)


@dataclass(frozen=True)
class PFG(_Task):
    """Periodic Function Generation (Gers et al. 2002): produce a waveform with no input.

    The target at step ``t`` is ``pfg_waveform(waveform, t, F)`` (see :func:`pfg_waveform`):
    ``cos``, ``tri`` or ``rect`` with period ``F``. The network gets no information: its input
    channel is all zeros (the paper uses no teacher forcing), so every sequence of a batch is
    the same. ``teacher_forcing=True`` instead feeds the previous target, ``x[t] = y[t-1]``
    (``x[0] = 0``), an option the paper does not use. The loss counts every step.

    A period counts as correct when ``|pred - target| < tolerance`` at all of its ``F`` steps;
    a sequence is solved with at least ``required`` consecutive correct periods from its start.

    Parameters
    ----------
    waveform : {"cos", "tri", "rect"}
        Target function (default "cos").
    F : int
        Period in steps, at least 2 (the paper: 10 and 25; default 10).
    n_periods : int
        Periods per sequence (default 100), so ``T = n_periods * F``.
    tolerance : float
        Largest absolute error of a correct output (default 0.3).
    required : int
        Consecutive correct periods needed to count a sequence as solved (default 100).
    teacher_forcing : bool
        Feed the previous target as input (default False, as in the paper).
    dtype : floating dtype
        dtype of ``x`` and ``y`` (default float64).
    """

    name: ClassVar[str] = "pfg"

    waveform: str = "cos"
    F: int = 10
    n_periods: int = 100
    tolerance: float = 0.3
    required: int = 100
    teacher_forcing: bool = False
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        if self.waveform not in PFG_WAVEFORMS:
            raise ValueError(f"waveform: expected one of {PFG_WAVEFORMS}, got {self.waveform!r}")
        object.__setattr__(self, "F", _check_int("F", self.F, 2))
        object.__setattr__(self, "n_periods", _check_int("n_periods", self.n_periods, 1))
        object.__setattr__(self, "tolerance", _check_positive("tolerance", self.tolerance))
        object.__setattr__(self, "required", _check_int("required", self.required, 1))
        object.__setattr__(self, "teacher_forcing", bool(self.teacher_forcing))
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))

    @property
    def T(self) -> int:
        """Sequence length in steps, ``n_periods * F``."""
        return self.n_periods * self.F

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``batch`` copies of the target sequence (``rng`` is checked but not needed).

        Returns
        -------
        Batch
            ``x`` (T, B, 1): zeros (the previous target with ``teacher_forcing``). ``y``
            (T, B, 1): the waveform. ``mask`` (T, B): all True. ``info``: ``period_index``
            (T,) int64, the period each step belongs to.
        """
        B = _check_batch_arg(batch)
        _check_rng(rng)
        t = np.arange(self.T)                                                  # (T,)
        f = pfg_waveform(self.waveform, t, self.F)                             # (T,)
        y = np.broadcast_to(f[:, None, None], (self.T, B, 1)).astype(self.dtype)  # (T, B, 1)
        x = np.zeros((self.T, B, 1), dtype=self.dtype)                         # (T, B, 1)
        if self.teacher_forcing:
            x[1:] = y[:-1]
        mask = np.ones((self.T, B), dtype=bool)                                # (T, B)
        return Batch(x=x, y=y, mask=mask, info={"period_index": t // self.F})

    def training_prefix(self, pred: Any, batch: Batch) -> np.ndarray:
        """(T, B) bool: the steps the paper trains on (:func:`training_prefix`): up to the first
        step off by ``tolerance`` or more, at most to the end of the ``required``-th period."""
        bad = _wrong_steps(pred, batch, self.tolerance)                        # (T, B)
        last = min(self.required * self.F, batch.T) - 1
        return training_prefix(bad, np.full(batch.batch_size, last))

    def evaluate(self, pred: Any, batch: Batch, required: int | None = None,
                 tolerance: float | None = None) -> dict[str, float]:
        """Score predictions with the paper's criterion.

        Returns
        -------
        dict
            ``mse`` and ``rmse`` over all steps; ``max_abs_error``; ``period_accuracy``:
            fraction of periods correct; ``consecutive_mean`` / ``consecutive_min``: correct
            periods from the start up to the first wrong one; ``solve_rate``: fraction of
            sequences with at least ``required`` of them; ``required``.
        """
        p = _check_pred(pred, batch)[:, :, 0]                                  # (T, B)
        required = self.required if required is None else _check_int("required", required, 1)
        tol = self.tolerance if tolerance is None else _check_positive("tolerance", tolerance)
        T, B = p.shape
        if T % self.F:
            raise ValueError(f"batch: T = {T} is not a whole number of periods F = {self.F}")
        err = p - batch.y[:, :, 0]                                             # (T, B)
        bad = ~(np.abs(err) < tol) & batch.mask                                # NaN counts as bad
        segment = np.broadcast_to((np.arange(T) // self.F)[:, None], (T, B))   # (T, B)
        counts = np.full(B, T // self.F, dtype=np.int64)                       # (B,)
        correct, valid = _event_scores(bad, segment, counts)                   # (N, B)
        run = consecutive_correct(correct, counts)                             # (B,)
        mse = _masked_mse(err, batch.mask)
        return {
            "mse": mse,
            "rmse": math.sqrt(mse) if mse == mse else float("nan"),
            "max_abs_error": float(np.max(np.abs(err[batch.mask]))),
            "period_accuracy": float(correct.sum() / max(int(valid.sum()), 1)),
            "consecutive_mean": float(run.mean()),
            "consecutive_min": float(run.min()),
            "solve_rate": float(np.mean(run >= required)),
            "required": float(required),
        }


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

TASKS: dict[str, type] = {
    "msd-pair": MSDPair,
    "msd": MSD,
    "gts": GTS,
    "pfg": PFG,
}


def make_task(name: str, **kwargs: Any):
    """Build a task by registry name (``msd-pair``, ``msd``, ``gts``, ``pfg``).

    Keyword arguments are the task's fields; ``make_task("msd-pair", T=600,
    scale_intervals=True)`` scales the ``D`` range with ``T`` (see :meth:`MSDPair.scaled`).
    Unknown names or arguments raise ``ValueError``.
    """
    if name not in TASKS:
        raise ValueError(f"name: expected one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name].create(**kwargs)
