"""PyTorch front end: every lstmlab cell as a drop-in ``torch.nn.LSTM`` (and GRU, RNN, LSTMCell).

    >>> import torch, lstmlab.torch as lt
    >>> lstm = lt.LSTM(3, 8, num_layers=2, variant="peephole", batch_first=True)
    >>> out, (h_n, c_n) = lstm(torch.randn(4, 10, 3))

Same constructor, forward, parameter names and gate order as ``torch.nn.LSTM`` plus ``variant=``
(a preset name or :class:`lstmlab.CellSpec`) and ``backend=`` (``auto``, ``torch``,
``compiled``); on the CPU the recurrence runs in lstmlab's compiled kernels, elsewhere in plain
torch (see :mod:`lstmlab.torch.modules`). Importing this needs torch, not numba.
"""
from ..core.spec import PRESETS, CellSpec
from .modules import BACKENDS, GRU, LSTM, RNN, LSTMCell

__all__ = ["LSTM", "GRU", "RNN", "LSTMCell", "BACKENDS", "CellSpec", "PRESETS"]
