"""The gradient-flow figure of ``lstmlab reproduce gradient-flow`` (from its results.json records)."""
from __future__ import annotations

import os

import numpy as np

from .timing import _plt

__all__ = ["plot_gradient_flow_study"]


def _geo_mean(records, model, state, key="profile_h"):
    """Geometric mean over seeds of one model's profile (NaN-free where every seed has a value)."""
    ps = [np.asarray(r[key], dtype=float) for r in records
          if r["model"] == model and r["state"] == state and key in r]
    if not ps:
        return None
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(np.maximum(np.array(ps), 1e-300)), axis=0)), len(ps)


def plot_gradient_flow_study(records, path) -> str:
    """Left: untrained RNN, GRU and LSTM with forget bias 0..5; right: the trained models beside
    their untrained selves. RMS ||dL/dh_t|| against the steps back from the probe, log scale."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    names = list(dict.fromkeys(r["model"] for r in records if r["state"] == "untrained"))
    lstm = [n for n in names if n.startswith("lstm")]
    cmap = plt.get_cmap("viridis")

    def color(n):                                   # one colour per model in both panels
        if n in lstm:
            return cmap(lstm.index(n) / max(len(lstm) - 1, 1))
        return "tab:red" if n == "rnn" else "tab:orange"

    k = 0
    for n in names:
        g = _geo_mean(records, n, "untrained")
        if g is None:
            continue
        prof, k = g
        a1.plot(np.arange(len(prof)), prof, label=f"{n}", color=color(n),
                lw=1.5 if n in lstm else 2)
    a1.set_title(f"untrained (geometric mean over {k} seeds)", fontsize=10)
    trained = list(dict.fromkeys(r["model"] for r in records if r["state"] == "trained"
                                 and "profile_h" in r))
    for n in trained:
        for state, ls in (("trained", "-"), ("untrained", ":")):
            g = _geo_mean(records, n, state)
            if g is not None:
                a2.plot(np.arange(len(g[0])), g[0], ls=ls, color=color(n),
                        label=f"{n}, {state}")
    a2.set_title("after training on the adding problem (solid) and before (dotted)", fontsize=10)
    for ax in (a1, a2):
        ax.set_yscale("log")
        ax.set_xlabel("steps back from the probe at the last step (T = 150)")
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(alpha=0.3, which="major")
    a1.set_ylabel("RMS ||dL/dh_t||  (~ ||d h_T / d h_t||_F)")
    fig.suptitle("gradient flow back through time: RNN, GRU and LSTM (H = 32)")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
