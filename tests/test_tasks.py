"""Tests of lstmlab.tasks: generators (shapes, placement, randomness) and metrics."""
import dataclasses

import numpy as np
import pytest

from lstmlab.tasks import (
    GTS,
    MSD,
    PFG,
    TASKS,
    Batch,
    MSDPair,
    consecutive_correct,
    make_task,
    pfg_waveform,
)

SMALL = {
    "msd-pair": {},
    "msd": {"F": 10, "delays": (0, 1, 2), "n_spikes": 20, "required": 20},
    "gts": {"F": 8, "delays": (0, 3), "n_spikes": 20, "required": 20},
    "pfg": {"waveform": "tri", "F": 10, "n_periods": 12, "required": 12},
}


def rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------- interface


def test_registry_names():
    assert set(TASKS) == {"msd-pair", "msd", "gts", "pfg", "adding", "copy", "adding-1997",
                          "multiplication", "temporal-order", "charlm", "reverse", "sort", "addition",
                          "dates", "jsb"}
    assert TASKS["msd-pair"] is MSDPair and TASKS["pfg"] is PFG


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shapes_and_dtypes(name, dtype):
    task = make_task(name, dtype=dtype, **SMALL[name])
    batch = task.sample(5, rng())
    assert isinstance(batch, Batch)
    assert batch.x.shape == (task.T, 5, task.input_size)
    assert batch.y.shape == (task.T, 5, task.output_size)
    assert batch.mask.shape == (task.T, 5) and batch.mask.dtype == np.bool_
    assert batch.x.dtype == dtype and batch.y.dtype == dtype
    assert batch.T == task.T and batch.batch_size == 5
    assert task.input_size == 1 and task.output_size == 1


def test_default_dtype_is_float64():
    for name in SMALL:
        assert make_task(name, **SMALL[name]).sample(2, rng()).x.dtype == np.float64


@pytest.mark.parametrize("name", sorted(SMALL))
def test_perfect_prediction_scores_perfectly(name):
    task = make_task(name, **SMALL[name])
    batch = task.sample(6, rng(1))
    metrics = task.evaluate(batch.y, batch)
    assert metrics["mse"] == 0.0
    assert metrics["solve_rate"] == 1.0
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_batch(name):
    task = make_task(name, **SMALL[name])
    a, b = task.sample(4, rng(7)), task.sample(4, rng(7))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.info.keys() == b.info.keys()
    for k in a.info:
        np.testing.assert_array_equal(a.info[k], b.info[k])


@pytest.mark.parametrize("name", ["msd-pair", "msd", "gts"])
def test_different_seeds_differ(name):
    task = make_task(name, **SMALL[name])
    a, b = task.sample(8, rng(1)), task.sample(8, rng(2))
    assert not np.array_equal(a.y, b.y)


