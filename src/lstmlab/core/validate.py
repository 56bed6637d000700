"""Checks at the public boundary: every failure is a ValueError naming the argument."""
from __future__ import annotations

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def check_dtype(dtype, name: str = "dtype") -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in [np.dtype(d) for d in FLOAT_DTYPES]:
        raise ValueError(f"{name}: expected float32 or float64, got {dt}")
    return dt


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_array(name: str, a, shape: tuple, dtype: np.dtype, finite: bool = True) -> np.ndarray:
    """Convert ``a`` to ``dtype`` and check its shape; ``None`` in ``shape`` matches any size.

    Raises ValueError naming ``name`` for a wrong rank or size, an empty array or NaN/inf values.
    """
    if a is None:
        raise ValueError(f"{name}: expected an array of shape {_fmt(shape)}, got None")
    try:
        arr = np.asarray(a)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: not convertible to an array ({e})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != len(shape):
        raise ValueError(f"{name}: expected {len(shape)} dimensions {_fmt(shape)}, got shape {arr.shape}")
    for n, want in zip(arr.shape, shape):
        if want is not None and n != want:
            raise ValueError(f"{name}: expected shape {_fmt(shape)}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}; expected {_fmt(shape)} with every size >= 1")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return arr


def is_ids(x) -> bool:
    """Whether x is (T, B) integer token ids (the one-hot input form of the sequence layers)."""
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "iu"


def check_ids(name: str, ids, vocab: int) -> np.ndarray:
    """(T, B) integer token ids, each in [0, vocab), as a C-contiguous int64 array."""
    arr = np.asarray(ids)
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected (T, B) integer token ids, got {arr.dtype} {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}; expected (T, B) with T, B >= 1")
    if arr.min() < 0 or arr.max() >= vocab:
        raise ValueError(f"{name}: expected token ids in [0, {vocab}), got [{arr.min()}, {arr.max()}]")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_lengths(lengths, T: int, B: int) -> np.ndarray | None:
    """Sequence lengths: 1-D integers, one per batch element, each in [1, T]."""
    if lengths is None:
        return None
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.shape[0] != B:
        raise ValueError(f"lengths: expected shape ({B},) (one per sequence), got {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"lengths: expected integers, got dtype {arr.dtype}")
    if arr.min() < 1 or arr.max() > T:
        raise ValueError(f"lengths: expected every length in [1, {T}] (T={T}), got min {arr.min()}, max {arr.max()}")
    return arr.astype(np.int64)


def _fmt(shape) -> str:
    return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
