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

``adding-1997``, ``multiplication`` (:class:`Adding1997`), Hochreiter & Schmidhuber (1997),
Experiments 4 and 5
    Pairs (value, marker) over a length drawn from ``[T, T + T/10]``; the first marked value
    among the first 10 pairs, the second among the first ``T/2 - 1``; marker -1 on the first
    and last pairs where they are not marked. Adding: values U[-1, 1], target
    ``0.5 + (X1 + X2) / 4``; multiplication: values U[0, 1], target ``X1 X2``. A sequence is
    correct when its final absolute error is below 0.04; the paper counts wrong sequences of
    2560 test sequences.
``temporal-order`` (:class:`TemporalOrder`), Experiment 6a/6b
    Sequences of 100-110 symbols from {a, b, c, d} between a start B and an end E, with 2 (6a:
    4 classes) or 3 (6b: 8 classes) relevant symbols X/Y at the paper's positions; the class
    of their order is the target at the last step. The paper counts a sequence correct when
    every output unit is within 0.3 of its target; we train with softmax cross-entropy and
    score both that criterion (on the softmax outputs) and the accuracy.

All follow the interface of :mod:`lstmlab.tasks.timing` (``sample``, ``evaluate``, ``loss``,
``headline``), so the one training loop trains them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .timing import Batch, _check_batch_arg, _check_dtype, _check_int, _check_rng, _Task

__all__ = ["Adding", "Adding1997", "CopyMemory", "TemporalOrder", "LONG_RANGE_TASKS"]


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


