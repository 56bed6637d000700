"""The thread count of NumPy's BLAS: read it, and lower it inside a worker process.

threadpoolctl when it is installed; otherwise the set/get functions of the OpenBLAS that NumPy's
wheels bundle (``numpy.libs``), called through ctypes. Where neither is found (another BLAS, an
unusual build) the functions say so (``None`` / ``False``) and change nothing.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

__all__ = ["blas_threads", "set_blas_threads"]

_PREFIXES = ("scipy_openblas", "openblas")           # NumPy >= 2 wheels, then plain OpenBLAS
_SUFFIXES = ("64_", "")                               # ILP64 builds, then LP64


def _openblas_function(name: str):
    """``{prefix}_{name}{suffix}`` from the OpenBLAS in numpy.libs, or None."""
    libdir = os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)           # the library NumPy already loaded: same handle
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                f = getattr(lib, f"{prefix}_{name}{suffix}", None)
                if f is not None:
                    return f
    return None


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


def blas_threads() -> int | None:
    """Threads NumPy's BLAS uses now, or None where that cannot be read."""
    tpc = _threadpoolctl()
    if tpc is not None:
        n = [d["num_threads"] for d in tpc.threadpool_info() if d.get("user_api") == "blas"]
        if n:
            return int(n[0])
    f = _openblas_function("get_num_threads")
    return int(f()) if f is not None else None


def set_blas_threads(n: int) -> bool:
    """Make NumPy's BLAS use ``n`` threads from now on in this process; True if it could."""
    tpc = _threadpoolctl()
    if tpc is not None:
        tpc.threadpool_limits(limits=n, user_api="blas")   # not used as a context: stays set
        return True
    f = _openblas_function("set_num_threads")
    if f is None:
        return False
    f(ctypes.c_int(n))
    return True
