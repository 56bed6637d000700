"""Sequence-to-sequence toys, generated from a seed: reverse, sort, addition, dates in words.

Every task maps a source token sequence to a target sequence of its own vocabulary; ids 0, 1, 2
of both are PAD, BOS and EOS (:mod:`lstmlab.core.seq2seq`). A batch is time-major::

    x     (S, B) source ids, PAD after each sequence's length (info["src_lengths"])
    y     (T, B) target ids, EOS at step tgt_lengths - 1, PAD after
    mask  (T, B) the counted target steps (t < tgt_lengths, EOS included)

``evaluate(pred, batch)`` takes decoded ids (T', B) (what the model emitted, EOS at the end of
each finished sequence, PAD after) and reports ``exact_match`` (the whole target sequence, EOS
included, right) and ``token_accuracy`` (target steps right at their position).

* ``reverse``: ``length`` symbols of ``symbols`` kinds -> the same, reversed;
* ``sort``: the same, sorted;
* ``addition``: two numbers of 1 to ``digits`` digits, ``a+b`` -> the digits of a + b;
* ``dates``: a date between 1950 and 2049 written in one of nine formats (``march 3, 2021``,
  ``3rd of march 2021``, ``mar 3 2021``, ``3 mar 2021``, ``03/03/2021`` ...) -> ``2021-03-03``,
  character by character. The split holds out whole input patterns: a quarter of the (format,
  month) combinations never occur in training (``split="train"``) and are all the test set has
  (``split="test"``), so a test date is written in a format the model has seen, with a month
  word it has seen (every full name and every three-letter abbreviation occurs in training,
  the abbreviations in two formats), but never in that combination.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .timing import Batch, _check_batch_arg, _check_int, _check_rng, _Task

__all__ = ["Reverse", "Sort", "Addition", "Dates", "SEQ2SEQ_TASKS"]

PAD, BOS, EOS = 0, 1, 2
_FIRST = 3                       # the first id that is a symbol


class _Seq2SeqTask(_Task):
    """What the seq2seq tasks share: the loop builds an encoder-decoder for them (``kind``)."""

    kind: ClassVar[str] = "seq2seq"
    loss: ClassVar[str] = "softmax_ce"
    headline: ClassVar[str] = "exact_match"
    maximize: ClassVar[bool] = True
    tokens: ClassVar[bool] = True

    def pairs(self, batch: int, rng) -> list[tuple[list[int], list[int]]]:
        """``batch`` (source ids, target ids) pairs, without EOS."""
        raise NotImplementedError

    def sample(self, batch: int, rng: np.random.Generator) -> Batch:
        """``info``: ``src_lengths``, ``tgt_lengths`` (B,), the latter counting EOS."""
        B = _check_batch_arg(batch)
        pairs = self.pairs(B, _check_rng(rng))
        S = max(len(s) for s, _ in pairs)
        T = max(len(t) for _, t in pairs) + 1
        x = np.full((S, B), PAD, dtype=np.int64)
        y = np.full((T, B), PAD, dtype=np.int64)
        for b, (s, t) in enumerate(pairs):
            x[:len(s), b] = s
            y[:len(t), b] = t
            y[len(t), b] = EOS
        src_n = np.array([len(s) for s, _ in pairs])
        tgt_n = np.array([len(t) + 1 for _, t in pairs])
        mask = np.arange(T)[:, None] < tgt_n[None, :]
        return Batch(x=x, y=y, mask=mask, info={"src_lengths": src_n, "tgt_lengths": tgt_n})

    def evaluate(self, pred: Any, batch: Batch) -> dict[str, float]:
        """``exact_match`` and ``token_accuracy`` of decoded ids ``pred`` (T', B)."""
        pred = np.asarray(pred)
        T, B = batch.y.shape
        if pred.ndim != 2 or pred.shape[1] != B:
            raise ValueError(f"pred: expected decoded ids (steps, {B}), got shape {pred.shape}")
        P = np.full((max(T, pred.shape[0]), B), PAD, dtype=np.int64)
        P[:pred.shape[0]] = pred
        right = (P[:T] == batch.y) & batch.mask                              # (T, B)
        n = batch.info["tgt_lengths"]
        exact = right.sum(axis=0) == n
        exact &= (P[T:] == PAD).all(axis=0) if P.shape[0] > T else True    # nothing after EOS
        return {"exact_match": float(exact.mean()),
                "token_accuracy": float(right.sum() / batch.mask.sum())}

    # -- text form (``lstmlab translate``) --------------------------------------------------
    src_chars: ClassVar[str] = ""
    tgt_chars: ClassVar[str] = ""

    def encode_text(self, text: str) -> list[int]:
        """Source ids of ``text``, one character per id (ValueError naming the characters that
        are not in the source vocabulary, or for an empty text)."""
        chars = self.src_chars
        if not text:
            raise ValueError("text: empty source")
        bad = sorted(set(text) - set(chars))
        if bad:
            raise ValueError(f"text: characters {''.join(bad)!r} are not in the source vocabulary {chars!r}")
        return [_FIRST + chars.index(c) for c in text]

    def decode_text(self, ids) -> str:
        """The target characters of ``ids`` (PAD, BOS, EOS left out)."""
        chars = self.tgt_chars
        return "".join(chars[i - _FIRST] for i in ids if _FIRST <= i < _FIRST + len(chars))

    def _lengths(self, rng, B):
        return rng.integers(self.min_length, self.max_length + 1, size=B)

    def _check_lengths(self):
        object.__setattr__(self, "min_length", _check_int("min_length", self.min_length, 1))
        object.__setattr__(self, "max_length", _check_int("max_length", self.max_length, 1))
        if self.max_length < self.min_length:
            raise ValueError(f"max_length: expected >= min_length ({self.min_length}), got {self.max_length}")


@dataclass(frozen=True)
class Reverse(_Seq2SeqTask):
    """Reverse a sequence of ``min_length`` to ``max_length`` symbols of ``symbols`` kinds."""

    name: ClassVar[str] = "reverse"
    min_length: int = 5
    max_length: int = 10
    symbols: int = 10

    def __post_init__(self) -> None:
        self._check_lengths()
        object.__setattr__(self, "symbols", _check_int("symbols", self.symbols, 2))

    @property
    def input_size(self) -> int:
        return _FIRST + self.symbols

    @property
    def output_size(self) -> int:
        return _FIRST + self.symbols

    @property
    def src_chars(self) -> str:
        """Symbol k is the k-th lowercase letter (the text form needs symbols <= 26)."""
        if self.symbols > 26:
            raise ValueError(f"text: {self.name} with {self.symbols} symbols has no text form (at most 26)")
        return "abcdefghijklmnopqrstuvwxyz"[:self.symbols]

    tgt_chars = src_chars

    def _map(self, s: list[int]) -> list[int]:
        return s[::-1]

    def pairs(self, batch, rng):
        out = []
        for n in self._lengths(rng, batch):
            s = list(rng.integers(_FIRST, _FIRST + self.symbols, size=n))
            out.append((s, self._map(s)))
        return out


@dataclass(frozen=True)
class Sort(Reverse):
    """Sort a sequence of symbols (ascending ids)."""

    name: ClassVar[str] = "sort"

    def _map(self, s: list[int]) -> list[int]:
        return sorted(s)


@dataclass(frozen=True)
class Addition(_Seq2SeqTask):
    """``a+b`` -> a + b, numbers of 1 to ``digits`` digits written most significant first."""

    name: ClassVar[str] = "addition"
    src_chars: ClassVar[str] = "0123456789+"
    tgt_chars: ClassVar[str] = "0123456789"
    digits: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "digits", _check_int("digits", self.digits, 1))

    @property
    def input_size(self) -> int:
        return _FIRST + 11                         # 0-9 and "+"

    @property
    def output_size(self) -> int:
        return _FIRST + 10

    @staticmethod
    def _ids(number: int) -> list[int]:
        return [_FIRST + int(c) for c in str(number)]

    def pairs(self, batch, rng):
        out = []
        for _ in range(batch):
            a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, self.digits + 1))))
                    for _ in range(2))
            out.append((self._ids(a) + [_FIRST + 10] + self._ids(b), self._ids(a + b)))
        return out


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _ordinal(d: int) -> str:
    return f"{d}{'th' if 11 <= d % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(d % 10, 'th')}"