def test_tasks_are_frozen():
    task = make_task("msd", **SMALL["msd"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.F = 3


def test_pred_of_shape_T_B_is_accepted():
    task = MSDPair()
    batch = task.sample(3, rng())
    assert task.evaluate(batch.y[:, :, 0], batch)["solve_rate"] == 1.0


# ------------------------------------------------------------------------------- msd-pair


def test_msd_pair_spikes_and_target_placement():
    task = MSDPair(T=150, D_min=30, D_max=60)
    batch = task.sample(2000, rng(3))
    t1, t2, tt, D = (batch.info[k] for k in ("t1", "t2", "t_target", "D"))
    cols = np.arange(2000)
    x, y = batch.x[:, :, 0], batch.y[:, :, 0]
    assert np.all(x.sum(axis=0) == 2) and np.all(y.sum(axis=0) == 1)
    assert np.all(x[t1, cols] == 1) and np.all(x[t2, cols] == 1)
    assert np.all(y[tt, cols] == 1)
    np.testing.assert_array_equal(t2 - t1, D)
    np.testing.assert_array_equal(tt, t1 + 2 * D)
    assert D.min() == 30 and D.max() == 60          # both ends of the range are drawn
    assert t1.min() == 0 and tt.max() == 149        # t1 ranges over every valid position
    assert np.all(tt <= task.T - 1)
    assert batch.mask.all()


def test_msd_pair_shifted_prediction_solves_nothing():
    task = MSDPair()
    batch = task.sample(16, rng(4))
    tt, cols = batch.info["t_target"], np.arange(16)
    for shift in (+1, -1):                          # every output spike one step late / early
        at = np.where(tt + shift <= task.T - 1, tt + shift, tt - shift)
        pred = np.zeros_like(batch.y)
        pred[at, cols, 0] = 1.0
        m = task.evaluate(pred, batch)
        assert m["solve_rate"] == 0.0
        assert m["timing_error"] == 1.0 and m["within1_rate"] == 1.0


def test_msd_pair_peak_before_second_spike_is_ignored():
    task = MSDPair()
    batch = task.sample(8, rng(5))
    pred = batch.y + 5.0 * batch.x                  # large echo of the input spikes
    assert task.evaluate(pred, batch)["solve_rate"] == 1.0


def test_msd_pair_mse_and_nan():
    task = MSDPair(T=20, D_min=3, D_max=5)
    batch = task.sample(4, rng(6))
    assert task.evaluate(np.zeros_like(batch.y), batch)["mse"] == pytest.approx(1 / 20)
    pred = batch.y.copy()
    pred[-1, 0, 0] = np.nan
    m = task.evaluate(pred, batch)
    assert m["solve_rate"] == 0.75 and np.isnan(m["timing_error"])


def test_msd_pair_scaled_sweep():
    ranges = {T: (MSDPair.scaled(T).D_min, MSDPair.scaled(T).D_max) for T in (150, 300, 600, 1000)}
    assert ranges == {150: (30, 60), 300: (60, 120), 600: (120, 240), 1000: (200, 400)}
    task = make_task("msd-pair", T=600, scale_intervals=True)
    assert (task.T, task.D_min, task.D_max) == (600, 120, 240)
    batch = task.sample(50, rng())
    assert np.all(batch.info["t_target"] <= 599) and batch.info["D"].min() >= 120


# ------------------------------------------------------------------------------- msd


def test_msd_stream_layout():
    task = MSD(F=10, delays=(0, 1, 2), n_spikes=30)
    assert task.T == 30 * 12
    batch = task.sample(50, rng(8))
    times, dl, n = batch.info["spike_times"], batch.info["spike_delays"], batch.info["n_spikes"]
    assert np.all(n >= 30)
    for b in range(50):
        t, d = times[b, : n[b]], dl[b, : n[b]]
        assert np.all(times[b, n[b]:] == -1)
        np.testing.assert_array_equal(np.diff(np.concatenate([[-1], t])), 10 + d)
        np.testing.assert_array_equal(np.flatnonzero(batch.x[:, b, 0]), t)
        np.testing.assert_array_equal(batch.y[t, b, 0], d)                  # target = I(n)
        np.testing.assert_array_equal(np.flatnonzero(batch.mask[:, b]), t)  # spikes only
        assert task.T - 1 - t[-1] < 12              # the next drawn interval did not fit
    assert set(np.unique(dl[dl >= 0])) == {0, 1, 2}


def test_msd_targets_every_step():
    task = MSD(F=5, n_spikes=4, targets_every_step=True)
    batch = task.sample(3, rng())
    assert batch.mask.all()
    assert np.all(batch.y[batch.x == 0] == 0)


def test_msd_consecutive_count_and_tolerance():
    task = MSD(F=6, delays=(0, 1), n_spikes=10, required=5)
    batch = task.sample(1, rng(9))
    times = batch.info["spike_times"][0]
    pred = batch.y.copy()
    pred[times[0], 0, 0] += 0.48                    # within 0.49: still correct
    pred[times[3], 0, 0] -= 0.49                    # not below 0.49: spike 3 is wrong
    m = task.evaluate(pred, batch)
    assert m["consecutive_mean"] == 3.0 and m["solve_rate"] == 0.0
    assert m["spike_accuracy"] == pytest.approx((batch.info["n_spikes"][0] - 1) / batch.info["n_spikes"][0])
    assert task.evaluate(pred, batch, required=3)["solve_rate"] == 1.0
    assert task.evaluate(pred, batch, tolerance=0.5)["consecutive_mean"] == batch.info["n_spikes"][0]
    # between spikes nothing is scored by default
    pred2 = batch.y + 7.0 * (batch.x == 0)
    assert task.evaluate(pred2, batch)["spike_accuracy"] == 1.0


def test_msd_nmsd_variant_has_single_interval():
    task = MSD(F=49, delays=(0, 1), n_spikes=1)
    batch = task.sample(200, rng(10))
    assert task.T == 50
    assert np.all(batch.info["n_spikes"] == 1)
    assert set(batch.info["spike_times"][:, 0]) == {48, 49}


# ------------------------------------------------------------------------------- gts


def test_gts_layout():
    task = GTS(F=8, delays=(0, 3), n_spikes=10)
    batch = task.sample(20, rng(11))
    times, dl, cues = (batch.info[k] for k in ("spike_times", "spike_delays", "cue_times"))
    n = batch.info["n_spikes"]
    assert batch.mask.all()
    for b in range(20):
        t = times[b, : n[b]]
        np.testing.assert_array_equal(np.flatnonzero(batch.y[:, b, 0]), t)
        np.testing.assert_array_equal(cues[b, : n[b]], np.concatenate([[0], t[:-1] + 1]))
        np.testing.assert_array_equal(batch.x[cues[b, : n[b]], b, 0], dl[b, : n[b]])
        assert batch.x[:, b, 0].sum() == dl[b, : n[b]].sum()


def test_gts_periodic_default_has_no_input():
    task = GTS(F=10, n_spikes=5)
    batch = task.sample(2, rng())
    assert not batch.x.any()
    np.testing.assert_array_equal(np.flatnonzero(batch.y[:, 0, 0]), [9, 19, 29, 39, 49])


def test_gts_false_spike_breaks_the_run():
    task = GTS(F=10, n_spikes=8, required=8)
    batch = task.sample(2, rng())
    pred = batch.y.copy()
    pred[44, 0, 0] = 0.6                            # extra spike inside interval 4 (steps 40..49)
    pred[29, 1, 0] = 0.5                            # spike 2 too weak (error 0.5)
    m = task.evaluate(pred, batch)
    assert m["consecutive_min"] == 2.0 and m["consecutive_mean"] == 3.0
    assert m["solve_rate"] == 0.0
    assert task.evaluate(batch.y, batch)["solve_rate"] == 1.0
    assert task.evaluate(np.roll(batch.y, 1, axis=0), batch)["consecutive_mean"] == 0.0


# ------------------------------------------------------------------------------- pfg


@pytest.mark.parametrize("kind", ["cos", "tri", "rect"])
@pytest.mark.parametrize("F", [10, 25])
def test_pfg_waveform_period_and_range(kind, F):
    t = np.arange(5 * F)
    f = pfg_waveform(kind, t, F)
    np.testing.assert_allclose(f[F:], f[:-F])       # period F
    assert f.min() >= 0.0 and f.max() <= 1.0
    assert f.min() == pytest.approx(0.0)
    first = f[:F]
    assert len({round(v, 12) for v in first}) > 1   # not constant within a period


def test_pfg_waveform_values():
    t = np.arange(10)
    np.testing.assert_allclose(pfg_waveform("cos", t, 10), (1 - np.cos(2 * np.pi * t / 10)) / 2)
    np.testing.assert_allclose(pfg_waveform("tri", t, 10),
                               [0, .2, .4, .6, .8, 1, .8, .6, .4, .2])
    np.testing.assert_array_equal(pfg_waveform("rect", t, 10), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    assert pfg_waveform("rect", np.arange(25), 25).sum() == 12
    assert pfg_waveform("cos", 5, 10) == pytest.approx(1.0)


def test_pfg_sample_and_teacher_forcing():
    task = PFG(waveform="cos", F=25, n_periods=4)
    batch = task.sample(3, rng())
    assert task.T == 100 and not batch.x.any() and batch.mask.all()
    np.testing.assert_array_equal(batch.y[:, 0], batch.y[:, 2])
    tf = PFG(waveform="cos", F=25, n_periods=4, teacher_forcing=True).sample(2, rng())
    np.testing.assert_array_equal(tf.x[1:], tf.y[:-1])
    assert np.all(tf.x[0] == 0)


def test_pfg_metrics():
    task = PFG(waveform="rect", F=10, n_periods=6, required=6)
    batch = task.sample(2, rng())
    pred = batch.y.copy()
    pred[33, 0, 0] += 0.3                           # period 3 of sequence 0 fails (not < 0.3)
    pred[58, 1, 0] += 0.29                          # still correct
    m = task.evaluate(pred, batch)
    assert m["consecutive_min"] == 3.0 and m["consecutive_mean"] == 4.5
    assert m["solve_rate"] == 0.5
    assert m["period_accuracy"] == pytest.approx(11 / 12)
    assert m["max_abs_error"] == pytest.approx(0.3)
    pred[0, 1, 0] = np.nan
    assert task.evaluate(pred, batch)["consecutive_min"] == 0.0


def test_consecutive_correct():
    correct = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=bool)  # (N=4, B=3)
    np.testing.assert_array_equal(consecutive_correct(correct), [2, 1, 0])
    np.testing.assert_array_equal(consecutive_correct(correct, counts=[1, 1, 0]), [1, 1, 0])


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("build, arg", [
    (lambda: MSDPair(T=150, D_min=30, D_max=75), "D_max"),   # 2 * 75 > 149
    (lambda: MSDPair(D_min=50, D_max=40), "D_max"),
    (lambda: MSDPair(D_min=0), "D_min"),
    (lambda: MSDPair(T=2.5), "T"),
    (lambda: MSDPair(dtype=np.int64), "dtype"),
    (lambda: MSD(F=0), "F"),
    (lambda: MSD(delays=()), "delays"),
    (lambda: MSD(delays=(0, -1)), "delays"),
    (lambda: MSD(F=10, delays=(0, 5), length=12), "length"),
    (lambda: MSD(tolerance=0), "tolerance"),
    (lambda: GTS(n_spikes=0), "n_spikes"),
    (lambda: GTS(required=0), "required"),
    (lambda: PFG(waveform="sine"), "waveform"),
    (lambda: PFG(F=1), "F"),
    (lambda: PFG(n_periods=0), "n_periods"),
    (lambda: make_task("nope"), "name"),
    (lambda: make_task("msd", T=100), "T"),
    (lambda: make_task("msd-pair", T=300, D_min=10, scale_intervals=True), "D_min"),
])
def test_bad_arguments_raise_value_error(build, arg):
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        build()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_bad_sample_and_evaluate_arguments(name):
    task = make_task(name, **SMALL[name])
    with pytest.raises(ValueError, match=r"^batch"):
        task.sample(0, rng())
    with pytest.raises(ValueError, match=r"^rng"):
        task.sample(2, 42)
    batch = task.sample(2, rng())
    with pytest.raises(ValueError, match=r"^pred"):
        task.evaluate(batch.y[:-1], batch)
    with pytest.raises(ValueError, match=r"^batch"):
        task.evaluate(batch.y, (batch.x, batch.y))
