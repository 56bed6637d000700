"""Losses with their gradients. Each returns ``(loss, dpred)`` where dpred = d loss / d pred."""
from __future__ import annotations

import numpy as np

__all__ = ["mse_loss", "softmax_cross_entropy", "bernoulli_nll", "LOSSES"]


def _mask_weights(mask, shape_TB, dtype):
    if mask is None:
        return np.ones(shape_TB, dtype=dtype)
    m = np.asarray(mask, dtype=dtype)
    if m.shape != tuple(shape_TB):
        raise ValueError(f"mask: expected shape {tuple(shape_TB)}, got {m.shape}")
    if m.sum() <= 0:
        raise ValueError("mask: no step is counted (all zeros)")
    return m


def mse_loss(pred, target, mask=None):
    """Per-step mean squared error over counted steps and output units.

    ``L = sum_{t,b,k} m[t,b] (pred - target)^2 / (sum m * K)``, pred and target (T, B, K),
    mask (T, B) of 0/1 or None. ``dpred = 2 m (pred - target) / (sum m * K)``.
    """
    pred = np.asarray(pred)
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"target: expected shape {pred.shape} (T, B, K) like pred, got {target.shape}")
    if mask is None:            # every step counts: the same numbers without a pass over ones
        n = pred.dtype.type(pred.shape[0] * pred.shape[1]) * pred.shape[2]
        diff = pred - target
    else:
        m = _mask_weights(mask, pred.shape[:2], pred.dtype)[:, :, None]           # (T, B, 1)
        n = m.sum() * pred.shape[2]
        diff = np.where(m > 0, pred - target, 0.0) * m      # a masked-out inf or NaN adds 0
    return float((diff * diff).sum() / n), (2.0 / n) * diff


def softmax_cross_entropy(logits, targets, mask=None):
    """Mean cross-entropy of softmax(logits) against integer targets over counted steps.

    ``L = -sum_{t,b} m[t,b] log softmax(logits[t,b])[targets[t,b]] / sum m``, logits (T, B, V),
    targets (T, B) ints. ``dlogits = m (softmax - onehot) / sum m``.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets)
    if logits.ndim != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"targets: expected shape {logits.shape[:2]} (T, B), got {targets.shape}")
    if targets.dtype.kind not in "iu" or targets.min() < 0 or targets.max() >= logits.shape[2]:
        raise ValueError(f"targets: expected integer classes in [0, {logits.shape[2]})")
    m = _mask_weights(mask, logits.shape[:2], logits.dtype)                        # (T, B)
    z = logits - logits.max(axis=2, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))                        # (T, B, V)
    picked = np.take_along_axis(logp, targets[:, :, None], axis=2)[:, :, 0]       # (T, B)
    n = m.sum()
    d = np.exp(logp)
    np.put_along_axis(d, targets[:, :, None], np.take_along_axis(d, targets[:, :, None], 2) - 1.0, 2)
    return float(-(picked * m).sum() / n), d * (m / n)[:, :, None]


def bernoulli_nll(logits, targets, mask=None):
    """Negative log-likelihood of multi-hot targets under independent Bernoulli outputs.

    ``p = sigmoid(logits)``; per step the NLL sums over the K units,
    ``l[t,b] = -sum_k y log p + (1 - y) log(1 - p)``, and the loss is its mean over counted
    steps, ``L = sum m l / sum m`` (the frame-level NLL of polyphonic-music benchmarks).
    Computed stably as ``softplus(z) - y z``; ``dlogits = m (sigmoid(z) - y) / sum m``.
    logits and targets (T, B, K), targets in [0, 1]; mask (T, B) or None.
    """
    logits = np.asarray(logits)
    targets = np.asarray(targets, dtype=logits.dtype)
    if logits.ndim != 3 or targets.shape != logits.shape:
        raise ValueError(f"targets: expected shape {logits.shape} (T, B, K) like logits, got {targets.shape}")
    if targets.size and (targets.min() < 0 or targets.max() > 1):
        raise ValueError("targets: expected values in [0, 1]")
    m = _mask_weights(mask, logits.shape[:2], logits.dtype)                        # (T, B)
    softplus = np.logaddexp(0.0, logits)                                           # log(1 + e^z)
    per_step = (softplus - targets * logits).sum(axis=2)                           # (T, B)
    n = m.sum()
    sig = 0.5 * (1.0 + np.tanh(0.5 * logits))                                      # stable sigmoid
    return float((per_step * m).sum() / n), (sig - targets) * (m / n)[:, :, None]


#: Loss name (as a task declares it) -> function(pred, target, mask) -> (loss, dpred).
LOSSES = {"mse": mse_loss, "softmax_ce": softmax_cross_entropy, "bernoulli_nll": bernoulli_nll}
