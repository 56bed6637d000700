"""Runs on a Ray cluster, through Ray's public API (``ray.init``, ``ray.remote``, ``ray.wait``).

``address``: ``local`` starts a Ray instance on this machine, ``auto`` joins the cluster this
machine belongs to, anything else is a cluster address (``HOST:PORT`` or ``ray://HOST:PORT``).
"""
from __future__ import annotations

import os
import socket

__all__ = ["connect", "run_on_ray", "release"]

_started_here = False          # whether connect() called ray.init (release() undoes only that)


def _reachable(address: str) -> None:
    """Fail fast, with one line, when a HOST:PORT address does not answer."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--ray: expected local, auto or HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ValueError(f"--ray: cannot connect to {address} ({e.strerror or e})") from None


def connect(address: str, num_cpus: int | None = None):
    """``ray.init`` for ``address``; returns the ray module. ValueError when Ray is missing or
    the cluster cannot be reached."""
    try:
        import ray
    except ImportError:
        raise ValueError("--ray: Ray is not installed (pip install 'lstmlab[ray]')") from None
    if address not in ("local", "auto"):
        _reachable(address)          # a named cluster must answer, even where Ray already runs
    if ray.is_initialized():
        return ray
    kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address == "local":
        kw["num_cpus"] = num_cpus
        ray.init(**kw)
    else:
        try:
            ray.init(address=address, **{k: v for k, v in kw.items() if k != "include_dashboard"})
        except (ConnectionError, RuntimeError, ValueError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"--ray: cannot connect to {address}: {msg}") from None
    global _started_here
    _started_here = True
    return ray


def run_on_ray(address: str, fn, work: list, jobs: int | None = None):
    """Run ``fn(w)`` for every ``w`` in ``work`` as Ray tasks (one CPU each); yields
    ``(index, result)`` as each finishes. Each task runs NumPy's BLAS on one thread. Ends
    with :func:`release`."""
    ray = connect(address, num_cpus=jobs)
    try:
        yield from _run(ray, fn, work)
    finally:
        release()


def release() -> None:
    """Shut Ray down if :func:`connect` started it (a Ray the caller had started stays), so a
    local cluster does not outlive its sweep inside a longer process such as a test session."""
    global _started_here
    if _started_here:
        import ray
        if ray.is_initialized():
            ray.shutdown()
        _started_here = False


def _run(ray, fn, work: list):
    @ray.remote(num_cpus=1)
    def task(w):
        from lstmlab._blas import set_blas_threads
        set_blas_threads(1)
        return fn(w)

    pending = {task.remote(w): i for i, w in enumerate(work)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            yield pending.pop(ref), ray.get(ref)
