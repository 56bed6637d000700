"""Character-level language modelling on a text file (pure NumPy).

``charlm`` (:class:`CharLM`), as in char-rnn (Karpathy, Johnson & Fei-Fei 2015)
    The text is cut, in order, into a training, a validation and a test split (by default 90%,
    5%, 5%); the vocabulary is every character of the whole text, sorted. The network reads
    character ``t`` and predicts character ``t + 1`` (softmax cross-entropy); the headline
    metric is bits per character on held-out text, ``bpc = xent / ln 2``.

    Training runs on contiguous streams: the training split is laid out as ``B`` parallel
    streams of ``L = (N - 1) // B`` characters (stream ``b`` starts at character ``b L``), and
    iteration ``i`` is chunk ``k = i mod K`` of ``seq_len`` steps of every stream, ``K = L //
    seq_len`` chunks per epoch. The training loop carries the recurrent state from one chunk to
    the next (truncated BPTT) and starts from zeros at ``k = 0``. Held-out text is scored the
    same way: the split as ``n`` streams, each read from a zero state to its end.

The default corpus is Python as CPython ships it, prose and code: the language reference in
``pydoc_data/topics.py`` (79 topics) and the source of 26 pure-Python standard-library modules
(:data:`CORPUS_MODULES`), 937,481 characters and 109 distinct ones with Python 3.11.7. The
documents are laid end to end, each next one taken from whichever kind has fewer characters so
far, so prose and code alternate throughout; whole documents, so the splits' shares differ
(with 3.11.7, code is 51% of the training split, 25% of the validation and 67% of the test
split). It is on every machine with Python, no download. ``data`` takes any UTF-8 file. The
run folder keeps the vocabulary, the split boundaries and SHA-256 hashes of the text and of
each split (:meth:`CharLM.describe`); :meth:`CharLM.check_description` refuses a
file that has changed (or another Python's corpus).
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .timing import Batch, _check_batch_arg, _check_int, _Task

__all__ = ["CharLM", "Corpus", "load_corpus", "default_corpus_text", "TEXT_TASKS", "SPLITS"]

SPLITS = ("train", "valid", "test")
#: Name of the built-in corpus (``data=None``).
DEFAULT_CORPUS = "python: pydoc_data/topics.py + 26 stdlib modules"
#: The standard-library modules of the built-in corpus: pure Python, each under 60 KB, present in
#: CPython 3.9 and later, their text ASCII but for a few names and symbols.
CORPUS_MODULES = ("abc", "base64", "bisect", "calendar", "colorsys", "contextlib", "copy", "csv",
                  "dataclasses", "fnmatch", "fractions", "functools", "getopt", "glob", "graphlib",
                  "heapq", "numbers", "operator", "pprint", "queue", "random", "reprlib", "sched",
                  "statistics", "string", "textwrap")


def default_corpus_text() -> str:
    """The built-in corpus: CPython's language reference (``pydoc_data.topics.topics`` in key
    order) and the source of :data:`CORPUS_MODULES` (in that order), merged so that each next
    document comes from the kind (prose or code) with fewer characters so far; blank lines
    between documents."""
    import sysconfig
    from pydoc_data.topics import topics
    prose = [topics[k] for k in sorted(topics)]
    lib = sysconfig.get_paths()["stdlib"]
    code = []
    for name in CORPUS_MODULES:
        path = os.path.join(lib, name + ".py")
        try:
            with open(path, encoding="utf-8") as f:
                code.append(f.read())
        except OSError as e:
            raise ValueError(f"data: the built-in corpus needs the standard library's {name}.py "
                             f"({path}: {e.strerror}); pass a text file with --data") from None
    docs, i, j, n_prose, n_code = [], 0, 0, 0, 0
    while i < len(prose) or j < len(code):
        if j == len(code) or (i < len(prose) and n_prose <= n_code):
            docs.append(prose[i])
            n_prose, i = n_prose + len(prose[i]), i + 1
        else:
            docs.append(code[j])
            n_code, j = n_code + len(code[j]), j + 1
    return "\n\n".join(docs)


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


@dataclass(frozen=True, eq=False)
class Corpus:
    """A text, its vocabulary (sorted characters), its ids (N,) and split boundaries."""

    source: str
    text: str
    vocab: str
    ids: np.ndarray                   # (N,) int64 positions in ``vocab``
    bounds: tuple                     # ((0, a), (a, b), (b, N)): train, valid, test

    def split(self, name: str) -> np.ndarray:
        lo, hi = self.bounds[SPLITS.index(name)]
        return self.ids[lo:hi]

    def encode(self, s: str, what: str = "text") -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.vocab)}
        bad = sorted({ch for ch in s if ch not in index})
        if bad:
            raise ValueError(f"{what}: characters not in the model's vocabulary: "
                             + " ".join(repr(c) for c in bad[:10]))
        return np.array([index[ch] for ch in s], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def _read_text(path: str) -> str:
    if not os.path.isfile(path):
        raise ValueError(f"data: no such file {path!r}")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise ValueError(f"data: {path} is empty")
    if b"\x00" in raw:
        raise ValueError(f"data: {path} looks binary (it contains NUL bytes); expected UTF-8 text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"data: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None


@functools.lru_cache(maxsize=8)
def _corpus(source: str, stamp, valid_frac: float, test_frac: float) -> Corpus:
    """Read and split ``source``; ``stamp`` (size, mtime) is only part of the cache key, so an
    edited file is read again."""
    text = default_corpus_text() if source == DEFAULT_CORPUS else _read_text(source)
    vocab = "".join(sorted(set(text)))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))   # (N,)
    N = len(text)
    b = N - int(round(N * test_frac))
    a = b - int(round(N * valid_frac))
    return Corpus(source, text, vocab, ids, ((0, a), (a, b), (b, N)))


def load_corpus(data: str | None = None, valid_frac: float = 0.05,
                test_frac: float = 0.05) -> Corpus:
    """The corpus of ``data`` (a UTF-8 file; None: the built-in one), cached per file version."""
    if data is None:
        return _corpus(DEFAULT_CORPUS, None, valid_frac, test_frac)
    path = os.path.abspath(os.fspath(data))
    try:
        st = os.stat(path)
        stamp = (st.st_size, st.st_mtime_ns)
    except OSError:
        raise ValueError(f"data: no such file {data!r}") from None
    return _corpus(path, stamp, valid_frac, test_frac)


@dataclass(frozen=True)
class CharLM(_Task):
    """Next-character prediction on a text (see the module doc).

    ``data`` a UTF-8 file (None: the built-in corpus), ``seq_len`` the steps of one training
    chunk, ``valid_frac``/``test_frac`` the held-out fractions, ``split`` which split
    :meth:`sample` returns (the loop's test set is ``valid``; ``test`` is scored once at the end).
    """

    name: ClassVar[str] = "charlm"
    loss: ClassVar[str] = "softmax_ce"
    headline: ClassVar[str] = "bpc"
    maximize: ClassVar[bool] = False
    tokens: ClassVar[bool] = True
    #: The loop carries the state across iterations (:meth:`stream_batch`).
    stream: ClassVar[bool] = True
    #: Held-out streams are scored this many steps at a time, the state carried (memory bound).
    eval_steps: ClassVar[int] = 256

    data: str | None = None
    seq_len: int = 100
    valid_frac: float = 0.05
    test_frac: float = 0.05
    split: str = "valid"

    def __post_init__(self) -> None:
        object.__setattr__(self, "seq_len", _check_int("seq_len", self.seq_len, 1))
        for n in ("valid_frac", "test_frac"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 0.5:
                raise ValueError(f"{n}: expected a fraction in (0, 0.5), got {v!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        c = self.corpus
        for name in SPLITS:
            n = len(c.split(name))
            if n < self.seq_len + 1:
                raise ValueError(f"data: the {name} split has {n} characters, fewer than one chunk "
                                 f"of seq_len + 1 = {self.seq_len + 1}; use a longer file or a "
                                 f"smaller --seq-len")

    @property
    def corpus(self) -> Corpus:
        return load_corpus(self.data, self.valid_frac, self.test_frac)

    @property
    def input_size(self) -> int:
        return len(self.corpus.vocab)

    @property
    def output_size(self) -> int:
        return len(self.corpus.vocab)

    # -- training streams -------------------------------------------------------------------
    def chunks_per_epoch(self, batch: int) -> int:
        """K: training chunks of ``seq_len`` steps per pass over the ``batch`` streams."""
        B = _check_batch_arg(batch)
        n = len(self.corpus.split("train"))
        K = ((n - 1) // B) // self.seq_len
        if K < 1:
            raise ValueError(f"data: the training split has {n} characters, fewer than batch x "
                             f"seq_len + 1 = {B * self.seq_len + 1}; use a longer file or a smaller "
                             f"--batch or --seq-len")
        return K

    def stream_batch(self, batch: int, it: int) -> Batch:
        """Chunk ``it mod K`` of the ``batch`` training streams: x, y (seq_len, B) ids, all
        steps counted; ``info["reset"]`` is True at the first chunk of an epoch (zero state)."""
        K = self.chunks_per_epoch(batch)
        k = _check_int("it", it, 0) % K
        ids = self.corpus.split("train")
        L = (len(ids) - 1) // batch
        starts = np.arange(batch) * L + k * self.seq_len                       # (B,)
        pos = starts[None, :] + np.arange(self.seq_len)[:, None]               # (t, B)
        x, y = ids[pos], ids[pos + 1]
        return Batch(x=x, y=y, mask=np.ones(x.shape, dtype=bool),
                     info={"reset": np.array(k == 0), "epoch": np.array(it // K)})

    def sample(self, batch: int, rng: np.random.Generator | None = None) -> Batch:
        """The ``split`` as ``batch`` contiguous streams (rng unused: held-out text is fixed):
        x, y (L, n) ids with L = (N - 1) // n."""
        B = _check_batch_arg(batch)
        ids = self.corpus.split(self.split)
        L = (len(ids) - 1) // B
        if L < 1:
            raise ValueError(f"batch: the {self.split} split has {len(ids)} characters, too few "
                             f"for {B} streams")
        pos = np.arange(B)[None, :] * L + np.arange(L)[:, None]                # (L, B)
        x, y = ids[pos], ids[pos + 1]
        return Batch(x=x, y=y, mask=np.ones(x.shape, dtype=bool))

    def evaluate(self, pred, batch: Batch) -> dict[str, float]:
        """``xent`` (nats per character), ``bpc`` (bits per character), ``accuracy`` (the
        argmax is the next character) over every step; pred (L, n, V) logits."""
        logits = np.asarray(pred, dtype=np.float64)
        z = logits - logits.max(axis=2, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))               # (L, n, V)
        picked = np.take_along_axis(logp, batch.y[:, :, None], axis=2)[:, :, 0]
        xent = float(-picked.mean())
        return {"xent": xent, "bpc": xent / math.log(2),
                "accuracy": float((logits.argmax(axis=2) == batch.y).mean())}

    # -- what the run folder keeps ------------------------------------------------------------
    def describe(self) -> dict:
        """Source, vocabulary, split boundaries and SHA-256 hashes (of the text and each split)."""
        c = self.corpus
        return {"source": c.source, "n_chars": len(c.text), "vocab": c.vocab,
                "vocab_sha256": _sha(c.vocab), "text_sha256": _sha(c.text),
                "splits": {n: {"start": lo, "end": hi, "sha256": _sha(c.text[lo:hi])}
                           for n, (lo, hi) in zip(SPLITS, c.bounds)}}

    def check_description(self, saved: dict, where: str = "data") -> None:
        """ValueError unless the text rebuilds the saved vocabulary and splits exactly."""
        mine = self.describe()
        for key in ("vocab_sha256", "text_sha256"):
            if saved.get(key) != mine[key]:
                was = saved.get("source")
                trained_on = f"; the run was trained on {was}" if was and was != mine["source"] else ""
                raise ValueError(f"{where}: {self.corpus.source} is not the text the run was trained "
                                 f"on ({key.split('_')[0]} hash differs{trained_on})")
        if saved.get("splits") != mine["splits"]:
            raise ValueError(f"{where}: the splits of {self.corpus.source} differ from the run's")


TEXT_TASKS = {CharLM.name: CharLM}
