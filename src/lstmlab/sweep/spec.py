"""Sweep specs: a TOML file with a base config, a grid and/or a random search, expanded into
runs whose ids are hashes of their full configs.

    name = "demo"
    [base]                      # any TrainConfig field; dotted keys reach into dict fields
    task = "msd-pair"
    [grid]                      # cartesian product of the lists
    variant = ["lstm", "peephole"]
    seed = [0, 1, 2]
    [random]                    # optional: n draws, each crossed with every grid point
    n = 20
    seed = 0
    lr = { log_uniform = [1e-4, 1e-1] }
    hidden = { choice = [8, 16, 32] }
    clip = { uniform = [0.5, 2.0] }

A run's id is the first 12 hex digits of the SHA-256 of its config as canonical JSON, so the
same config always gets the same id and a rerun of a spec finds its runs again. Every error
is a one-line ``ValueError`` naming the key.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import tomllib

import numpy as np

from ..train.config import TrainConfig

__all__ = ["load_spec", "parse_spec", "expand", "run_id", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("choice", "uniform", "log_uniform", "int_uniform")
_TOP = ("name", "base", "grid", "random")


def run_id(config: dict) -> str:
    """The stable id of a run: a hash of its full config (canonical JSON)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_spec(path) -> dict:
    """Read and check a TOML spec file; returns the checked spec (see :func:`parse_spec`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"spec: {path} is not a file")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"spec: {path} is not valid TOML ({e})") from None
    except UnicodeDecodeError:
        raise ValueError(f"spec: {path} is not a UTF-8 text file") from None
    return parse_spec(raw, default_name=os.path.splitext(os.path.basename(path))[0])


def parse_spec(raw: dict, default_name: str = "sweep") -> dict:
    """Check a spec's structure: known tables, lists in the grid, known distributions."""
    if not isinstance(raw, dict):
        raise ValueError("spec: expected a table")
    unknown = sorted(set(raw) - set(_TOP))
    if unknown:
        raise ValueError(f"spec: unknown key {unknown[0]!r}; expected some of {', '.join(_TOP)}")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"name: expected a non-empty string without '/', got {name!r}")
    spec = {"name": name, "base": raw.get("base", {}), "grid": raw.get("grid", {}),
            "random": raw.get("random", {})}
    for table in ("base", "grid", "random"):
        if not isinstance(spec[table], dict):
            raise ValueError(f"{table}: expected a table, got {type(spec[table]).__name__}")
    for key, values in spec["grid"].items():
        if not isinstance(values, list):
            raise ValueError(f"grid.{key}: expected a list of values, got {values!r}")
        if not values:
            raise ValueError(f"grid.{key}: empty list (a grid axis needs at least one value)")
    rnd = dict(spec["random"])
    if rnd:
        n = rnd.pop("n", None)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"random.n: expected a positive integer, got {n!r}")
        seed = rnd.pop("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"random.seed: expected an integer >= 0, got {seed!r}")
        for key, dist in rnd.items():
            _check_distribution(key, dist)
        if not rnd:
            raise ValueError("random: no parameter to draw (give e.g. lr = { log_uniform = [1e-4, 1e-1] })")
    expand(spec)                                    # every config must be a valid TrainConfig
    return spec


def _check_distribution(key: str, dist) -> None:
    where = f"random.{key}"
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ValueError(f"{where}: expected one distribution like {{ uniform = [0, 1] }}, got {dist!r}")
    (kind, args), = dist.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown distribution {kind!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    if not isinstance(args, list) or not args:
        raise ValueError(f"{where}.{kind}: expected a non-empty list, got {args!r}")
    if kind == "choice":
        return
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise ValueError(f"{where}.{kind}: expected [low, high] numbers, got {args!r}")
    lo, hi = args
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{where}.{kind}: expected low < high, got {args!r}")
    if kind == "log_uniform" and lo <= 0:
        raise ValueError(f"{where}.log_uniform: expected bounds > 0, got {args!r}")
    if kind == "int_uniform" and not all(isinstance(a, int) for a in args):
        raise ValueError(f"{where}.int_uniform: expected integer bounds, got {args!r}")


def _draw(dist: dict, rng: np.random.Generator):
    (kind, args), = dist.items()
    if kind == "choice":
        return args[int(rng.integers(len(args)))]
    lo, hi = args
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    if kind == "int_uniform":
        return int(rng.integers(lo, hi + 1))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _set(config: dict, key: str, value) -> None:
    """Set ``key`` (``lr`` or dotted ``task_args.T``) in a config dict."""
    *path, last = key.split(".")
    d = config
    for part in path:
        if not isinstance(d.get(part), dict):
            raise ValueError(f"{key}: {part!r} is not a table field of the config")
        d[part] = dict(d[part])
        d = d[part]
    d[last] = value


def expand(spec: dict) -> list[tuple[str, dict]]:
    """The runs of a checked spec: ``[(id, full config dict), ...]``, duplicates removed, in a
    fixed order (random draws outer, grid points inner)."""
    base = TrainConfig().to_dict()
    for key, value in spec["base"].items():
        _set(base, key, value)
    grid_keys = list(spec["grid"])
    points = list(itertools.product(*(spec["grid"][k] for k in grid_keys)))
    rnd = {k: v for k, v in spec["random"].items() if k not in ("n", "seed")}
    draws = [{}]
    if rnd:
        rng = np.random.default_rng(spec["random"].get("seed", 0))
        draws = [{k: _draw(d, rng) for k, d in rnd.items()} for _ in range(spec["random"]["n"])]
    runs, seen = [], set()
    for draw in draws:
        for point in points:
            cfg = copy.deepcopy(base)
            for key, value in [*zip(grid_keys, point), *draw.items()]:
                _set(cfg, key, value)
            try:
                full = TrainConfig.from_dict(cfg).to_dict()
            except TypeError as e:
                raise ValueError(f"config: {e}") from None
            rid = run_id(full)
            if rid not in seen:
                seen.add(rid)
                runs.append((rid, full))
    return runs
