"""Tasks: data generators and metrics, pure NumPy, independent of the model code.

Every task is a frozen dataclass with ``input_size``, ``output_size``, a
``sample(batch, rng) -> Batch`` method and an ``evaluate(pred, batch) -> dict[str, float]``
method, and declares what the training loop needs: its ``loss`` (``mse``, ``softmax_ce``,
``bernoulli_nll``), its ``headline`` metric and whether that is maximised, and whether its
input is ``tokens`` (integer ids) or real values. Timing tasks (:mod:`.timing`): msd-pair, msd,
gts, pfg; long time lags (:mod:`.longrange`): adding, copy; text (:mod:`.text`): charlm, whose
``stream`` flag tells the loop to carry the state from one iteration to the next;
sequence-to-sequence toys (:mod:`.seq2seq`): reverse, sort, addition, dates, whose ``kind``
tells the loop to build an encoder-decoder; polyphonic music (:mod:`.chorales`): jsb, the Bach
chorales of music21's corpus as piano rolls (needs the ``music`` extra). Build one by name with :func:`make_task`;
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
from typing import Any

from . import chorales, longrange, seq2seq, text, timing
from .chorales import *  # noqa: F401,F403
from .longrange import *  # noqa: F401,F403
from .seq2seq import *  # noqa: F401,F403
from .text import *  # noqa: F401,F403
from .timing import *  # noqa: F401,F403  (the public names are timing.__all__)
from .timing import TASKS as TIMING_TASKS

#: Every task by registry name.
TASKS = {**TIMING_TASKS, **longrange.LONG_RANGE_TASKS, **text.TEXT_TASKS, **seq2seq.SEQ2SEQ_TASKS,
         **chorales.CHORALE_TASKS}


def make_task(name: str, **kwargs: Any):
    """Build a task by registry name (see :data:`TASKS`); its keyword arguments are the task's
    fields (``make_task("msd-pair", T=600, scale_intervals=True)`` scales the D range with T).
    Unknown names or arguments raise ``ValueError``."""
    if name not in TASKS:
        raise ValueError(f"name: expected one of {', '.join(TASKS)}, got {name!r}")
    return TASKS[name].create(**kwargs)


__all__ = list(timing.__all__) + list(chorales.__all__) + list(longrange.__all__) + list(text.__all__) + list(seq2seq.__all__)
