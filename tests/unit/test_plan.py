"""Planning sweeps: each answer is checked against an independent full budget + key rate."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd import plan
from cvqkd.keyrate.gaussian import gg02
from cvqkd.link.budget import NoiseBudget, noise_budget
from cvqkd.scenario import load_scenario
from cvqkd.units import SPEED_OF_LIGHT_M_S


def _k(budget: NoiseBudget) -> float:
    return float(budget.key_rate().key_rate_bits_per_symbol)


@pytest.fixture(scope="module")
def seed():  # type: ignore[no-untyped-def]
    return load_scenario("seed-120km")


def test_distance_sweep_laws(seed) -> None:  # type: ignore[no-untyped-def]
    d = np.linspace(10e3, 200e3, 12)
    sweep = plan.key_rate_vs_distance(seed, distances_m=d)
    # loss only grows: the rate falls with length
    assert np.all(np.diff(sweep.key_rate_bits_per_symbol) < 0)
    # classical traffic only adds noise: never better than dark fibre
    assert np.all(sweep.key_rate_bits_per_symbol <= sweep.dark_fibre_key_rate_bits_per_symbol)
    # optimising V_A never loses against the scenario's fixed V_A
    assert np.all(
        sweep.optimal_modulation_key_rate_bits_per_symbol >= sweep.key_rate_bits_per_symbol - 1e-12
    )
    # repeaterless bound
    assert np.all(sweep.key_rate_bits_per_symbol < sweep.plob_bits_per_use)
    # one point against an independent budget at that length
    b = noise_budget(seed.with_length(length_m=float(d[3])))
    assert sweep.key_rate_bits_per_symbol[3] == pytest.approx(_k(b), rel=1e-12)


def test_channel_frontier_is_the_boundary(seed) -> None:  # type: ignore[no-untyped-def]
    lengths = np.array([100e3, 120e3])  # at 60 km even 80 co-propagating channels fit
    front = plan.channel_frontier(seed, distances_m=lengths, channel_limit=80)
    for direction in ("co", "counter"):
        for length, n in zip(lengths, front.max_channels[direction], strict=True):
            s = seed.with_length(length_m=float(length))
            s = s.with_channels(
                tuple(
                    c.__class__(c.frequency_hz, c.launch_power_w, direction) for c in s.wdm.channels
                )
            )
            assert 0 <= n < 80
            assert _k(noise_budget(s.with_channel_count(int(n)))) > 0
            assert _k(noise_budget(s.with_channel_count(int(n) + 1))) <= 0


def test_power_frontier_matches_full_budget(seed) -> None:  # type: ignore[no-untyped-def]
    s = seed.with_length(length_m=100e3)
    front = plan.channel_frontier(s, distances_m=np.array([100e3]), directions=("co",))
    p_max = float(front.max_total_power_w["co"][0])
    factor = p_max / s.wdm.total_launch_power_w
    # the sweep scales Raman/crosstalk ∝ P and FWM ∝ P³; a full budget at the scaled plan agrees
    at = s.with_channels(s.wdm.scaled_power(factor=factor).channels)
    above = s.with_channels(s.wdm.scaled_power(factor=factor * 1.03).channels)
    assert _k(noise_budget(at)) > 0
    assert _k(noise_budget(above)) <= 0


def test_wavelength_scan(seed) -> None:  # type: ignore[no-untyped-def]
    scan = plan.quantum_wavelength_scan(seed)
    f = SPEED_OF_LIGHT_M_S / scan.wavelengths_m
    near = np.min(np.abs(f[:, None] - seed.wdm.frequencies_hz[None, :]), axis=1) <= 100e9
    assert np.all(np.isnan(scan.key_rate_bits_per_symbol[near]))
    assert np.all(np.isfinite(scan.key_rate_bits_per_symbol[~near]))
    best = scan.best_wavelength_m
    b = noise_budget(seed.replace(quantum_wavelength_m=best))
    assert _k(b) == pytest.approx(np.nanmax(scan.key_rate_bits_per_symbol), rel=1e-12)
    assert 1260e-9 <= best <= 1625e-9


def test_protocol_comparison_background(seed) -> None:  # type: ignore[no-untyped-def]
    dark = seed.with_channels(())
    dv = plan.DvSystem()
    d = np.array([20e3, 50e3])
    with_traffic = plan.protocol_comparison(seed, distances_m=d, dv=dv)
    without = plan.protocol_comparison(dark, distances_m=d, dv=dv)
    # no classical light: the background yield is the dark-count probability alone
    np.testing.assert_allclose(without.bb84_background_yield, dv.dark_count_probability)
    # traffic adds background clicks and removes key
    assert np.all(with_traffic.bb84_background_yield > without.bb84_background_yield)
    assert np.all(with_traffic.bb84_key_rate_bps < without.bb84_key_rate_bps)
    # CV figure is the GG02 rate at the symbol rate
    b = noise_budget(seed.with_length(length_m=20e3))
    k = gg02(
        transmittance=b.transmittance,
        excess_noise_snu=b.excess_noise_snu,
        modulation_variance_snu=b.modulation_variance_snu,
        detector_efficiency=b.detector_efficiency,
        electronic_noise_snu=b.electronic_noise_snu,
        reconciliation_efficiency=b.reconciliation_efficiency,
        detection=b.detection,
    ).key_rate_bits_per_symbol
    assert with_traffic.cv_key_rate_bps[0] == pytest.approx(float(k) * b.key_symbol_rate_hz)


# ------------------------------------------------------------------ executors


def _tiny_sweeps(seed, executor):  # type: ignore[no-untyped-def]
    d = np.array([40e3, 120e3, 200e3])
    return (
        plan.key_rate_grid(seed, distances_m=d, channel_counts=[0, 8, 40], executor=executor),
        plan.channel_frontier(seed, distances_m=d[:2], channel_limit=20, executor=executor),
        plan.quantum_wavelength_scan(
            seed, wavelengths_m=np.linspace(1500e-9, 1600e-9, 11), executor=executor
        ),
        plan.protocol_comparison(seed, distances_m=d, executor=executor),
        plan.key_rate_vs_distance(seed, distances_m=d, executor=executor),
    )


def _assert_identical(a, b) -> None:  # type: ignore[no-untyped-def]
    # Every backend runs the same point function on the same inputs: bit-identical results.
    import dataclasses

    for x, y in zip(a, b, strict=True):
        for f in dataclasses.fields(x):
            u, v = getattr(x, f.name), getattr(y, f.name)
            if isinstance(u, dict):
                assert u.keys() == v.keys()
                for k in u:
                    assert np.array_equal(u[k], v[k], equal_nan=True), (f.name, k)
            elif isinstance(u, np.ndarray):
                assert np.array_equal(u, v, equal_nan=True), f.name
            else:
                assert u == v, f.name


@pytest.fixture(scope="module")
def serial_result(seed):  # type: ignore[no-untyped-def]
    return _tiny_sweeps(seed, None)


def test_process_pool_gives_the_serial_answer(seed, serial_result) -> None:  # type: ignore[no-untyped-def]
    with plan.ProcessExecutor(2) as ex:
        _assert_identical(serial_result, _tiny_sweeps(seed, ex))


def test_dask_gives_the_serial_answer(seed, serial_result) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("dask.distributed")
    with plan.DaskExecutor("local", workers=2, processes=False) as ex:
        _assert_identical(serial_result, _tiny_sweeps(seed, ex))


def test_grid_points_are_full_budgets(seed, serial_result) -> None:  # type: ignore[no-untyped-def]
    grid = serial_result[0]
    assert grid.key_rate_bits_per_symbol.shape == (3, 3)
    s = seed.with_length(length_m=120e3).with_channel_count(40)
    assert grid.key_rate_bits_per_symbol[1, 2] == _k(noise_budget(s))
    # more channels, more noise; on dark fibre, longer means less key (positive at 40 and
    # 120 km; at 200 km of G.652.D, 40 dB, V_A = 7 is far from optimal and may go negative)
    assert np.all(np.diff(grid.excess_noise_snu, axis=1) > 0)
    k0 = grid.key_rate_bits_per_symbol[:, 0]
    assert k0[0] > k0[1] > k0[2] and k0[1] > 0


def test_make_executor_choices() -> None:
    from cvqkd.errors import ConfigError

    assert plan.make_executor().name == "serial"
    assert plan.make_executor(workers=1).name == "serial"
    ex = plan.make_executor(workers=3)
    assert isinstance(ex, plan.ProcessExecutor) and ex.workers == 3
    ex.close()
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        plan.make_executor(workers=0)


def test_missing_dask_is_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from cvqkd.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'cvqkd\[dask\]'"):
        plan.make_executor(dask_scheduler="local")


def test_unreachable_dask_scheduler_is_a_config_error() -> None:
    pytest.importorskip("dask.distributed")
    from cvqkd.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        plan.DaskExecutor("tcp://127.0.0.1:9", connect_timeout_s=1.0)
