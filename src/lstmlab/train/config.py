"""The training configuration: one dataclass, saved as ``config.json`` in every run folder.

Everything that decides a run's numbers is here, so ``TrainConfig.from_json(path)`` rebuilds a
run exactly. Random numbers come from three separate streams derived from ``seed``:

* initial weights: the layers' own seeded streams (``ll.LSTM(seed=...)``, ``ll.Dense(seed=...)``),
  so a ``peephole`` and an ``lstm`` run with one seed share every initial weight but the
  peephole vectors;
* training data: batch ``i`` is drawn from ``default_rng([seed, TRAIN_STREAM, i])``, a pure
  function of (seed, i), which makes resuming a killed run exact;
* test data: one held-out set from ``default_rng([seed, TEST_STREAM])`` (and a second, fresh
  one from ``FRESH_TEST_STREAM`` to score runs stopped on the first).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
from dataclasses import dataclass, field

import numpy as np

from ..core.init import GATES

__all__ = ["TrainConfig", "TRAIN_STREAM", "TEST_STREAM", "LR_SCHEDULES", "train_rng", "test_rng",
           "fresh_test_rng", "dropout_rng", "noise_rng"]

TRAIN_STREAM = 1
TEST_STREAM = 2
DROPOUT_STREAM = 3
FRESH_TEST_STREAM = 4
NOISE_STREAM = 5
LR_SCHEDULES = ("constant", "step", "cosine")
OPTIMIZERS = ("adam", "sgd")
#: Fields left out of :meth:`TrainConfig.to_dict` while at these defaults (see there).
OMIT_AT_DEFAULT = {"stop_at": None, "attention": "general", "bidirectional": False,
                   "bridge": "dense", "teacher_forcing": 1.0, "input_noise": 0.0, "patience": 0,
                   "first_error": False, "peephole_grad": "full", "readout": "linear",
                   "cell_clip": None}
PEEPHOLE_GRADS = ("full", "cut")
READOUTS = ("linear", "sigmoid")


def train_rng(seed: int, it: int) -> np.random.Generator:
    """The generator of training batch ``it`` (0-based) of a run with ``seed``."""
    return np.random.default_rng([seed, TRAIN_STREAM, it])


def dropout_rng(seed: int, it: int) -> np.random.Generator:
    """The generator of the dropout masks of training iteration ``it``."""
    return np.random.default_rng([seed, DROPOUT_STREAM, it])


def noise_rng(seed: int, it: int) -> np.random.Generator:
    """The generator of the input noise of training iteration ``it`` (``input_noise``)."""
    return np.random.default_rng([seed, NOISE_STREAM, it])


def test_rng(seed: int) -> np.random.Generator:
    """The generator of the held-out test set of a run with ``seed``."""
    return np.random.default_rng([seed, TEST_STREAM])


def fresh_test_rng(seed: int) -> np.random.Generator:
    """A second held-out set, never seen during training: a run stopped because it reached a
    criterion on the test set (``stop_at``) is scored on this one, so that the first crossing
    of a noisy threshold does not decide its score."""
    return np.random.default_rng([seed, FRESH_TEST_STREAM])


@dataclass
class TrainConfig:
    """All settings of one training run.

    Task
        ``task`` (registry name of :mod:`lstmlab.tasks`), ``task_args`` (its keyword arguments,
        e.g. ``{"T": 150, "D_min": 30, "D_max": 60}``), ``test_task_args`` (overrides for the
        test set only, e.g. a longer stream with ``required=1000`` as in the paper).
    Model (:class:`lstmlab.train.SeqModel`)
        ``layers`` stacked recurrent layers of ``hidden`` units with cell ``variant`` (a preset
        name, ``gru``, ``rnn``, or a dict of :class:`lstmlab.CellSpec` fields), ``dropout``
        between them, and a linear readout; for token tasks the ids are one-hot encoded, or
        embedded in ``embed`` dimensions when ``embed > 0``.
        ``init``, ``forget_bias``, ``peephole_init`` go to ``ll.LSTM``; ``init_range`` rescales
        the recurrent layer's uniform weights and biases to U(-r, r) (the paper's 0.1);
        ``zero_bias`` starts every LSTM bias at 0 but the forget gate's (a quiet cell until
        input arrives); ``identity_squash`` replaces the cell input and output tanh by the identity (the
        paper's cell); ``cell_clip`` clips the LSTM cell state to [-cell_clip, cell_clip] after
        each update (:class:`lstmlab.CellSpec`'s field, set on top of the variant); ``gate_bias``
        sets the summed bias of gate blocks (keys among ``i f g o``) after initialisation;
        ``readout_bias`` sets the readout's bias; ``readout``: ``linear``, or ``sigmoid`` (the
        paper's output unit, for tasks with the squared-error loss); ``input_scale`` is a fixed
        gain on the input
        (part of the model, the data are unchanged).
    Optimisation
        ``optimizer`` Adam (``lr``, ``betas``, ``eps``) or SGD with ``momentum``, on the loss
        the task declares (per-step MSE, softmax cross-entropy or Bernoulli NLL);
        ``tbptt = N > 0`` cuts each batch into chunks of N steps, one update per chunk, the
        state carried (not differentiated) from chunk to chunk; global-norm clipping at ``clip``
        (0 disables), learning rate ``schedule``: ``constant``, ``step`` (times ``lr_gamma``
        every ``lr_step`` iterations) or ``cosine`` (from ``lr`` to ``lr * lr_min_frac``),
        after ``warmup`` iterations of linear warm-up.
    Bookkeeping
        ``eval_every`` iterations evaluate on ``eval_size`` held-out sequences;
        ``checkpoint_every`` iterations save a checkpoint (0: only at the end);
        ``stop_at``: stop at the first evaluation whose headline metric reaches this value
        (at least it when the task maximises the metric, at most it otherwise), as the papers
        stop a run once it solves the task; None trains all ``iters``.
        ``first_error``: the training regime of Gers et al. (2002): each training stream ends
        at its first wrong output, so a step trains on the correct prefix plus the step that
        failed (and at most up to the task's ``required``-th correct event): the task's
        ``training_prefix`` masks the loss; the tasks msd, gts, pfg have one.
        ``peephole_grad``: ``full`` BPTT, or ``cut``, the paper's truncated gradient in which no
        error flows back through the peephole connections (the peephole weights still learn;
        :meth:`lstmlab.LSTM.backward`'s ``peephole_error``). A cell without peepholes is the
        same either way.
        ``patience = N > 0``: early stopping; the run stops after N evaluations in a row
        without a new best headline metric, keeps the best weights in ``best.safetensors`` and
        reports the best evaluation as ``best_iter`` and ``best_<metric>``.
    """

    task: str = "msd-pair"
    task_args: dict = field(default_factory=lambda: {"T": 150, "D_min": 30, "D_max": 60})
    test_task_args: dict = field(default_factory=dict)
    variant: str | dict = "peephole"
    hidden: int = 8
    layers: int = 1
    dropout: float = 0.0
    embed: int = 0
    seed: int = 0
    iters: int = 3000
    batch: int = 32
    lr: float = 5e-3
    schedule: str = "step"
    lr_step: int = 1500
    lr_gamma: float = 0.5
    lr_min_frac: float = 0.0
    warmup: int = 0
    clip: float = 1.0
    optimizer: str = "adam"
    momentum: float = 0.9
    tbptt: int = 0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    init: str = "uniform"
    init_range: float | None = None
    identity_squash: bool = False
    cell_clip: float | None = None
    zero_bias: bool = False
    forget_bias: float | None = 1.0
    peephole_init: str = "small"
    gate_bias: dict = field(default_factory=dict)
    readout_bias: float | None = None
    readout: str = "linear"
    input_scale: float = 1.0
    eval_every: int = 250
    eval_size: int = 512
    checkpoint_every: int = 500
    stop_at: float | None = None
    patience: int = 0
    first_error: bool = False
    peephole_grad: str = "full"
    input_noise: float = 0.0
    attention: str = "general"
    bidirectional: bool = False
    bridge: str = "dense"
    teacher_forcing: float = 1.0
    backend: str = "auto"
    dtype: str = "float64"

    def __post_init__(self):
        self.betas = tuple(self.betas)
        self.validate()
        if self.stop_at is not None:
            self.stop_at = float(self.stop_at)          # JSON-ready (numpy scalars are not)

    # -- checks -----------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise ValueError naming the first bad field."""
        def pos_int(name, minimum=1):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")

        for n in ("hidden", "iters", "batch", "eval_size", "layers"):
            pos_int(n)
        for n in ("seed", "lr_step", "warmup", "eval_every", "checkpoint_every", "embed", "tbptt",
                  "patience"):
            pos_int(n, 0)
        if self.lr_step < 1:
            raise ValueError(f"lr_step: expected an integer >= 1, got {self.lr_step!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: expected a positive learning rate, got {self.lr!r}")
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(LR_SCHEDULES)}, got {self.schedule!r}")
        if not (isinstance(self.clip, (int, float)) and self.clip >= 0):
            raise ValueError(f"clip: expected a number >= 0 (0 disables clipping), got {self.clip!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum: expected a number in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {self.betas!r}")
        if not isinstance(self.task_args, dict) or not isinstance(self.test_task_args, dict):
            raise ValueError("task_args: expected a dict of the task's keyword arguments")
        bad = set(self.gate_bias) - set(GATES)
        if bad:
            raise ValueError(f"gate_bias: keys must be among i, f, g, o; got {sorted(bad)}")
        if self.init_range is not None and not self.init_range > 0:
            raise ValueError(f"init_range: expected a positive number or None, got {self.init_range!r}")
        if self.stop_at is not None and not (isinstance(self.stop_at, numbers.Real)
                                             and not isinstance(self.stop_at, bool)
                                             and math.isfinite(self.stop_at)):
            raise ValueError(f"stop_at: expected a number or None, got {self.stop_at!r}")
        if not (isinstance(self.input_noise, (int, float)) and not isinstance(self.input_noise, bool)
                and math.isfinite(self.input_noise) and self.input_noise >= 0):
            raise ValueError(f"input_noise: expected a standard deviation >= 0, got {self.input_noise!r}")
        if not isinstance(self.first_error, bool):
            raise ValueError(f"first_error: expected true or false, got {self.first_error!r}")
        if self.peephole_grad not in PEEPHOLE_GRADS:
            raise ValueError(f"peephole_grad: expected one of {', '.join(PEEPHOLE_GRADS)}, "
                             f"got {self.peephole_grad!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype: expected float32 or float64, got {self.dtype!r}")
        from ..core.seq2seq import ATTENTIONS, BRIDGES
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {', '.join(ATTENTIONS)}, got {self.attention!r}")
        if self.bridge not in BRIDGES:
            raise ValueError(f"bridge: expected one of {', '.join(BRIDGES)}, got {self.bridge!r}")
        if not isinstance(self.bidirectional, bool):
            raise ValueError(f"bidirectional: expected true or false, got {self.bidirectional!r}")
        if not (isinstance(self.teacher_forcing, (int, float)) and 0 <= self.teacher_forcing <= 1):
            raise ValueError(f"teacher_forcing: expected a probability in [0, 1], got {self.teacher_forcing!r}")
        if self.cell_clip is not None:
            if isinstance(self.cell_clip, bool) or not isinstance(self.cell_clip, numbers.Real) \
                    or not (math.isfinite(self.cell_clip) and self.cell_clip > 0):
                raise ValueError(f"cell_clip: expected a positive number or None, got {self.cell_clip!r}")
            if self.variant in ("gru", "rnn"):
                raise ValueError(f"cell_clip: only for LSTM cells, not {self.variant}")
            self.cell_clip = float(self.cell_clip)
        from ..core.spec import CellSpec, resolve_spec
        if isinstance(self.variant, dict):
            CellSpec.from_dict(self.variant)
        elif self.variant not in ("gru", "rnn"):
            resolve_spec(self.variant)
        from ..tasks import TASKS
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {', '.join(TASKS)}, got {self.task!r}")
        task = self.make_task()              # the task's own checks (degenerate settings too)
        self.make_task(test=True)
        if self.readout not in READOUTS:
            raise ValueError(f"readout: expected one of {', '.join(READOUTS)}, got {self.readout!r}")
        if self.readout != "linear" and task.loss != "mse":
            raise ValueError(f"readout: a sigmoid output unit is for squared-error tasks; "
                             f"{self.task}'s loss ({task.loss}) reads the linear outputs")
        if self.first_error and not hasattr(task, "training_prefix"):
            raise ValueError(f"first_error: the task {self.task} does not define where a training "
                             f"stream ends (msd, gts and pfg do)")
        if self.first_error and self.tbptt:
            raise ValueError("first_error: cannot be combined with tbptt (the stream ends where "
                             "the whole forward pass first goes wrong)")
        if self.input_noise and (task.tokens or getattr(task, "kind", None) == "seq2seq"):
            raise ValueError(f"input_noise: only for real-valued inputs; {self.task} reads tokens")
        return self

    # -- derived ------------------------------------------------------------------------------
    @property
    def variant_name(self) -> str:
        return self.variant if isinstance(self.variant, str) else "custom"

    def lr_at(self, it: int) -> float:
        """Learning rate of iteration ``it`` (0-based): a pure function, so resume is exact."""
        if self.warmup and it < self.warmup:
            return self.lr * (it + 1) / self.warmup
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            return self.lr * self.lr_gamma ** (it // self.lr_step)
        span = max(self.iters - self.warmup, 1)
        frac = min(max(it - self.warmup, 0) / span, 1.0)
        lo = self.lr * self.lr_min_frac
        return lo + 0.5 * (self.lr - lo) * (1.0 + math.cos(math.pi * frac))

    def make_task(self, test: bool = False):
        from ..tasks import make_task
        args = dict(self.task_args)
        if test:
            args.update(self.test_task_args)
        return make_task(self.task, **args)

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fields as JSON-ready values. Fields added after run ids were first published
        (:data:`OMIT_AT_DEFAULT`) are left out while at their default, so the id of every
        earlier config (a hash of this dict) stays what it was."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        for name, default in OMIT_AT_DEFAULT.items():
            if d[name] == default:
                del d[name]
        return d

    def to_json(self, path=None) -> str:
        if path is None:
            return json.dumps(self.to_dict(), indent=2, sort_keys=True)
        from ..core.io import atomic_write_json
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown field {unknown[0]!r}")
        return cls(**d)

    @classmethod
    def from_json(cls, path_or_text) -> "TrainConfig":
        text = path_or_text
        if os.path.exists(str(path_or_text)):
            with open(path_or_text) as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
