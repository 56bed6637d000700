"""Bach chorales as piano rolls, from music21's corpus (the JSB Chorales benchmark rebuilt).

``jsb`` (:class:`Chorales`), the polyphonic-music task of Boulanger-Lewandowski et al. (2012)
that Greff et al. (2017) used
    Each chorale is a piano roll ``R`` (L, 88) of 0/1: ``R[t, k] = 1`` when MIDI pitch ``21 + k``
    sounds at the start of quarter note ``t`` (a note of onset ``a`` and length ``d`` sounds at
    frames ``a <= t < a + d``; ties merged). Every chorale is transposed by the shift in
    [-6, 5] semitones that takes the tonic of music21's key analysis (Krumhansl-Schmuckler) to
    C, so the majors are in C major and the minors in C minor. The network reads frame ``t`` and
    predicts frame ``t + 1`` with independent Bernoulli outputs; the loss and the headline
    metric are the frame-level negative log-likelihood in nats,
    ``nll = mean over predicted frames of -sum_k [y log p + (1 - y) log (1 - p)]``.

The corpus: music21's ``corpus.chorales.Iterator()`` (371 chorales in Riemenschneider order).
The original JSB set has 382 (229/76/77 train/validation/test) from a different edition, so
our numbers compare with the published ones only roughly. Our split is fixed by position in
that order: chorale ``n`` is validation when ``n % 5 == 3``, test when ``n % 5 == 4``, training
otherwise (223/74/74 of 371).

Parsing 371 scores takes about two minutes; :func:`load_chorales` caches the rolls in one
``.npz`` (``LSTMLAB_CACHE`` or ``~/.cache/lstmlab``) with the SHA-256 of its arrays, checked
on every load. ``limit`` keeps the first N chorales only (tests, quick runs); the split rule is
the same.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .timing import Batch, _check_batch_arg, _check_int, _check_rng, _Task

__all__ = ["Chorales", "ChoraleSet", "load_chorales", "piano_roll", "CHORALE_TASKS"]

KEYS = 88                       # piano keys, MIDI 21 (A0) to 108 (C8)
LOWEST = 21
SPLITS = ("train", "valid", "test")


def split_of(n: int) -> str:
    """The split of the chorale at position ``n`` of the corpus order."""
    return {3: "valid", 4: "test"}.get(n % 5, "train")


def piano_roll(notes, length: int | None = None, shift: int = 0) -> np.ndarray:
    """(L, 88) 0/1 roll of ``notes``: (onset, duration, MIDI pitch) in quarter notes; frame t is
    on for a note when onset <= t < onset + duration; pitches move by ``shift`` semitones.
    ``length`` defaults to the end of the last note, rounded up."""
    notes = [(float(a), float(d), int(p) + shift) for a, d, p in notes]
    if length is None:
        length = int(np.ceil(max((a + d for a, d, _ in notes), default=0.0)))
    roll = np.zeros((length, KEYS), dtype=np.uint8)                           # (L, 88)
    for a, d, p in notes:
        if not LOWEST <= p < LOWEST + KEYS:
            raise ValueError(f"notes: MIDI pitch {p} is outside the piano's 21-108")
        t0, t1 = int(np.ceil(a - 1e-9)), int(np.ceil(a + d - 1e-9))
        roll[t0:min(t1, length), p - LOWEST] = 1
    return roll


def _tonic_shift(pitch_class: int) -> int:
    """The shift in [-6, 5] semitones that takes ``pitch_class`` to C."""
    return (-pitch_class + 6) % 12 - 6


def _parse(name: str) -> tuple[np.ndarray, str]:
    """One chorale of music21's corpus -> its roll transposed to C, and its mode."""
    from music21 import corpus
    score = corpus.parse(name).stripTies()
    key = score.analyze("key")
    notes = [(n.offset, n.quarterLength, p.midi) for n in score.flatten().notes
             for p in n.pitches if n.quarterLength > 0]
    return piano_roll(notes, shift=_tonic_shift(key.tonic.pitchClass)), key.mode


@dataclass(frozen=True, eq=False)
class ChoraleSet:
    """The parsed corpus: names, modes and rolls (each (L_n, 88) uint8), with their split."""

    names: tuple
    modes: tuple
    rolls: tuple
    sha256: str

    def split(self, name: str) -> list[np.ndarray]:
        if name not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {name!r}")
        return [r for n, r in enumerate(self.rolls) if split_of(n) == name]


