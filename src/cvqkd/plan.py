"""Planning: the operator's questions about a scenario, answered by sweeps over the link model.

* :func:`key_rate_vs_distance` — how the key rate falls with fibre length, with the scenario's
  classical traffic and on dark fibre, against the PLOB bound.
* :func:`channel_frontier` — how many classical channels (and how much total launch power) a
  quantum channel can live with at each length, co- and counter-propagating.
* :func:`quantum_wavelength_scan` — where to put the quantum channel from the O to the L band.
* :func:`protocol_comparison` — CV (GG02) vs decoy-state BB84 vs MDI-QKD on the same fibre,
  with the same classical traffic entering the DV receivers as background counts.

* :func:`key_rate_grid` — the key rate over fibre length × classical channel count.

Every point is a full :func:`cvqkd.link.budget.noise_budget` of a modified copy of the
scenario (a few ms each) followed by the vectorised key-rate engine; nothing is interpolated.

Points are independent, so every sweep takes ``executor=``: :class:`SerialExecutor` (the
default), :class:`ProcessExecutor` (``concurrent.futures.ProcessPoolExecutor``, ``cvqkd plan
--workers N``) or :class:`DaskExecutor` (``dask.distributed``, the ``[dask]`` extra; ``cvqkd plan
--dask-scheduler ADDRESS|local``); :func:`make_executor` picks one. Each point runs the same
code on every backend, so the answers are identical (bit for bit), only faster.

Example:
    >>> from cvqkd.scenario import load_scenario
    >>> s = load_scenario("seed-120km")
    >>> sweep = key_rate_vs_distance(s, distances_m=np.array([50e3, 100e3]))
    >>> bool(sweep.key_rate_bits_per_symbol[0] > sweep.key_rate_bits_per_symbol[1])
    True
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError, MissingExtraError
from cvqkd.keyrate.bounds import plob_bits_per_use
from cvqkd.keyrate.dv import background_yield_from_noise, bb84_decoy, mdi_qkd
from cvqkd.keyrate.gaussian import gg02
from cvqkd.keyrate.optimise import optimal_modulation_variance
from cvqkd.link.budget import NoiseBudget, noise_budget
from cvqkd.scenario import Scenario
from cvqkd.units import SPEED_OF_LIGHT_M_S

FloatArray = NDArray[np.float64]

_T = TypeVar("_T")
_R = TypeVar("_R")


# ------------------------------------------------------------------ executors


class PointExecutor(Protocol):
    """Runs ``fn`` on every item, returning the results in the items' order."""

    name: str

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(x) for x in items]``, possibly in parallel."""
        ...

    def close(self) -> None:
        """Release workers (a no-op where there are none)."""
        ...


def _apply_chunk(fn: Callable[[_T], _R], chunk: Sequence[_T]) -> list[_R]:
    return [fn(x) for x in chunk]


def _chunks(items: Sequence[_T], n_chunks: int) -> list[Sequence[_T]]:
    size = max(1, math.ceil(len(items) / max(1, n_chunks)))
    return [items[i : i + size] for i in range(0, len(items), size)]


class SerialExecutor:
    """Every point in this process, one after the other (the default).

    >>> SerialExecutor().map(abs, [-1, 2])
    [1, 2]
    """

    name = "serial"

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """``[fn(x) for x in items]``."""
        return [fn(x) for x in items]

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessExecutor:
    """Points on a local ``ProcessPoolExecutor`` of ``workers`` processes, sent in chunks
    (≈4 per worker, so a few-ms point does not pay a round trip each). The pool starts on
    the first :meth:`map` and lives until :meth:`close` (or the ``with`` block ends)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = int(workers)
        self.name = f"process({self.workers})"
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """Run ``fn`` over ``items`` on the pool, results in order."""
        if not items:
            return []
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        chunks = _chunks(items, 4 * self.workers)
        out: list[_R] = []
        for part in self._pool.map(functools.partial(_apply_chunk, fn), chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DaskExecutor:
    """Points on a Dask cluster (``pip install 'cvqkd[dask]'``).

    ``scheduler``: a scheduler address (``tcp://host:8786``) or ``"local"`` for a
    ``LocalCluster`` on this machine (``workers`` processes, or threads with
    ``processes=False``). Points travel in chunks (≈4 per worker). A missing ``distributed``
    package raises :class:`~cvqkd.errors.MissingExtraError` with the install hint; an
    unreachable scheduler a :class:`~cvqkd.errors.ConfigError`.
    """

    def __init__(
        self,
        scheduler: str = "local",
        *,
        workers: int | None = None,
        processes: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingExtraError.for_extra("dask", "dask[distributed]") from exc
        self.name = f"dask({scheduler})"
        self._cluster: Any = None
        try:
            if scheduler == "local":
                n = workers or os.cpu_count() or 1
                self._cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                )
                self._client: Any = Client(self._cluster)
            else:
                self._client = Client(scheduler, timeout=connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
        self._n_workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """Run ``fn`` over ``items`` on the cluster, results in order."""
        if not items:
            return []
        chunks = _chunks(items, 4 * self._n_workers)
        futures = self._client.map(functools.partial(_apply_chunk, fn), chunks, pure=False)
        out: list[_R] = []
        for part in self._client.gather(futures):
            out.extend(part)
        return out

    def close(self) -> None:
        """Close the client (and the local cluster, if this executor started one)."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(
    *, workers: int | None = None, dask_scheduler: str | None = None
) -> SerialExecutor | ProcessExecutor | DaskExecutor:
    """The executor the CLI options ask for: serial (neither, or ``workers=1``), a process
    pool (``workers`` > 1), or Dask (``dask_scheduler`` = address or ``"local"``, with
    ``workers`` local worker processes if given).

    >>> make_executor().name
    'serial'
    """
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if dask_scheduler is not None:
        return DaskExecutor(dask_scheduler, workers=workers)
    if workers is None or workers == 1:
        return SerialExecutor()
    return ProcessExecutor(workers)


def _run(executor: PointExecutor | None, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    return (executor or SerialExecutor()).map(fn, items)


def _key_rate(budget: NoiseBudget, *, excess_noise_snu: FloatArray | float | None = None) -> float:
    xi = budget.excess_noise_snu if excess_noise_snu is None else excess_noise_snu
    rate = gg02(
        transmittance=budget.transmittance,
        excess_noise_snu=xi,
        modulation_variance_snu=budget.modulation_variance_snu,
        detector_efficiency=budget.detector_efficiency,
        electronic_noise_snu=budget.electronic_noise_snu,
        reconciliation_efficiency=budget.reconciliation_efficiency,
        detection=budget.detection,
    )
    return rate.key_rate_bits_per_symbol  # type: ignore[return-value]


def _dark_fibre(scenario: Scenario) -> Scenario:
    return scenario.with_channels(())


def _all_in_direction(scenario: Scenario, direction: str) -> Scenario:
    chans = tuple(dataclasses.replace(c, direction=direction) for c in scenario.wdm.channels)  # type: ignore[arg-type]
    return scenario.with_channels(chans)


# ------------------------------------------------------------------ key rate vs distance


@dataclass(frozen=True)
class DistanceSweep:
    """Key rate against fibre length [bit/symbol]; ``*_bps`` at the scenario's rate of
    key-carrying symbols (pilot slots excluded, ``NoiseBudget.key_symbol_rate_hz``)."""

    distances_m: FloatArray
    key_rate_bits_per_symbol: FloatArray
    dark_fibre_key_rate_bits_per_symbol: FloatArray
    optimal_modulation_key_rate_bits_per_symbol: FloatArray
    excess_noise_snu: FloatArray
    transmittance: FloatArray
    plob_bits_per_use: FloatArray
    key_symbol_rate_hz: float

    @property
    def key_rate_bps(self) -> FloatArray:
        """Key rate at the scenario's key-symbol rate [bit/s] (negative where no key)."""
        return self.key_rate_bits_per_symbol * self.key_symbol_rate_hz

    @property
    def max_distance_m(self) -> float:
        """Longest swept length with a positive key under the scenario's traffic (0 if none)."""
        ok = self.key_rate_bits_per_symbol > 0
        return float(self.distances_m[ok].max()) if ok.any() else 0.0

    @property
    def dark_fibre_max_distance_m(self) -> float:
        """Longest swept length with a positive key without classical traffic."""
        ok = self.dark_fibre_key_rate_bits_per_symbol > 0
        return float(self.distances_m[ok].max()) if ok.any() else 0.0


def _distance_point(scenario: Scenario, length_m: float) -> tuple[float, float, float, float]:
    b = noise_budget(scenario.with_length(length_m=length_m))
    dark = noise_budget(_dark_fibre(scenario).with_length(length_m=length_m))
    return b.transmittance, b.excess_noise_snu, float(_key_rate(b)), float(_key_rate(dark))


def key_rate_vs_distance(
    scenario: Scenario, *, distances_m: FloatArray, executor: PointExecutor | None = None
) -> DistanceSweep:
    """Asymptotic GG02 key rate of ``scenario`` at each fibre length [m].

    Three curves: with the scenario's classical traffic and modulation variance; the same
    traffic with V_A re-optimised at each length (phase noise, ∝ V_A, is held at the
    scenario's value, a slightly pessimistic choice when V_A drops); and dark fibre (no
    classical channels). PLOB −log2(1 − T) is the repeaterless bound on the same T.
    """
    d = np.asarray(distances_m, dtype=float)
    if d.ndim != 1 or d.size == 0 or np.any(d <= 0):
        raise ConfigError("distances must be a non-empty list of positive lengths")
    rows = np.array(
        _run(executor, functools.partial(_distance_point, scenario), [float(x) for x in d])
    )
    t, xi, k, k_dark = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    b0 = noise_budget(scenario.with_length(length_m=float(d[0])))
    opt = optimal_modulation_variance(
        transmittance=t,
        excess_noise_snu=xi,
        detector_efficiency=b0.detector_efficiency,
        electronic_noise_snu=b0.electronic_noise_snu,
        reconciliation_efficiency=b0.reconciliation_efficiency,
        detection=b0.detection,
    )
    return DistanceSweep(
        distances_m=d,
        key_rate_bits_per_symbol=k,
        dark_fibre_key_rate_bits_per_symbol=k_dark,
        optimal_modulation_key_rate_bits_per_symbol=np.asarray(
            opt.rate.key_rate_bits_per_symbol, dtype=np.float64
        ),
        excess_noise_snu=xi,
        transmittance=t,
        plob_bits_per_use=np.asarray(plob_bits_per_use(transmittance=t), dtype=float),
        key_symbol_rate_hz=b0.key_symbol_rate_hz,
    )


# ------------------------------------------------------------------ channel-density frontier


@dataclass(frozen=True)
class ChannelFrontier:
    """Largest classical load with a positive key at each length, per direction.

    ``max_channels[direction]``: the most channels of the scenario's plan (extended on its own
    grid, same power per channel) with K > 0; −1 where even dark fibre gives no key.
    ``max_total_power_w[direction]``: the scenario's channel plan with every launch power
    scaled by one factor, the largest total launch power [W] with K > 0 (0 where none).
    """

    distances_m: FloatArray
    max_channels: dict[str, NDArray[np.int64]]
    max_total_power_w: dict[str, FloatArray]
    channel_limit: int


def _positive_with_count(scenario: Scenario, count: int) -> bool:
    return _key_rate(noise_budget(scenario.with_channel_count(count))) > 0


def _max_channel_count(scenario: Scenario, limit: int) -> int:
    """Largest n ≤ limit with K > 0 (noise grows monotonically with n: bisection)."""
    if not _positive_with_count(scenario, 0):
        return -1
    if _positive_with_count(scenario, limit):
        return limit
    lo, hi = 0, limit  # K(lo) > 0, K(hi) <= 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _positive_with_count(scenario, mid):
            lo = mid
        else:
            hi = mid
    return lo


#: Power scale factors searched for the total-power frontier (1e-4 … 1e4 of the plan's power).
_POWER_FACTORS = np.logspace(-4.0, 4.0, 801)


def _max_total_power_w(scenario: Scenario) -> float:
    budget = noise_budget(scenario)
    total = scenario.wdm.total_launch_power_w
    if total <= 0:
        return 0.0
    xi = budget.excess_noise_at_power_scale_snu(_POWER_FACTORS)
    k = np.asarray(_key_rate(budget, excess_noise_snu=np.asarray(xi)))
    ok = np.flatnonzero(k > 0)
    return float(_POWER_FACTORS[ok[-1]] * total) if ok.size else 0.0


def _frontier_point(limit: int, item: tuple[Scenario, float]) -> tuple[int, float]:
    base, length_m = item
    s = base.with_length(length_m=length_m)
    return _max_channel_count(s, limit), _max_total_power_w(s)


def channel_frontier(
    scenario: Scenario,
    *,
    distances_m: FloatArray,
    channel_limit: int = 160,
    directions: tuple[str, ...] = ("co", "counter"),
    executor: PointExecutor | None = None,
) -> ChannelFrontier:
    """Maximum classical channels and total launch power with a positive key vs length.

    The scenario's channel plan is turned all co- or all counter-propagating; channels are
    added on the plan's own grid (skipping 100 GHz around the quantum channel) up to
    ``channel_limit``. The total-power frontier keeps the plan's channels and scales all
    launch powers together (Raman and crosstalk ∝ P, FWM ∝ P³).
    """
    if not scenario.wdm.channels:
        raise ConfigError(f"scenario {scenario.name!r} has no classical channels to scale")
    if channel_limit < 1:
        raise ConfigError("channel_limit must be at least 1")
    d = np.asarray(distances_m, dtype=float)
    for direction in directions:
        if direction not in ("co", "counter"):
            raise ConfigError(f"direction must be 'co' or 'counter', got {direction!r}")
    items = [
        (_all_in_direction(scenario, direction), float(length))
        for direction in directions
        for length in d
    ]
    res = _run(executor, functools.partial(_frontier_point, channel_limit), items)
    max_ch: dict[str, NDArray[np.int64]] = {}
    max_p: dict[str, FloatArray] = {}
    for i, direction in enumerate(directions):
        part = res[i * d.size : (i + 1) * d.size]
        max_ch[direction] = np.array([c for c, _ in part], dtype=np.int64)
        max_p[direction] = np.array([p for _, p in part], dtype=np.float64)
    return ChannelFrontier(
        distances_m=d, max_channels=max_ch, max_total_power_w=max_p, channel_limit=channel_limit
    )


# ------------------------------------------------------------------ quantum wavelength


@dataclass(frozen=True)
class WavelengthScan:
    """Key rate and excess noise against the quantum channel's wavelength.

    NaN marks wavelengths that were not evaluated: within ``guard_hz`` of a classical channel,
    or outside a user-supplied measured Raman table.
    """

    wavelengths_m: FloatArray
    excess_noise_snu: FloatArray
    key_rate_bits_per_symbol: FloatArray
    transmittance: FloatArray

    @property
    def best_wavelength_m(self) -> float:
        """The wavelength with the highest key rate (NaN if no point has a positive key)."""
        k = np.where(
            np.isfinite(self.key_rate_bits_per_symbol), self.key_rate_bits_per_symbol, -np.inf
        )
        i = int(np.argmax(k))
        return float(self.wavelengths_m[i]) if k[i] > 0 else float("nan")


#: The O to L band (ITU-T G-series band edges: O 1260 nm … L 1625 nm).
O_TO_L_BAND_M = (1260e-9, 1625e-9)


def _wavelength_point(
    scenario: Scenario, guard_hz: float, wavelength_m: float
) -> tuple[float, float, float]:
    f_classical = scenario.wdm.frequencies_hz
    f_q = SPEED_OF_LIGHT_M_S / wavelength_m
    nan = float("nan")
    if f_classical.size and np.min(np.abs(f_classical - f_q)) <= guard_hz:
        return nan, nan, nan
    try:
        b = noise_budget(scenario.replace(quantum_wavelength_m=wavelength_m))
    except ConfigError:  # outside a measured Raman table
        return nan, nan, nan
    return b.excess_noise_snu, float(_key_rate(b)), b.transmittance


def quantum_wavelength_scan(
    scenario: Scenario,
    *,
    wavelengths_m: FloatArray | None = None,
    guard_hz: float = 100e9,
    executor: PointExecutor | None = None,
) -> WavelengthScan:
    """Move the quantum channel across O…L band (default 1 nm steps) with the classical plan
    fixed; every point is a full budget (fibre loss, Raman Stokes/anti-Stokes, FWM,
    crosstalk, ASE band) and key rate at the scenario's modulation variance."""
    lam = (
        np.arange(O_TO_L_BAND_M[0], O_TO_L_BAND_M[1] + 0.5e-9, 1e-9)
        if wavelengths_m is None
        else np.asarray(wavelengths_m, dtype=float)
    )
    rows = np.array(
        _run(
            executor,
            functools.partial(_wavelength_point, scenario, guard_hz),
            [float(x) for x in lam],
        ),
        dtype=np.float64,
    ).reshape(-1, 3)
    xi, k, t = rows[:, 0], rows[:, 1], rows[:, 2]
    return WavelengthScan(
        wavelengths_m=lam, excess_noise_snu=xi, key_rate_bits_per_symbol=k, transmittance=t
    )


# ------------------------------------------------------------------ CV vs DV vs MDI


@dataclass(frozen=True)
class DvSystem:
    """A discrete-variable QKD system for the comparison (single-photon detectors).

    Defaults: a GHz-gated InGaAs avalanche photodiode system of the kind used in coexistence
    trials (Patel et al., Phys. Rev. X 2, 041010 (2012): ~1 GHz gating, ~20 % efficiency,
    ~100 ps effective gate by temporal filtering, a narrow spectral filter); misalignment and
    error-correction inefficiency of the GYS set (Ma et al. 2005). MDI uses the same detectors
    at a relay half-way.
    """

    repetition_rate_hz: float = 1e9
    detector_efficiency: float = 0.2
    dark_count_probability: float = 1e-6
    gate_width_s: float = 100e-12
    filter_width_m: float = 0.2e-9
    misalignment_error: float = 0.033
    error_correction_inefficiency: float = 1.22


@dataclass(frozen=True)
class ProtocolComparison:
    """Secret key rates [bit/s] of CV (GG02 at the scenario's symbol rate), decoy BB84 and
    MDI-QKD (at the DV repetition rate) on the same fibre and classical traffic."""

    distances_m: FloatArray
    cv_key_rate_bps: FloatArray
    bb84_key_rate_bps: FloatArray
    mdi_key_rate_bps: FloatArray
    bb84_background_yield: FloatArray
    dv: DvSystem


def _dv_background(budget: NoiseBudget, dv: DvSystem) -> float:
    return float(
        background_yield_from_noise(
            noise_spectral_density_w_per_m=budget.total_noise_spectral_density_w_per_m,
            filter_width_m=dv.filter_width_m,
            wavelength_m=budget.quantum_wavelength_m,
            gate_width_s=dv.gate_width_s,
            dark_count_probability=dv.dark_count_probability,
            detector_efficiency=dv.detector_efficiency,
        )
    )


def _protocol_point(
    scenario: Scenario, dv: DvSystem, length_m: float
) -> tuple[float, float, float, float]:
    b = noise_budget(scenario.with_length(length_m=length_m))
    relay = noise_budget(scenario.with_length(length_m=length_m / 2))
    return (
        float(_key_rate(b)) * b.key_symbol_rate_hz,
        _dv_background(b, dv),
        b.transmittance,
        _dv_background(relay, dv),
    )


def protocol_comparison(
    scenario: Scenario,
    *,
    distances_m: FloatArray,
    dv: DvSystem | None = None,
    executor: PointExecutor | None = None,
) -> ProtocolComparison:
    """CV vs decoy BB84 (infinite decoys, μ optimised) vs MDI-QKD on the same link.

    The classical channels' noise light at the receiver (Raman, FWM, leakage: the budget's
    optical spectral density, both polarisations) passes the DV filter and enters BB84 as
    background yield Y0 (PHYSICS.md: a DV receiver sees P(Δλ)·Δt_gate/(hν), no coherent
    mode selection). For MDI, the relay sits half-way: each detector sees the noise of a
    half-length link (the scenario's traffic over L/2), an approximation that ignores
    traffic entering from the far arm.
    """
    dv = DvSystem() if dv is None else dv
    d = np.asarray(distances_m, dtype=float)
    rows = np.array(
        _run(executor, functools.partial(_protocol_point, scenario, dv), [float(x) for x in d])
    ).reshape(-1, 4)
    cv, y0, t_arr, p_relay = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    bb84 = bb84_decoy(
        transmittance=t_arr,
        detector_efficiency=dv.detector_efficiency,
        background_yield=y0,
        misalignment_error=dv.misalignment_error,
        error_correction_inefficiency=dv.error_correction_inefficiency,
    )
    mdi = mdi_qkd(
        transmittance=t_arr,
        detector_efficiency=dv.detector_efficiency,
        dark_count_probability=p_relay,
        misalignment_error=dv.misalignment_error,
        error_correction_inefficiency=dv.error_correction_inefficiency,
    )
    return ProtocolComparison(
        distances_m=d,
        cv_key_rate_bps=cv,
        bb84_key_rate_bps=np.asarray(bb84.key_rate_bits_per_pulse, dtype=float)
        * dv.repetition_rate_hz,
        mdi_key_rate_bps=np.asarray(mdi.key_rate_bits_per_pulse, dtype=float)
        * dv.repetition_rate_hz,
        bb84_background_yield=y0,
        dv=dv,
    )


# ------------------------------------------------------------------ length × channel count


@dataclass(frozen=True)
class GridSweep:
    """Key rate [bit/symbol] and ξ [SNU] on a grid of fibre length × classical channel count
    (the scenario's plan cut or extended on its own grid, :meth:`Scenario.with_channel_count`);
    arrays have shape (lengths, counts)."""

    distances_m: FloatArray
    channel_counts: NDArray[np.int64]
    key_rate_bits_per_symbol: FloatArray
    excess_noise_snu: FloatArray


def _grid_point(scenario: Scenario, item: tuple[float, int]) -> tuple[float, float]:
    length_m, count = item
    b = noise_budget(scenario.with_length(length_m=length_m).with_channel_count(count))
    return float(_key_rate(b)), b.excess_noise_snu


def key_rate_grid(
    scenario: Scenario,
    *,
    distances_m: FloatArray,
    channel_counts: Sequence[int] | NDArray[np.int64],
    executor: PointExecutor | None = None,
) -> GridSweep:
    """Asymptotic GG02 key rate at every (length, channel count) pair: a full budget each.

    >>> from cvqkd.scenario import load_scenario
    >>> g = key_rate_grid(load_scenario("seed-120km"), distances_m=np.array([50e3, 100e3]),
    ...     channel_counts=[0, 8])
    >>> g.key_rate_bits_per_symbol.shape
    (2, 2)
    """
    d = np.asarray(distances_m, dtype=float)
    n = np.asarray(channel_counts, dtype=np.int64)
    if d.ndim != 1 or d.size == 0 or np.any(d <= 0):
        raise ConfigError("distances must be a non-empty list of positive lengths")
    if n.ndim != 1 or n.size == 0 or np.any(n < 0):
        raise ConfigError("channel counts must be a non-empty list of counts >= 0")
    items = [(float(x), int(c)) for x in d for c in n]
    rows = np.array(_run(executor, functools.partial(_grid_point, scenario), items))
    return GridSweep(
        distances_m=d,
        channel_counts=n,
        key_rate_bits_per_symbol=rows[:, 0].reshape(d.size, n.size),
        excess_noise_snu=rows[:, 1].reshape(d.size, n.size),
    )


__all__ = [
    "O_TO_L_BAND_M",
    "ChannelFrontier",
    "DaskExecutor",
    "DistanceSweep",
    "DvSystem",
    "GridSweep",
    "PointExecutor",
    "ProcessExecutor",
    "ProtocolComparison",
    "SerialExecutor",
    "WavelengthScan",
    "channel_frontier",
    "key_rate_grid",
    "key_rate_vs_distance",
    "make_executor",
    "protocol_comparison",
    "quantum_wavelength_scan",
]
