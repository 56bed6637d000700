"""Saving and loading arrays and models: the safetensors format, written atomically, no pickle.

The files are written and read by the ``safetensors`` package; their layout::

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
import tempfile

import numpy as np

__all__ = ["save_arrays", "load_arrays", "load_into", "copy_params", "save", "load", "atomic_write_bytes",
           "atomic_write_json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, chunks) -> None:
    """Write the byte chunks to ``path`` through a temporary file and an atomic rename; the
    file gets the mode a plain ``open`` would give it (mkstemp's own is 0600)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".part")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
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
    """Save named arrays and a JSON-able config to one safetensors file, atomically.

    The bytes are the ``safetensors`` package's (``safetensors.numpy.save``); lstmlab adds its
    config and checksum to the file's metadata and writes it through :func:`atomic_write_bytes`.
    """
    from safetensors.numpy import save as st_save

    names = sorted(arrays)
    tensors = {}
    for n in names:
        a = np.asarray(arrays[n], order="C")       # (ascontiguousarray makes 0-d arrays 1-d)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"arrays[{n!r}]: dtype {a.dtype} cannot be saved")
        tensors[n] = a
    config_json = json.dumps(config or {}, sort_keys=True)
    meta = {"lstmlab.config": config_json, "lstmlab.sha256": _digest(config_json, names, tensors)}
    atomic_write_bytes(path, [st_save(tensors, metadata=meta)])


def load_arrays(path, plain: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Load what :func:`save_arrays` wrote; returns (arrays, config). Raises ValueError when the
    file is truncated, malformed or does not match its checksum.

    With ``plain=True`` a safetensors file without lstmlab's metadata (written by another tool,
    e.g. ``safetensors.torch.save_file(module.state_dict(), path)``) loads too, with config
    ``{}`` and no checksum to verify.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    bad = f"{path}: not a valid safetensors file"
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {k: np.array(f.get_tensor(k)) for k in f.keys()}
    except Exception as e:      # the package's SafetensorError and friends: truncated, malformed
        raise ValueError(f"{bad} ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if "lstmlab.sha256" not in meta:
        if plain:
            return arrays, {}
        raise ValueError(f"{bad} for lstmlab (missing lstmlab metadata; load_arrays(path, plain=True) "
                         "reads files of other tools)")
    try:
        config_json, digest = meta["lstmlab.config"], meta["lstmlab.sha256"]
        config = json.loads(config_json)
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{bad} (unreadable lstmlab metadata)") from None
    if _digest(config_json, sorted(arrays), arrays) != digest:
        raise ValueError(f"{path}: checksum mismatch: the file was modified or damaged")
    return arrays, config


def load_into(module, path) -> None:
    """Copy the arrays of a safetensors file into ``module.params`` (an ``LSTM``, ``GRU``,
    ``RNN``, ``Dense`` ...), in place. The file may come from another tool: a PyTorch
    ``nn.LSTM`` state dict saved with ``safetensors.torch.save_file`` has the same names and
    shapes. Names and shapes must match exactly; values are cast to the module's dtype."""
    arrays, _ = load_arrays(path, plain=True)
    copy_params(module.params, arrays, str(path))


def copy_params(params: dict[str, np.ndarray], arrays: dict[str, np.ndarray], where: str) -> None:
    """Copy ``arrays`` into the arrays of ``params`` in place (cast to their dtypes), after
    checking that the names and shapes match exactly; errors start with ``where``."""
    if set(arrays) != set(params):
        raise ValueError(f"{where}: arrays {sorted(set(arrays) ^ set(params))} do not match "
                         f"the parameters' names")
    for k, v in arrays.items():
        if v.shape != params[k].shape:
            raise ValueError(f"{where}: array {k!r} has shape {v.shape}, expected {params[k].shape}")
    for k, v in arrays.items():
        params[k][...] = v


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
    copy_params(module.params, arrays, str(path))
    return module
