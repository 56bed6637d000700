"""lstmlab: the LSTM family in readable NumPy with hand-derived BPTT, a compiled fast path,
and the classic experiments.

    >>> import numpy as np, lstmlab as ll
    >>> lstm = ll.LSTM(input_size=1, hidden_size=8, variant="peephole", seed=0)
    >>> y, (h_n, c_n), cache = lstm.forward(np.zeros((5, 2, 1)))
"""
from .core.dense import Dense, Embedding
from .core.gradcheck import gradcheck, gradcheck_report
from .core.init import count_params
from .core.io import load, load_arrays, load_into, save, save_arrays
from .core.layers import GRU, LSTM, RNN, SequenceCache
from .core.losses import bernoulli_nll, mse_loss, softmax_cross_entropy
from .core.optim import SGD, Adam, StepDecay, clip_by_value, clip_global_norm
from .core.seq2seq import Seq2Seq
from .core.spec import PRESETS, CellSpec

__version__ = "0.1.0"

__all__ = [
    "LSTM", "GRU", "RNN", "CellSpec", "PRESETS", "SequenceCache", "Dense", "Embedding",
    "mse_loss", "softmax_cross_entropy", "bernoulli_nll", "SGD", "Adam", "StepDecay", "clip_by_value",
    "clip_global_norm", "count_params", "gradcheck", "gradcheck_report", "save", "load",
    "save_arrays", "load_arrays", "load_into", "Seq2Seq",
]