def _digest(lengths: np.ndarray, frames: np.ndarray) -> str:
    h = hashlib.sha256(np.ascontiguousarray(lengths, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())
    return h.hexdigest()


def cache_dir() -> str:
    return os.environ.get("LSTMLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lstmlab")


@functools.lru_cache(maxsize=4)
def load_chorales(limit: int | None = None, progress: bool = False) -> ChoraleSet:
    """music21's chorales as rolls (see the module doc), from the cache when it is there."""
    try:
        import music21
        from music21 import corpus
    except ImportError as e:
        raise ValueError("task: the chorales need music21 (pip install 'lstmlab[music]')") from e
    names = list(corpus.chorales.Iterator(returnType="filename"))
    if limit is not None:
        names = names[:_check_int("limit", limit, 5)]
    path = os.path.join(cache_dir(), f"jsb-music21-{music21.__version__}-{len(names)}.npz")
    if os.path.exists(path):
        z = np.load(path, allow_pickle=False)
        lengths, frames = z["lengths"], z["frames"]
        if str(z["sha256"]) != _digest(lengths, frames) or list(z["names"]) != names:
            raise ValueError(f"task: the chorale cache {path} is damaged or stale; delete it")
        modes = tuple(str(m) for m in z["modes"])
    else:
        rolls, modes = [], []
        it = names
        if progress:
            from tqdm import tqdm
            it = tqdm(names, desc="parsing chorales", unit="chorale")
        for name in it:
            roll, mode = _parse(name)
            rolls.append(roll)
            modes.append(mode)
        lengths = np.array([len(r) for r in rolls], dtype=np.int64)
        frames = np.concatenate(rolls).astype(np.uint8)                       # (sum L, 88)
        os.makedirs(cache_dir(), exist_ok=True)
        tmp = path + f".{os.getpid()}.tmp.npz"
        np.savez_compressed(tmp, names=np.array(names), modes=np.array(modes), lengths=lengths,
                            frames=frames, sha256=np.array(_digest(lengths, frames)))
        os.replace(tmp, path)
        modes = tuple(modes)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    rolls = tuple(frames[bounds[i]:bounds[i + 1]] for i in range(len(lengths)))
    return ChoraleSet(tuple(names), modes, rolls, _digest(lengths, frames))


@dataclass(frozen=True)
class Chorales(_Task):
    """``jsb``: next-frame prediction on the Bach chorales (see the module doc). ``split``: the
    chorales a batch comes from; ``limit``: the first N chorales of the corpus only."""

    name: ClassVar[str] = "jsb"
    loss: ClassVar[str] = "bernoulli_nll"
    headline: ClassVar[str] = "nll"
    maximize: ClassVar[bool] = False
    split: str = "train"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.limit is not None:
            _check_int("limit", self.limit, 5)

    @property
    def chorales(self) -> list[np.ndarray]:
        return load_chorales(self.limit).split(self.split)

    @property
    def input_size(self) -> int:
        return KEYS

    @property
    def output_size(self) -> int:
        return KEYS

    def sample(self, batch: int, rng: np.random.Generator | None = None) -> Batch:
        """``split="train"``: ``batch`` chorales drawn with replacement; a held-out split: all
        its chorales, in order (``batch`` and ``rng`` unused: held-out music is fixed). x (T, B,
        88) frames 0..L-2, y frames 1..L-1, mask (T, B) the predicted frames; info["lengths"]."""
        rolls = self.chorales
        if self.split == "train":
            _check_batch_arg(batch)
            rng = _check_rng(rng)
            rolls = [rolls[i] for i in rng.integers(0, len(rolls), size=batch)]
        lengths = np.array([len(r) - 1 for r in rolls], dtype=np.int64)       # predicted frames
        T, B = int(lengths.max()), len(rolls)
        x = np.zeros((T, B, KEYS))                                             # (T, B, 88)
        y = np.zeros((T, B, KEYS))
        for b, r in enumerate(rolls):
            x[:len(r) - 1, b] = r[:-1]
            y[:len(r) - 1, b] = r[1:]
        mask = np.arange(T)[:, None] < lengths[None, :]                        # (T, B)
        return Batch(x, y, mask, {"lengths": lengths})

    def evaluate(self, pred, batch: Batch) -> dict[str, float]:
        """``nll``: frame-level NLL (nats) of logits ``pred`` (T, B, 88) over the predicted
        frames; ``frame_accuracy``: the expected-frame accuracy of Bay et al. (2009) with the
        outputs thresholded at 0.5, TP / (TP + FP + FN) summed over frames."""
        from ..core.losses import bernoulli_nll
        pred = np.asarray(pred, dtype=np.float64)
        nll, _ = bernoulli_nll(pred, batch.y, batch.mask)
        on = (pred > 0) & batch.mask[:, :, None]
        y = (batch.y > 0.5) & batch.mask[:, :, None]
        tp, fp, fn = (on & y).sum(), (on & ~y).sum(), (~on & y).sum()
        return {"nll": nll, "frame_accuracy": float(tp / max(tp + fp + fn, 1))}


CHORALE_TASKS = {Chorales.name: Chorales}
