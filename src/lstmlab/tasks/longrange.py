"""Long-time-lag tasks: the adding problem and copy memory (pure NumPy).

``adding`` (:class:`Adding`), the form of Arjovsky, Shah & Bengio (2016)
    Two input channels: values ``U[0, 1]`` and a marker that is 1 at one step in each half of
    the sequence. The target, scored at the last step only, is the sum of the two marked
    values. The constant prediction 1 scores MSE 1/6 = 0.167 (the baseline a model must beat);
    a sequence counts as solved when its absolute error is below 0.04 (the criterion of
    Hochreiter & Schmidhuber 1997, Experiment 4).
``copy`` (:class:`CopyMemory`), Arjovsky et al. (2016)
    ``n_copy`` symbols from ``categories`` categories, then ``T - 1`` blanks, a delimiter and
    ``n_copy`` blanks; the network must output blanks until the delimiter's ``n_copy`` answer
    steps and then the symbols in order. Token ids: 0 blank, 1..categories the symbols,
    categories + 1 the delimiter. Softmax cross-entropy over every step; the memoryless
    baseline (blanks, then uniform guesses) scores ``n_copy log(categories) / (T + 2 n_copy)``.

Both follow the interface of :mod:`lstmlab.tasks.timing` (``sample``, ``evaluate``, ``loss``,
``headline``), so the one training loop trains them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .timing import Batch, _check_batch_arg, _check_dtype, _check_int, _check_rng, _Task

__all__ = ["Adding", "CopyMemory", "LONG_RANGE_TASKS"]


@dataclass(frozen=True)
class Adding(_Task):
    """The adding problem, 2016 form: sum of the two marked values of a T-step sequence.

    ``x`` (T, B, 2): channel 0 the values U[0, 1], channel 1 the markers (one at a step drawn
    uniformly from the first half ``0 .. T//2 - 1``, one from the second half). ``y`` (T, B, 1)
    holds the sum at the last step; the mask counts only the last step.
    """

    name: ClassVar[str] = "adding"
    headline: ClassVar[str] = "mse"
    maximize: ClassVar[bool] = False

    T: int = 100
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _check_int("T", self.T, 4))
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))

    @property
    def input_size(self) -> int:
        return 2

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``info``: ``first``, ``second`` (B,) the marked steps."""
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        half = self.T // 2
        values = rng.random((self.T, B))                                   # (T, B)
        first = rng.integers(0, half, size=B)                              # (B,)
        second = rng.integers(half, self.T, size=B)                        # (B,)
        cols = np.arange(B)
        x = np.zeros((self.T, B, 2), dtype=self.dtype)                     # (T, B, 2)
        x[:, :, 0] = values
        x[first, cols, 1] = 1.0
        x[second, cols, 1] = 1.0
        y = np.zeros((self.T, B, 1), dtype=self.dtype)                     # (T, B, 1)
        y[-1, :, 0] = values[first, cols] + values[second, cols]
        mask = np.zeros((self.T, B), dtype=bool)
        mask[-1] = True
        return Batch(x=x, y=y, mask=mask, info={"first": first, "second": second})

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """``mse`` at the last step (baseline 0.167), ``solve_rate`` (|error| < 0.04)."""
        err = np.asarray(pred)[-1, :, 0] - batch.y[-1, :, 0]               # (B,)
        return {"mse": float(np.mean(err * err)),
                "solve_rate": float(np.mean(np.abs(err) < 0.04)),
                "baseline_mse": 1.0 / 6.0}


@dataclass(frozen=True)
class CopyMemory(_Task):
    """Copy memory: recall ``n_copy`` symbols after a lag of ``T`` steps (see the module doc).

    ``x`` (T + 2 n_copy, B) token ids; ``y`` the same shape, the target ids; the mask counts
    every step (as in the published cross-entropy).
    """

    name: ClassVar[str] = "copy"
    loss: ClassVar[str] = "softmax_ce"
    headline: ClassVar[str] = "xent"
    maximize: ClassVar[bool] = False
    tokens: ClassVar[bool] = True

    T: int = 100
    n_copy: int = 10
    categories: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _check_int("T", self.T, 1))
        object.__setattr__(self, "n_copy", _check_int("n_copy", self.n_copy, 1))
        object.__setattr__(self, "categories", _check_int("categories", self.categories, 2))

    @property
    def length(self) -> int:
        """Steps per sequence, ``T + 2 n_copy``."""
        return self.T + 2 * self.n_copy

    @property
    def input_size(self) -> int:
        return self.categories + 2           # blank, the symbols, the delimiter

    @property
    def output_size(self) -> int:
        return self.categories + 1           # blank and the symbols

    @property
    def baseline(self) -> float:
        """Cross-entropy per step of the memoryless strategy."""
        return self.n_copy * math.log(self.categories) / self.length

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``info``: ``symbols`` (n_copy, B) the ids to recall."""
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        n, L = self.n_copy, self.length
        symbols = rng.integers(1, self.categories + 1, size=(n, B))       # (n, B)
        x = np.zeros((L, B), dtype=np.int64)                               # (L, B)
        x[:n] = symbols
        x[L - n - 1] = self.categories + 1                                 # the delimiter
        y = np.zeros((L, B), dtype=np.int64)
        y[L - n:] = symbols
        mask = np.ones((L, B), dtype=bool)
        return Batch(x=x, y=y, mask=mask, info={"symbols": symbols})

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """``xent`` (nats per step, all steps), ``baseline`` (memoryless), ``recall_accuracy``
        (symbols right at the answer steps), ``solve_rate`` (sequences with all right)."""
        logits = np.asarray(pred, dtype=np.float64)                        # (L, B, V)
        z = logits - logits.max(axis=2, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
        picked = np.take_along_axis(logp, batch.y[:, :, None], axis=2)[:, :, 0]
        n = self.n_copy
        right = logits[-n:].argmax(axis=2) == batch.y[-n:]                 # (n, B)
        return {"xent": float(-picked.mean()), "baseline": self.baseline,
                "recall_accuracy": float(right.mean()),
                "solve_rate": float(right.all(axis=0).mean())}


LONG_RANGE_TASKS = {"adding": Adding, "copy": CopyMemory}
