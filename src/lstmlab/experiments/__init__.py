"""Experiments: one module per paper or claim (config, expected numbers, report)."""
from . import gers2002
from .runner import default_jobs, run_configs

__all__ = ["gers2002", "run_configs", "default_jobs"]
