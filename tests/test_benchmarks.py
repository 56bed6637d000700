"""Smoke tests of the benchmark scripts that the README quotes (their numbers are measured by
hand; these only keep the scripts working)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
import bench_gers_run


def test_gers_run_configs_are_checked():
    assert bench_gers_run._parse("compiled:2:1") == ("compiled", 2, 1, None)
    assert bench_gers_run._parse("compiled:2:0:4") == ("compiled", 2, 0, 4)
    for bad in ("compiled:2", "fast:1:0", "compiled:0:0", "reference:1:-1", "compiled:a:0",
                "compiled:1:0:3", "compiled:1:0:4:1"):
        with pytest.raises(SystemExit, match="--configs"):
            bench_gers_run._parse(bad)


def test_gers_run_times_a_short_run_in_a_process_with_its_threads(capsys):
    from lstmlab import kernels
    if not kernels.available():
        pytest.skip("numba is not installed")
    out = bench_gers_run.run_config("compiled:2:1", "peephole", 0, 30)
    assert out["wall_s"] > 0 and 0.0 <= out["solve_rate"] <= 1.0
    assert out["kernel_threads"] == min(2, os.cpu_count() or 1)
    assert bench_gers_run.main(["--configs", "reference:1:1", "--rounds", "1", "--iters", "3"]) == 0
    table = capsys.readouterr().out
    assert "| reference:1:1 |" in table and "| 1.00 |" in table


def test_torch_module_benchmark_runs_every_path(capsys):
    pytest.importorskip("torch")
    import bench_torch_module
    assert bench_torch_module.main(["--workloads", "W1", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    for path in ("torch.nn.LSTM", "lstmlab.torch (compiled)", "lstmlab.torch (pure torch)",
                 "per-step loop"):
        assert f"| {path} |" in out
    with pytest.raises(SystemExit):
        bench_torch_module.main(["--workloads", "W9"])


def test_charlm_benchmark_runs_both_paths_on_the_same_batches(capsys):
    torch = pytest.importorskip("torch")
    import bench_charlm

    from lstmlab._blas import blas_threads
    before = blas_threads(), torch.get_num_threads()
    assert bench_charlm.main(["--workloads", "C1", "--repeats", "2", "--threads", "1"]) == 0
    assert (blas_threads(), torch.get_num_threads()) == before    # the thread counts restored
    out = capsys.readouterr().out
    assert "| C1 | 1 x 128, B 32, T 100 |" in out
    with pytest.raises(SystemExit):
        bench_charlm.main(["--workloads", "C9"])


def test_dw_product_benchmark_times_both_orders_and_both_libraries_at_both_thread_counts(capsys):
    pytest.importorskip("torch")
    import bench_dw_product
    assert bench_dw_product.main(["--workloads", "C1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "numpy A.T @ B ms | numpy (B.T @ A).T ms | torch A.T @ B ms" in out
    assert "| C1 | (512 x 3200) (3200 x 128) | 1 |" in out and "| C1 | (512 x 3200) (3200 x 128) | 2 |" in out
    with pytest.raises(SystemExit):
        bench_dw_product.main(["--workloads", "C9"])