#: The nine ways a date is written (the source side of ``dates``). The abbreviations have two
#: formats (3 and 8) whose held-out months differ, so each abbreviation is seen in training:
#: with one abbreviated format only, its held-out months (``jan``, ``may``, ``sep``) would be
#: written in a way no training source has (``may`` aside), which no held-out pattern is meant
#: to ask.
DATE_FORMATS = (
    lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{_ordinal(d.day)} of {_MONTHS[d.month - 1]}, {d.year}",
    lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    lambda d: f"{_DAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {_ordinal(d.day)} {d.year}",
    lambda d: f"{d.day}.{d.month}.{d.year % 100:02d}",
    lambda d: f"{_MONTHS[d.month - 1]} {_ordinal(d.day)}, '{d.year % 100:02d}",
    lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
)
_SRC_CHARS = " ',./0123456789abcdefghijklmnopqrstuvwxyz"
_TGT_CHARS = "-0123456789"


@dataclass(frozen=True)
class Dates(_Seq2SeqTask):
    """Dates in words and formats -> ISO dates, character by character (see the module doc).
    ``split``: ``train`` (the seen (format, month) combinations) or ``test`` (the held-out
    quarter)."""

    name: ClassVar[str] = "dates"
    src_chars: ClassVar[str] = _SRC_CHARS
    tgt_chars: ClassVar[str] = _TGT_CHARS
    split: str = "train"

    def __post_init__(self) -> None:
        if self.split not in ("train", "test"):
            raise ValueError(f"split: expected 'train' or 'test', got {self.split!r}")

    @property
    def input_size(self) -> int:
        return _FIRST + len(_SRC_CHARS)

    @property
    def output_size(self) -> int:
        return _FIRST + len(_TGT_CHARS)

    @staticmethod
    def held_out(fmt: int, month: int) -> bool:
        """Whether (format index, month 1-12) is a test-only combination (3 months per format)."""
        return (month + fmt) % 4 == 0

    def pairs(self, batch, rng):
        out = []
        want = self.split == "test"
        while len(out) < batch:
            fmt = int(rng.integers(0, len(DATE_FORMATS)))
            day = _dt.date(1950, 1, 1) + _dt.timedelta(days=int(rng.integers(0, 36525)))
            if self.held_out(fmt, day.month) != want:
                continue
            out.append(([_FIRST + _SRC_CHARS.index(c) for c in DATE_FORMATS[fmt](day)],
                        [_FIRST + _TGT_CHARS.index(c) for c in day.isoformat()]))
        return out


SEQ2SEQ_TASKS = {t.name: t for t in (Reverse, Sort, Addition, Dates)}
