import os
import warnings

import numpy as np
import pytest


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile every kernel (both dtypes, with the threaded drivers) before the first test, shared
    between one process per core. The tests would compile them anyway, one after another, in
    this process and in the processes they start; on a fresh numba cache this halves that time
    on two cores (about 70 s instead of 130 s), on a warm one it costs about a second (counted
    in the first test's setup). ``LSTMLAB_TEST_WARMUP=0`` skips it; if it fails, the tests
    compile what they need as before."""
    from lstmlab import kernels
    from lstmlab.experiments.runner import default_jobs

    jobs = default_jobs()
    if os.environ.get("LSTMLAB_TEST_WARMUP", "1") != "0" and kernels.available() and jobs > 1:
        try:
            kernels.warmup(jobs=jobs, threaded=True)
        except (RuntimeError, OSError) as e:
            warnings.warn(f"compiling the kernels ahead failed: {e}", RuntimeWarning, stacklevel=1)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def randomize(module, rng, scale=0.5):
    """Add random noise to every parameter so no test passes because of an initial value
    (zero biases, zero peepholes); weights of absent gates stay zero."""
    for p in module.params.values():
        p += rng.normal(scale=scale, size=p.shape).astype(p.dtype) * (p != 0)
    return module
