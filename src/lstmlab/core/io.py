"""Saving and loading arrays and models: the safetensors format, written atomically, no pickle.

File layout (the safetensors format, readable by the ``safetensors`` package)::

    8 bytes   little-endian u64 N: length of the header
    N bytes   JSON header: {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}
    ...       the raw little-endian array bytes, back to back

lstmlab adds two metadata entries: ``lstmlab.config`` (JSON of what the arrays belong to) and
``lstmlab.sha256`` (a digest over the config and every array's bytes), so a truncated or tampered
file raises ``ValueError`` instead of loading a silently wrong model. Files are written to a
temporary name in the same folder, flushed to disk, then renamed over the target: a crash never
leaves a half-written file where a good one was.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

import numpy as np

__all__ = ["save_arrays", "load_arrays", "save", "load", "atomic_write_bytes", "atomic_write_json"]

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def atomic_write_bytes(path: str | os.PathLike, chunks) -> None:
    """Write the byte chunks to ``path`` through a temporary file and an atomic rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj, sort_keys: bool = True) -> str:
    """Write ``obj`` as indented JSON (newline-terminated) through :func:`atomic_write_bytes`;
    returns the JSON text."""
    text = json.dumps(obj, indent=2, sort_keys=sort_keys)
    atomic_write_bytes(path, [text.encode() + b"\n"])
    return text


def _digest(config_json: str, names, arrays) -> str:
    h = hashlib.sha256(config_json.encode())
    for n in names:
        h.update(n.encode())
        h.update(np.ascontiguousarray(arrays[n]).tobytes())
    return h.hexdigest()


def save_arrays(path, arrays: dict[str, np.ndarray], config: dict | None = None) -> None:
    """Save named arrays and a JSON-able config to one safetensors file, atomically."""
    names = sorted(arrays)
    config_json = json.dumps(config or {}, sort_keys=True)
    header, offset, blobs = {}, 0, []
    for n in names:
        a = np.asarray(arrays[n], order="C")
        if a.dtype not in _CODES:
            raise ValueError(f"arrays[{n!r}]: dtype {a.dtype} cannot be saved")
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[n] = {"dtype": _CODES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"lstmlab.config": config_json,
                              "lstmlab.sha256": _digest(config_json, names, arrays)}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    atomic_write_bytes(path, [struct.pack("<Q", len(hb)), hb, *blobs])


def load_arrays(path) -> tuple[dict[str, np.ndarray], dict]:
    """Load what :func:`save_arrays` wrote; returns (arrays, config). Raises ValueError when the
    file is truncated, malformed or does not match its checksum."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    bad = f"{path}: not a valid lstmlab safetensors file"
    if len(data) < 8:
        raise ValueError(f"{bad} (truncated: {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise ValueError(f"{bad} (truncated or corrupt header)")
    try:
        header = json.loads(data[8:8 + n])
        meta = header.pop("__metadata__")
        config_json, digest = meta["lstmlab.config"], meta["lstmlab.sha256"]
        config = json.loads(config_json)
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{bad} (unreadable header or missing lstmlab metadata)") from None
    body = memoryview(data)[8 + n:]
    arrays = {}
    for name, info in header.items():
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            begin, end = info["data_offsets"]
            shape = tuple(info["shape"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{bad} (bad entry for {name!r})") from None
        if not (0 <= begin <= end <= len(body)) or end - begin != dtype.itemsize * int(np.prod(shape)):
            raise ValueError(f"{bad} (array {name!r} lies outside the file: truncated?)")
        arrays[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
    if _digest(config_json, sorted(arrays), arrays) != digest:
        raise ValueError(f"{path}: checksum mismatch: the file was modified or damaged")
    return arrays, config


def save(module, path) -> None:
    """Save a layer (``LSTM``, ``GRU``, ``RNN``, ``Dense``, ``Embedding``) with its config."""
    save_arrays(path, module.params, {"module": module.config()})


def load(path):
    """Rebuild the layer that :func:`save` wrote, with its weights."""
    from . import dense, layers

    arrays, config = load_arrays(path)
    try:
        cfg = dict(config["module"])
        cls = {"LSTM": layers.LSTM, "GRU": layers.GRU, "RNN": layers.RNN,
               "Dense": dense.Dense, "Embedding": dense.Embedding}[cfg.pop("class")]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: no lstmlab module config in this file") from None
    if cls in (layers.LSTM,) and isinstance(cfg.get("variant"), dict):
        from .spec import CellSpec
        cfg["variant"] = CellSpec.from_dict(cfg["variant"])
    if cls in (layers.GRU, layers.RNN):
        cfg.pop("variant", None)
    module = cls(**cfg)
    if set(arrays) != set(module.params):
        raise ValueError(f"{path}: arrays {sorted(arrays)} do not match the config's {sorted(module.params)}")
    for k, v in arrays.items():
        if v.shape != module.params[k].shape:
            raise ValueError(f"{path}: array {k!r} has shape {v.shape}, expected {module.params[k].shape}")
        module.params[k] = np.ascontiguousarray(v, dtype=module.params[k].dtype)
    return module
