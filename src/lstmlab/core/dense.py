"""Time-distributed dense readout and embedding lookup, each with its backward."""
from __future__ import annotations

import numpy as np

from .validate import check_array, check_dtype, check_positive_int

__all__ = ["Dense", "Embedding"]


class Dense:
    """Affine map applied at every step: ``y = x W^T + b``, x (..., in_features) -> y (..., out_features).

    ``W`` (out, in) and ``b`` (out,) are initialised like ``torch.nn.Linear``: U(-k, k), k = 1/sqrt(in).
    Gradients: ``dx = dy W``, ``dW = sum dy^T x``, ``db = sum dy`` over all leading axes.
    """

    def __init__(self, in_features: int, out_features: int, dtype=np.float64, seed: int = 0):
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        self.dtype = check_dtype(dtype)
        rng = np.random.default_rng([seed, 7919])
        k = 1.0 / np.sqrt(in_features)
        self.params = {
            "weight": rng.uniform(-k, k, (out_features, in_features)).astype(self.dtype),
            "bias": rng.uniform(-k, k, out_features).astype(self.dtype),
        }

    def config(self) -> dict:
        return {"class": "Dense", "in_features": self.in_features, "out_features": self.out_features,
                "dtype": self.dtype.name}

    def forward(self, x):
        """Returns y (..., out_features) and the cache (the input)."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected last dimension {self.in_features}, got shape {x.shape}")
        # one 2-D product: NumPy runs a (T, B, in) @ (in, out) matmul as T products, 1.5-2.5x slower
        y = x.reshape(-1, self.in_features) @ self.params["weight"].T               # (N, out)
        y += self.params["bias"]
        return y.reshape(x.shape[:-1] + (self.out_features,)), x

    def backward(self, dy, cache):
        """Returns dx (same shape as x) and the gradients {'weight', 'bias'}."""
        x = cache
        dy = check_array("dy", dy, x.shape[:-1] + (self.out_features,), self.dtype)
        dy2 = dy.reshape(-1, self.out_features)
        grads = {"weight": dy2.T @ x.reshape(-1, self.in_features), "bias": dy2.sum(axis=0)}
        # 2-D np.dot, not @: NumPy's matmul takes a slow non-BLAS loop when out_features is 1
        # (48 us against 9 us for the Gers 2002 readout's (4800, 1) x (1, 8); same products)
        dx = np.dot(dy2, self.params["weight"])                                 # (N, in)
        return dx.reshape(x.shape), grads


class Embedding:
    """Lookup table: token ids (T, B) -> vectors (T, B, dim), ``y[t, b] = W[ids[t, b]]``.

    Initialised N(0, 1) like ``torch.nn.Embedding``. Backward scatter-adds ``dy`` into the rows.
    """

    def __init__(self, num_embeddings: int, dim: int, dtype=np.float64, seed: int = 0):
        self.num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        self.dim = check_positive_int("dim", dim)
        self.dtype = check_dtype(dtype)
        rng = np.random.default_rng([seed, 104729])
        self.params = {"weight": rng.standard_normal((num_embeddings, dim)).astype(self.dtype)}

    def config(self) -> dict:
        return {"class": "Embedding", "num_embeddings": self.num_embeddings, "dim": self.dim,
                "dtype": self.dtype.name}

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"ids: expected integer token ids, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(f"ids: expected values in [0, {self.num_embeddings}), got [{ids.min()}, {ids.max()}]")
        return self.params["weight"][ids], ids

    def backward(self, dy, cache):
        """Returns None (ids have no gradient) and the gradients {'weight'}."""
        ids = cache
        dy = check_array("dy", dy, ids.shape + (self.dim,), self.dtype)
        dW = np.zeros_like(self.params["weight"])
        np.add.at(dW, ids.reshape(-1), dy.reshape(-1, self.dim))
        return None, {"weight": dW}
