"""Sweeps: a TOML spec expanded into runs (grid, random search), executed on a local process
pool or a Ray cluster, every run's config, status and final metrics in an SQLite store."""
from .execute import run_sweep
from .results import summarize
from .spec import expand, load_spec, parse_spec, run_id
from .store import Store

__all__ = ["run_sweep", "summarize", "expand", "load_spec", "parse_spec", "run_id", "Store"]
