"""Tasks: data generators and metrics, pure NumPy, independent of the model code.

Every task is a frozen dataclass with ``input_size``, ``output_size`` and ``T``, a
``sample(batch, rng) -> Batch`` method and an ``evaluate(pred, batch) -> dict[str, float]`` method
whose result always holds ``mse`` and ``solve_rate``. Build one by name with :func:`make_task`;
:data:`TASKS` maps the names to the classes.

>>> import numpy as np
>>> from lstmlab.tasks import make_task
>>> task = make_task("msd-pair", T=150)
>>> batch = task.sample(4, np.random.default_rng(0))
>>> batch.x.shape, batch.y.shape, batch.mask.shape
((150, 4, 1), (150, 4, 1), (150, 4))
>>> task.evaluate(batch.y, batch)["solve_rate"]
1.0
"""
from . import timing
from .timing import *  # noqa: F401,F403  (the public names are timing.__all__)

__all__ = list(timing.__all__)
