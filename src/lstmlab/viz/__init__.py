"""Figures drawn from saved run folders (never from live training state).

matplotlib is optional: :func:`have_matplotlib` says whether it can be used; the figure
functions raise ``ImportError`` with a clear message without it. The Agg backend is used.
"""
from .timing import have_matplotlib, plot_cell_state, plot_predictions, plot_training_curves

__all__ = ["have_matplotlib", "plot_training_curves", "plot_predictions", "plot_cell_state"]
