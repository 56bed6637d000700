"""Experiments: one module per paper or claim (config, expected numbers, report); their sweep
specs ship in ``specs/`` (``spec_path(name)``)."""
import os


def spec_path(name: str) -> str:
    """The path of a sweep spec that ships with lstmlab (``spec_path("gers2002")``)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "specs", f"{name}.toml")
    if not os.path.isfile(path):
        raise ValueError(f"name: no shipped spec {name!r}")
    return path


from . import gers2002  # noqa: E402
from .runner import default_jobs, run_configs  # noqa: E402

__all__ = ["gers2002", "run_configs", "default_jobs", "spec_path"]