@dataclass(frozen=True)
class Adding1997(_Task):
    """The adding (``op="add"``) or multiplication (``op="mul"``) problem of Hochreiter &
    Schmidhuber (1997), Experiments 4 and 5 (see the module doc). ``x`` (L, B, 2) with
    ``L = T + T // 10`` the longest length; each sequence's length is drawn from
    ``[T, T + T // 10]`` and its target sits at its own last step (the mask marks it)."""

    name: ClassVar[str] = "adding-1997"
    headline: ClassVar[str] = "solve_rate"

    T: int = 100
    op: str = "add"
    dtype: Any = np.float64

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _check_int("T", self.T, 24))
        if self.op not in ("add", "mul"):
            raise ValueError(f"op: expected 'add' or 'mul', got {self.op!r}")
        object.__setattr__(self, "dtype", _check_dtype(self.dtype))

    @property
    def input_size(self) -> int:
        return 2

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``info``: ``lengths`` (B,), ``first``, ``second`` (B,) the marked steps."""
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        L = self.T + self.T // 10
        lengths = rng.integers(self.T, L + 1, size=B)                      # (B,)
        lo = -1.0 if self.op == "add" else 0.0
        values = rng.uniform(lo, 1.0, size=(L, B))                          # (L, B)
        first = rng.integers(0, 10, size=B)
        second = rng.integers(0, self.T // 2 - 1, size=B)
        second = np.where(second == first, (second + 1) % (self.T // 2 - 1), second)
        cols = np.arange(B)
        x = np.zeros((L, B, 2), dtype=self.dtype)
        x[:, :, 0] = values
        x[0, :, 1] = -1.0
        x[lengths - 1, cols, 1] = -1.0
        x[first, cols, 1] = 1.0
        x[second, cols, 1] = 1.0
        x1 = np.where(first == 0, 0.0, values[first, cols])                # the paper's rare case
        x[first, cols, 0] = x1
        x2 = values[second, cols]
        target = 0.5 + (x1 + x2) / 4.0 if self.op == "add" else x1 * x2
        steps = np.arange(L)[:, None]
        x *= (steps < lengths[None, :])[:, :, None]                         # nothing after the end
        y = np.zeros((L, B, 1), dtype=self.dtype)
        y[lengths - 1, cols, 0] = target
        mask = steps == (lengths - 1)[None, :]                              # (L, B)
        return Batch(x=x, y=y, mask=mask, info={"lengths": lengths, "first": first, "second": second})

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """``mse`` and ``solve_rate`` (final |error| < 0.04), ``wrong`` (count of sequences)."""
        p = np.asarray(pred)[:, :, 0][batch.mask]
        err = p - batch.y[:, :, 0][batch.mask]
        bad = ~(np.abs(err) < 0.04)
        return {"mse": float(np.mean(err * err)), "solve_rate": float(1.0 - bad.mean()),
                "wrong": float(bad.sum())}


@dataclass(frozen=True)
class TemporalOrder(_Task):
    """Temporal order, Hochreiter & Schmidhuber (1997) Experiment 6a (``n_relevant=2``, 4
    classes) or 6b (``n_relevant=3``, 8 classes); see the module doc. Token ids: a, b, c, d =
    0-3, X = 4, Y = 5, B = 6, E = 7; ``x`` (110, B) padded after each sequence's end."""

    name: ClassVar[str] = "temporal-order"
    loss: ClassVar[str] = "softmax_ce"
    headline: ClassVar[str] = "solve_rate"
    tokens: ClassVar[bool] = True

    n_relevant: int = 2

    #: Where the relevant symbols go (0-based steps, inclusive ranges), as in the paper.
    POSITIONS: ClassVar[dict] = {2: ((10, 20), (50, 60)), 3: ((10, 20), (33, 43), (66, 76))}

    def __post_init__(self) -> None:
        if self.n_relevant not in self.POSITIONS:
            raise ValueError(f"n_relevant: expected 2 (6a) or 3 (6b), got {self.n_relevant!r}")

    @property
    def input_size(self) -> int:
        return 8

    @property
    def output_size(self) -> int:
        return 2 ** self.n_relevant

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``info``: ``lengths`` (B,), ``label`` (B,) the class."""
        B = _check_batch_arg(batch)
        rng = _check_rng(rng)
        L = 110
        lengths = rng.integers(100, L + 1, size=B)
        x = rng.integers(0, 4, size=(L, B))
        cols = np.arange(B)
        x[0] = 6
        x[lengths - 1, cols] = 7
        label = np.zeros(B, dtype=np.int64)
        for lo, hi in self.POSITIONS[self.n_relevant]:
            sym = rng.integers(0, 2, size=B)                                # 0: X, 1: Y
            x[rng.integers(lo, hi + 1, size=B), cols] = 4 + sym
            label = 2 * label + sym
        steps = np.arange(L)[:, None]
        x = np.where(steps < lengths[None, :], x, 0)
        y = np.zeros((L, B), dtype=np.int64)
        y[lengths - 1, cols] = label
        mask = steps == (lengths - 1)[None, :]
        return Batch(x=x, y=y, mask=mask, info={"lengths": lengths, "label": label})

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """``accuracy`` (argmax), ``solve_rate`` (every softmax output within 0.3 of the one-hot
        target, the paper's criterion), ``xent`` at the last step."""
        logits = np.asarray(pred, dtype=np.float64)[batch.mask]             # (B, K)
        label = batch.y[batch.mask]
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        onehot = np.eye(self.output_size)[label]
        return {"accuracy": float(np.mean(p.argmax(1) == label)),
                "solve_rate": float(np.mean(np.all(np.abs(p - onehot) < 0.3, axis=1))),
                "xent": float(-np.mean(np.log(p[np.arange(len(label)), label] + 1e-300)))}


class _Multiplication(Adding1997):
    name: ClassVar[str] = "multiplication"

    @classmethod
    def create(cls, **kwargs: Any) -> "Adding1997":
        if "op" in kwargs:
            raise ValueError("op: the multiplication task is op='mul'; use adding-1997 for 'add'")
        return Adding1997(op="mul", **kwargs)


LONG_RANGE_TASKS = {"adding": Adding, "copy": CopyMemory, "adding-1997": Adding1997,
                    "multiplication": _Multiplication, "temporal-order": TemporalOrder}
