"""The end-to-end key pipeline: the one safe path from samples to keys, as two parties.

Alice and Bob run :func:`run_alice` and :func:`run_bob`; after the transmission they share
nothing but an :class:`~cvqkd.classical.auth.AuthenticatedChannel` (every message carries a
Wegman–Carter tag), so the same code runs as two threads (:func:`run_block`) or two processes
over TCP (``cvqkd alice`` / ``cvqkd bob``). Per block (reverse reconciliation, Bob's bits are
the key)::

    Bob                                                Alice
    pe_request  (disclosure key, slot kinds, phases) ─►
                ◄─ pe_disclose (her symbols on the disclosed slots)
    estimate + gates (abort on failure), choose code
    estimates   (T, ξ, SNR, gain, code) ──────────────►
    reconcile   (MDR rotations, syndromes, tags) ────► decode, verify each frame
                ◄─ frame_ok (+ her reconciliation stats)
    key length (both compute it; Bob's must match Alice's), Toeplitz seed
    privacy     (ℓ, seed, block UUID, level) ─────────► hash
    confirm     (one-time-padded hash of the final key) ─► compare in constant time
                ◄─ confirmed
    both: replenish the authentication pool from the key, store the rest (KMS, same IDs)

Randomness (:mod:`cvqkd.randomness`). Every draw of key material goes through a
:class:`~cvqkd.randomness.SecretRandom` — by default the OS CSPRNG: the pre-shared secret of
:func:`run_block`, Bob's MDR key bits, punctured bits and private signs, and the public but
unpredictable choices Bob announces (disclosure key, verification-hash seeds, Toeplitz seed,
block ID). The pads come from the pre-shared pool. No party here takes a
``numpy.random.Generator``: ``rng`` (PCG64) drives only the *simulated* transmission
(:func:`simulate`), i.e. the physics. In a real transmitter Alice's Gaussian modulation is key
material too (her symbols are correlated with the raw key) and must come from a secret source;
in this simulator it is physics and stays on ``rng``. ``SecretRandom.insecure_for_tests(seed)``
makes a block reproducible; the report then says "NOT secure" (``BlockReport.randomness``).

Parameters (``PipelineConfig.parameters``). ``estimated`` (default): χ_BE comes from this
block's own estimates (point estimates for the asymptotic level, the worst case of the
confidence intervals for finite-size and composable). ``model``: the block is too small to
estimate its own channel (120 km: ξ̂ ± several SNU at 10^7 slots), so χ_BE uses T and ξ of the
link model (:class:`ModelParameters`, from the scenario's NoiseBudget — "parameters
characterised beforehand"). Such a key is asymptotic with assumed parameters, NOT secure
against an adversary who changes the channel (:data:`MODEL_LABEL`), never finite-size or
composable; a consistency gate (:func:`model_consistency`) aborts the block when the model's
T or ξ lies outside this block's confidence intervals, so a tampered or drifting channel still
stops key production — as far as the block's intervals can see.

Any failure (gate, ℓ ≤ 0, authentication, mismatch) raises in the party that sees it, which
sends an authenticated ``abort`` to the other; no key of an aborted block reaches a store —
with one unavoidable exception (two generals): if the last message (Alice's ``confirmed``) is
spoilt, Bob aborts after Alice has stored the block. Those chunks are never delivered: the
source KME hands a key out only after the peer KME accepts the same chunk IDs
(:mod:`cvqkd.kms.service`), and Bob's store lacks them (tested).

Example:
    >>> from cvqkd.sim.channel import ChannelParameters
    >>> ch = ChannelParameters(transmittance=0.8, detector_efficiency=0.9,
    ...     electronic_noise_snu=0.01, detection="homodyne", excess_noise_sources_snu={},
    ...     modulation_variance_snu=4.0, symbol_rate_hz=1e8)
    >>> cfg = PipelineConfig(n_symbols=60_000, code={"source": "regular", "n_vars": 2000,
    ...     "var_degree": 3, "check_degree": 8, "seed": 1}, level="asymptotic")
    >>> rep = run_block(ch, config=cfg, seed=5)
    >>> rep.keys_identical, rep.delivered_bits > 0, rep.randomness_secure
    (True, True, True)
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cvqkd.classical.auth import (
    TAG_BYTES,
    AuthenticatedChannel,
    PresharedKey,
    wegman_carter_tag,
)
from cvqkd.classical.transport import InProcessTransport, TransportError
from cvqkd.errors import ConfigError, CvqkdError, SecurityAbort
from cvqkd.privacy import (
    KeyLength,
    SecurityParameters,
    key_length,
    random_seed,
    toeplitz_hash,
)
from cvqkd.randomness import SecretRandom

LEVELS = ("asymptotic", "finite-size", "composable")

#: Where χ_BE's T and ξ come from: this block's estimates, or the link model.
PARAMETER_SOURCES = ("estimated", "model")

#: Reconciliation schemes (PipelineConfig.reconciliation).
RECONCILIATION_SCHEMES = ("auto", "binary", "sliced")

#: ``auto`` switches to sliced reconciliation from this SNR (linear, per real sample): the
#: binary scheme's ceiling C_BIAWGN/C_AWGN falls to 0.91 at SNR 2 and 0.85 at 3, where the
#: sliced scheme measured β 0.90 (docs/slice-reconciliation.md); at SNR 1 binary is better.
SLICED_FROM_SNR = 2.0


#: What a key from assumed (model) parameters is, in the report's words.
MODEL_LABEL = (
    "asymptotic, assumed (model) parameters — not secure against an adversary who changes the "
    "channel"
)


@dataclass(frozen=True)
class ModelParameters:
    """Channel parameters assumed from a characterisation done beforehand (the link model).

    Attributes:
        transmittance: channel T (linear, detector efficiency excluded).
        excess_noise_snu: ξ at the channel input [SNU].
        source: where the numbers come from (reported).

    Example:
        >>> ModelParameters(transmittance=9.3e-3, excess_noise_snu=0.02).excess_noise_snu
        0.02
    """

    transmittance: float
    excess_noise_snu: float
    source: str = "link model (NoiseBudget)"

    def __post_init__(self) -> None:
        if not 0.0 < self.transmittance <= 1.0:
            raise ConfigError(f"model transmittance must be in (0, 1], got {self.transmittance}")
        if not (math.isfinite(self.excess_noise_snu) and self.excess_noise_snu >= 0.0):
            raise ConfigError(f"model excess noise must be ≥ 0 SNU, got {self.excess_noise_snu}")

    @classmethod
    def from_budget(cls, budget: Any, *, source: str | None = None) -> ModelParameters:
        """T and total untrusted ξ of a :class:`~cvqkd.link.budget.NoiseBudget`."""
        return cls(
            transmittance=float(budget.transmittance),
            excess_noise_snu=float(budget.excess_noise_snu),
            source=source or "link model (NoiseBudget)",
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy (what Bob and Alice agree on before the block)."""
        return {
            "transmittance": self.transmittance,
            "excess_noise_snu": self.excess_noise_snu,
            "source": self.source,
        }


def model_consistency(est: dict[str, Any], model: ModelParameters) -> dict[str, Any]:
    """Does this block agree with the model? T and ξ of ``model`` against the block's
    confidence intervals (``est``: the public estimates, intervals at ε_PE).

    The gate is only as sharp as the intervals: at 120 km and 10^7 slots ξ̂ is known to a few
    SNU, so only a gross change of the channel is caught there; on a short link it is tight.

    >>> est = {"transmittance_interval": [0.4, 0.6], "excess_noise_interval_snu": [-0.1, 0.1]}
    >>> model_consistency(est, ModelParameters(transmittance=0.5, excess_noise_snu=0.3))["passed"]
    False
    """
    t_lo, t_hi = (float(v) for v in est["transmittance_interval"])
    x_lo, x_hi = (float(v) for v in est["excess_noise_interval_snu"])
    t_ok = t_lo <= model.transmittance <= t_hi
    x_ok = x_lo <= model.excess_noise_snu <= x_hi
    reasons = []
    if not t_ok:
        reasons.append(
            f"model T = {model.transmittance:.4g} outside this block's interval "
            f"[{t_lo:.4g}, {t_hi:.4g}]"
        )
    if not x_ok:
        reasons.append(
            f"model ξ = {model.excess_noise_snu:.4g} SNU outside this block's interval "
            f"[{x_lo:.4g}, {x_hi:.4g}] SNU"
        )
    return {
        "passed": t_ok and x_ok,
        "transmittance_in_interval": t_ok,
        "excess_noise_in_interval": x_ok,
        "reasons": reasons,
    }


def _require_consistent(est: dict[str, Any], model: ModelParameters) -> dict[str, Any]:
    check = model_consistency(est, model)
    if not check["passed"]:
        raise SecurityAbort(
            "the channel differs from the assumed model parameters ("
            + "; ".join(check["reasons"])
            + "): no key from assumed parameters"
        )
    return check


#: Stages, in order, for timing and progress.
STAGES = ("transmission", "estimation", "reconciliation", "privacy", "confirmation", "storage")


@dataclass(frozen=True)
class PipelineConfig:
    """Protocol choices for one block (both parties must use the same; Bob announces the code).

    Attributes:
        n_symbols: slots simulated (pilots and calibration slots included).
        disclosed_fraction: share of data symbols disclosed for parameter estimation.
        security: the ε of the block (:class:`cvqkd.privacy.SecurityParameters`).
        level: ``auto`` (the strongest of composable, finite-size, asymptotic with ℓ > 0) or one
            of :data:`LEVELS` (the block aborts if ℓ ≤ 0 there).
        beta: target reconciliation efficiency; the code rate is β·½log2(1 + SNR̂).
        frame_length: code length target (family codes: lifting nearest it).
        code: ``None`` (the shipped family, adapted to the rate) or a dict describing a code,
            e.g. ``{"source": "regular", "n_vars": 2000, "var_degree": 3, "check_degree": 8,
            "seed": 1}`` (tests) or ``{"source": "family", "rate": 0.01, "frame_length": 1e5}``.
        reconciliation: ``binary`` (multidimensional reconciliation + one LDPC code),
            ``sliced`` (sliced reconciliation with multistage decoding, for short links) or
            ``auto`` (sliced when SNR̂ ≥ :data:`SLICED_FROM_SNR` and no ``code`` is given).
        slice_bits, slice_planner: the sliced scheme's bits per sample and code planner
            (``density-evolution``: about a minute per coded level and party; ``exit``:
            seconds, needs a larger margin — docs/slice-reconciliation.md).
        max_iterations, decoder_backend: decoder settings (Alice).
        disclosure, disclosure_rounds: incremental disclosure for the binary scheme
            (:mod:`cvqkd.reconciliation.disclosure`): a frame that does not decode gets up to
            ``disclosure·k`` of Bob's core data bits in ``disclosure_rounds`` equal steps,
            counted as leakage; 0 turns it off.
        prime_bits: verification-hash prime exponent (ε_cor per frame ≈ L/2^k).
        session: simulator settings (:class:`cvqkd.sim.session.SessionSettings`) or None.
        parameters: ``estimated`` (χ_BE from this block's estimates) or ``model`` (from
            ``model``, the link model: asymptotic level only, see :data:`MODEL_LABEL`).
        model: the assumed channel parameters (:class:`ModelParameters`), needed with
            ``parameters="model"``.
    """

    n_symbols: int = 1_000_000
    disclosed_fraction: float = 0.5
    security: SecurityParameters = field(default_factory=SecurityParameters)
    level: str = "auto"
    beta: float = 0.93
    frame_length: int = 100_000
    code: dict[str, Any] | None = None
    reconciliation: str = "auto"
    slice_bits: int = 4
    slice_planner: str = "density-evolution"
    max_iterations: int = 300
    decoder_backend: str = "auto"
    disclosure: float = 0.04
    disclosure_rounds: int = 8
    prime_bits: int = 61
    session: Any = None
    parameters: str = "estimated"
    model: ModelParameters | None = None

    def __post_init__(self) -> None:
        if self.parameters not in PARAMETER_SOURCES:
            raise ConfigError(
                f"parameters must be one of {PARAMETER_SOURCES}, got {self.parameters!r}"
            )
        if self.parameters == "model":
            if self.model is None:
                raise ConfigError("parameters = 'model' needs the model's T and ξ (model=...)")
            if self.level not in ("auto", "asymptotic"):
                raise ConfigError(
                    f"a key from assumed (model) parameters is asymptotic only; level "
                    f"{self.level!r} needs parameters = 'estimated'"
                )
        if self.level not in ("auto", *LEVELS):
            raise ConfigError(f"level must be auto or one of {LEVELS}, got {self.level!r}")
        if not 0.0 < self.disclosed_fraction < 1.0:
            raise ConfigError("disclosed_fraction must be in (0, 1)")
        if not 0.0 < self.beta <= 1.0:
            raise ConfigError(f"beta must be in (0, 1], got {self.beta}")
        if self.n_symbols < 1000:
            raise ConfigError(f"n_symbols must be ≥ 1000, got {self.n_symbols}")
        if self.reconciliation not in RECONCILIATION_SCHEMES:
            raise ConfigError(
                f"reconciliation must be one of {RECONCILIATION_SCHEMES}, got "
                f"{self.reconciliation!r}"
            )
        if self.reconciliation == "sliced" and self.code is not None:
            raise ConfigError("reconciliation = 'sliced' designs its own codes; drop 'code'")
        if not 0.0 <= self.disclosure <= 0.2:
            raise ConfigError(f"disclosure must be in [0, 0.2] (of k), got {self.disclosure}")
        if not 1 <= self.disclosure_rounds <= 64:
            raise ConfigError(f"disclosure_rounds must be in 1..64, got {self.disclosure_rounds}")
        if not 2 <= self.slice_bits <= 6:
            raise ConfigError(f"slice_bits must be in 2..6, got {self.slice_bits}")
        if self.slice_planner not in ("density-evolution", "exit"):
            raise ConfigError(
                f"slice_planner must be 'density-evolution' or 'exit', got {self.slice_planner!r}"
            )


# ------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class AliceData:
    """What Alice holds after the transmission: her complex symbols (√SNU), by slot."""

    start: int
    symbols: NDArray[np.complex64]


@dataclass(frozen=True)
class BobData:
    """What Bob holds: the transmission block with Alice's symbols blanked (zeros)."""

    block: Any  # cvqkd.dataset.TransmissionBlock


def split_block(block: Any) -> tuple[AliceData, BobData]:
    """Split a simulated :class:`~cvqkd.dataset.TransmissionBlock` into the parties' data."""
    alice = AliceData(start=int(block.start), symbols=np.asarray(block.alice_symbols).copy())
    blank = replace(block, alice_symbols=np.zeros_like(block.alice_symbols))
    return alice, BobData(block=blank)


# --------------------------------------------------------------------------------- results


@dataclass
class PartyResult:
    """One party's outcome. ``key`` is secret: never log it."""

    role: str
    key: bytes = field(repr=False)
    key_bits: int
    block_id: str
    level: str
    stages: dict[str, Any]
    timings_s: dict[str, float]
    auth: dict[str, Any]


@dataclass(frozen=True)
class BlockReport:
    """What a block did: the report of ``cvqkd run`` (no key material)."""

    keys_identical: bool
    delivered_bits: int
    alice_key_bits: int
    bob_key_bits: int
    block_id: str
    level: str
    bits_after_stage: dict[str, int]
    estimates: dict[str, Any]
    reconciliation: dict[str, Any]
    key_length: dict[str, Any]
    authentication: dict[str, Any]
    key_rate_bits_per_symbol: float
    key_rate_bps: float
    symbol_rate_hz: float
    min_symbols_finite_size: int | None
    min_symbols_composable: int | None
    timings_s: dict[str, float]
    net_key_bits: int = 0
    aborted: str | None = None
    randomness: str = ""
    randomness_secure: bool = True
    parameters: str = "estimated"
    parameters_used: dict[str, Any] = field(default_factory=dict)
    model_consistency: dict[str, Any] | None = None


#: How long a party of an in-process block (:func:`run_block`) waits for the other. Both are
#: threads of one process and a party that fails closes its end, so the wait only has to outlast
#: the other party's work: decoding 10^8 symbols of a 120 km link at a few frames per minute on
#: a loaded laptop takes far longer than the 600 s that suit two processes over TCP.
IN_PROCESS_TIMEOUT_S = 6 * 3600.0


# ------------------------------------------------------------------------------- the code


def layout_for(desc: dict[str, Any]) -> Any:
    """Build the reconciliation code (a ``FrameLayout``) from its public description."""
    from cvqkd.reconciliation.reconcile import FrameLayout

    src = desc.get("source")
    if src == "regular":
        from cvqkd.reconciliation.ldpc import random_regular

        code = random_regular(
            n_vars=int(desc["n_vars"]),
            var_degree=int(desc["var_degree"]),
            check_degree=int(desc["check_degree"]),
            rng=np.random.default_rng(int(desc["seed"])),
        )
        return FrameLayout.of(code)
    if src == "family":
        from cvqkd.reconciliation.fer import resolve_code

        return resolve_code(
            rate=float(desc["rate"]),
            frame_length=int(desc["frame_length"]),
            code_name=desc.get("name"),
        )
    if src == "alist":
        from cvqkd.reconciliation.ldpc import LdpcCode

        return FrameLayout.of(LdpcCode.read_alist(str(desc["path"])))
    raise ConfigError(f"unknown code source {src!r} (regular, family or alist)")


def _choose_code(cfg: PipelineConfig, snr: float) -> dict[str, Any]:
    if cfg.code is not None:
        return dict(cfg.code)
    if cfg.reconciliation == "sliced" or (cfg.reconciliation == "auto" and snr >= SLICED_FROM_SNR):
        return {
            "source": "sliced",
            "snr": float(snr),
            "bits": cfg.slice_bits,
            "frame_length": cfg.frame_length,
            "planner": cfg.slice_planner,
            # the EXIT proxy mis-plans by ±0.01 bit per level: twice its own default margin
            "margin_bits": 0.01 if cfg.slice_planner == "density-evolution" else 0.03,
            "seed": 0,
        }
    from cvqkd.reconciliation.codes import member_for_rate
    from cvqkd.reconciliation.mdr import awgn_capacity

    rate = cfg.beta * float(awgn_capacity(snr=snr))
    name = member_for_rate(rate=rate)
    return {"source": "family", "name": name, "rate": rate, "frame_length": cfg.frame_length}


def slice_design_for(desc: dict[str, Any]) -> Any:
    """The :class:`~cvqkd.reconciliation.slicing.SliceDesign` of a public ``sliced`` code
    description (both parties build it from the same numbers)."""
    from cvqkd.reconciliation.slicing import design_slices

    return design_slices(
        snr=float(desc["snr"]),
        bits=int(desc["bits"]),
        frame_length=int(desc["frame_length"]),
        planner=desc["planner"],
        margin_bits=float(desc["margin_bits"]),
        seed=int(desc["seed"]),
    )


def _fingerprint(design: Any) -> str:
    """The design's fingerprint as one canonical string (sent by Bob, checked by Alice)."""
    return json.dumps(design.fingerprint, separators=(",", ":"))


def _dimension(n_data: int) -> int:
    return next(d for d in (8, 4, 2, 1) if n_data % d == 0)


# ------------------------------------------------------------------------ security levels


def _holevo(est: dict[str, Any], *, worst: bool) -> float:
    """χ_BE per symbol: at the worst-case (T_min, ξ_max) for the finite-size levels; at the
    point estimates for the asymptotic level, with ξ̂ clamped at 0 (a negative estimate is
    noise; 0 credits Eve with more than ξ̂ would)."""
    from cvqkd.keyrate.gaussian import holevo_bits

    t = est["worst_case_transmittance"] if worst else est["transmittance"]
    xi = est["worst_case_excess_noise_snu"] if worst else max(0.0, est["excess_noise_snu"])
    if not (t > 0 and math.isfinite(xi)):
        return math.inf
    return float(
        holevo_bits(
            transmittance=min(t, 1.0),
            excess_noise_snu=xi,
            modulation_variance_snu=est["modulation_variance_snu"],
            detector_efficiency=est["detector_efficiency"],
            electronic_noise_snu=est["electronic_noise_snu"],
            detection=est["detection"],
        )
    )


def model_estimates(est: dict[str, Any], model: ModelParameters) -> dict[str, Any]:
    """``est`` with T and ξ (point values) replaced by the model's; η, v_el, V_A kept (they are
    calibrated at Bob's and Alice's ends, not properties of the channel)."""
    return {
        **est,
        "transmittance": model.transmittance,
        "excess_noise_snu": model.excess_noise_snu,
    }


def accounting(
    *,
    cfg: PipelineConfig,
    est: dict[str, Any],
    rec: dict[str, Any],
) -> tuple[KeyLength, dict[str, KeyLength]]:
    """The key length at every level and the one used (``cfg.level`` or the strongest > 0).

    ``est`` are the public estimates (Bob's announcement), ``rec`` the public reconciliation
    outcome (kept bits, syndrome and hash bits, FER). Both parties call this on the same public
    values, so both get the same ℓ. With ``cfg.parameters == "model"`` χ_BE uses the model's T
    and ξ and only the asymptotic level exists.
    """
    spq = 2 if est["detection"] == "heterodyne" else 1  # real samples per symbol
    # binary (MDR): one key bit of one bit of entropy per real sample; sliced: the coded levels'
    # bits per sample, with H(coded levels | disclosed levels) bits of entropy
    # (docs/slice-reconciliation.md)
    bits_per_sample = int(rec.get("key_bits_per_sample", 1))
    entropy_per_sample = float(rec.get("key_entropy_bits_per_sample", 1.0))
    n_kept = rec["key_bits"] // (spq * bits_per_sample)
    m = est["n_disclosed_symbols"]
    if n_kept == 0:
        raise SecurityAbort(
            f"no frame passed reconciliation ({rec['frames_failed']} of {rec['frames_tried']} "
            "failed): no key"
        )
    n_ok = rec["frames_tried"] - rec["frames_failed"]
    eps_cor = min(0.5, n_ok * float(rec.get("epsilon_cor_per_frame", 0.0)))
    security = replace(cfg.security, eps_cor=eps_cor)
    out: dict[str, KeyLength] = {}
    levels: tuple[str, ...] = LEVELS
    if cfg.parameters == "model":  # assumed T, ξ: the asymptotic level only, never more
        assert cfg.model is not None  # PipelineConfig checks
        est = model_estimates(est, cfg.model)
        levels = ("asymptotic",)
    for level in levels:
        chi = _holevo(est, worst=level != "asymptotic")
        if not math.isfinite(chi):
            continue
        out[level] = key_length(
            n_symbols_total=n_kept + m,
            n_symbols_disclosed=m,
            raw_bits_per_symbol=spq * entropy_per_sample,
            holevo_bits_per_symbol=chi,
            # bits disclosed to frames that failed first count like syndrome bits
            syndrome_bits=rec["syndrome_bits"] + int(rec.get("disclosed_bits", 0)),
            verification_hash_bits=rec["hash_bits"],
            level=level,  # type: ignore[arg-type]
            security=security,
            frame_success_probability=max(1e-9, 1.0 - rec["fer"]),
            discretisation_bits=int(rec.get("discretisation_bits", 1)),
        )
    if cfg.level != "auto":
        if cfg.level not in out:
            raise SecurityAbort(f"no usable worst-case parameters for the {cfg.level} level")
        chosen = out[cfg.level]
    else:
        chosen = next(
            (out[lv] for lv in reversed(LEVELS) if lv in out and out[lv].length_bits > 0),
            out["asymptotic"],
        )
    return chosen, out


# -------------------------------------------------------------------------------- parties


def _confirm_tag(ch: AuthenticatedChannel, key: bytes) -> bytes:
    """One-time-padded Wegman–Carter hash of the final key (independent of the key)."""
    pad = ch.psk.bob_to_alice.take(TAG_BYTES)
    return wegman_carter_tag(hash_key=ch.psk.hash_key, pad=pad, data=key)


def _estimates_public(est: Any) -> dict[str, Any]:
    return {
        "detection": est.detection,
        "epsilon_pe": est.epsilon_pe,
        "n_slots": est.n_slots,
        "n_data_symbols": est.n_data_symbols,
        "n_disclosed_symbols": est.n_disclosed_symbols,
        "n_key_symbols": est.n_key_symbols,
        "modulation_variance_snu": est.modulation_variance_snu,
        "detector_efficiency": est.detector_efficiency,
        "electronic_noise_snu": est.electronic_noise_snu.value,
        "transmittance": est.transmittance.value,
        "transmittance_interval": [est.transmittance.low, est.transmittance.high],
        "excess_noise_snu": est.excess_noise_snu.value,
        "excess_noise_interval_snu": [est.excess_noise_snu.low, est.excess_noise_snu.high],
        "snr": est.snr.value,
        "snr_interval": [est.snr.low, est.snr.high],
        "worst_case_transmittance": est.worst_case_transmittance,
        "worst_case_excess_noise_snu": est.worst_case_excess_noise_snu,
        "gain": est.t_hat_snu,
        "noise_variance_snu": est.sigma_sq_hat_snu,
        "gates_passed": est.gates.passed,
    }


def _finish(
    ch: AuthenticatedChannel,
    *,
    role: str,
    key: bytes,
    block_id: str,
    level: str,
    store: Any,
    link: Any,
    stages: dict[str, Any],
    timings: dict[str, float],
    consumed_before: int,
) -> PartyResult:
    """Replenish the authentication pool from the key, store the rest, build the result."""
    t0 = time.perf_counter()
    used = ch.psk.consumed_bytes - consumed_before
    replenish = min(len(key), used)
    ch.psk.replenish(key[:replenish])
    delivered = key[replenish:]
    if store is not None and delivered:
        store.add_keys(link, [(uuid.UUID(block_id), delivered)])
    timings["storage"] = time.perf_counter() - t0
    stages["auth_replenish_bits"] = 8 * replenish
    stages["delivered_bits"] = 8 * len(delivered)
    return PartyResult(
        role=role,
        key=delivered,
        key_bits=8 * len(delivered),
        block_id=block_id,
        level=level,
        stages=stages,
        timings_s=timings,
        auth={
            "pad_bytes_consumed": used,
            "replenished_bytes": replenish,
            "messages_sent": ch.send_seq,
            "messages_received": ch.recv_seq,
            "bytes_sent": ch.bytes_sent,
            "bytes_received": ch.bytes_received,
            "forgery_bound": ch.forgery_bound,
            "pool_bytes_left": [
                ch.psk.alice_to_bob.available_bytes,
                ch.psk.bob_to_alice.available_bytes,
            ],
        },
    )


def _guarded(ch: AuthenticatedChannel, body: Callable[[], PartyResult]) -> PartyResult:
    """Run one party; on any failure tell the peer (authenticated ``abort``) and re-raise."""
    try:
        return body()
    except Exception as exc:
        if not isinstance(exc, TransportError):
            reason = str(exc) if isinstance(exc, CvqkdError) else f"internal error: {exc!r}"
            ch.abort(reason)
        raise


def run_bob(
    ch: AuthenticatedChannel,
    data: BobData,
    *,
    config: PipelineConfig,
    randomness: SecretRandom,
    store: Any = None,
    link: Any = None,
    on_stage: Callable[[str], None] | None = None,
    partial: dict[str, Any] | None = None,
) -> PartyResult:
    """Bob's side of one block (see the module docstring); raises on abort.

    ``randomness`` supplies all of Bob's key material and announced choices (normally
    ``SecretRandom()``, the OS CSPRNG). ``partial`` (optional) is filled with the public
    results as they come (estimates, code, reconciliation, key lengths), so a caller can report
    how far an aborted block got.
    """
    if not isinstance(randomness, SecretRandom):
        raise TypeError("run_bob: randomness must be a cvqkd.randomness.SecretRandom")
    part = partial if partial is not None else {}
    return _guarded(ch, lambda: _bob(ch, data, config, randomness, store, link, on_stage, part))


def _bob(
    ch: AuthenticatedChannel,
    data: BobData,
    cfg: PipelineConfig,
    secret: SecretRandom,
    store: Any,
    link: Any,
    on_stage: Callable[[str], None] | None,
    partial: dict[str, Any],
) -> PartyResult:
    from cvqkd.estimation import DISCLOSURE_KEY_BOUND, disclosed_mask, estimate, key_samples

    note = on_stage or (lambda s: None)
    consumed0 = ch.psk.consumed_bytes
    timings: dict[str, float] = {}
    partial["timings_s"] = timings  # filled as the stages complete
    block = data.block
    # --- parameter estimation: Bob picks the disclosed slots, Alice reveals her symbols there
    t0 = time.perf_counter()
    key_pe = secret.below(DISCLOSURE_KEY_BOUND)  # public once sent; unpredictable before
    mask = disclosed_mask(block, key=key_pe, fraction=cfg.disclosed_fraction)
    detection = block.metadata.detection
    ch.send(
        "pe_request",
        disclosure_key=key_pe,
        fraction=cfg.disclosed_fraction,
        start=int(block.start),
        slot_kind=block.slot_kind,
        detection=detection,
        quadrature=block.quadrature if block.quadrature is not None else np.zeros(0, np.uint8),
        phase_estimate=block.phase_estimate.astype(np.float32),
    )
    disclosed = ch.recv("pe_disclose")["symbols"]
    if disclosed.shape != (int(mask.sum()),):
        raise SecurityAbort("Alice disclosed the wrong number of symbols")
    filled = np.zeros_like(block.alice_symbols)
    filled[mask] = disclosed
    pe_block = replace(block, alice_symbols=filled)
    est = estimate(
        pe_block,
        disclosed_fraction=cfg.disclosed_fraction,
        epsilon_pe=cfg.security.eps_pe,
        disclosure_key=key_pe,
    )
    pub = _estimates_public(est)
    partial["estimates"] = pub
    if not est.gates.passed:
        partial["gates"] = list(est.gates.reasons)
    est.require_passed()
    if cfg.parameters == "model":
        assert cfg.model is not None
        partial["model_consistency"] = model_consistency(pub, cfg.model)
        _require_consistent(pub, cfg.model)
    code_desc = _choose_code(cfg, pub["snr"])
    partial["code"] = code_desc
    sliced = code_desc["source"] == "sliced"
    layout = None if sliced else layout_for(code_desc)
    dim = 1 if layout is None else _dimension(layout.n_data)
    ch.send("estimates", estimates=pub, code=code_desc, dimension=dim)
    timings["estimation"] = time.perf_counter() - t0
    note("estimation")
    # --- reconciliation (reverse): Bob's bits are the key
    t0 = time.perf_counter()
    km = key_samples(pe_block, est)
    if layout is None:
        kept, rec_pub = _bob_sliced(ch, km, code_desc, cfg, secret)
    else:
        kept, rec_pub = _bob_binary(ch, km, layout, dim, cfg, secret)
    timings["reconciliation"] = time.perf_counter() - t0
    partial["reconciliation"] = rec_pub
    note("reconciliation")
    return _bob_finish(
        ch,
        cfg,
        pub,
        code_desc,
        int(block.n_slots),
        kept,
        rec_pub,
        secret,
        store,
        link,
        partial,
        timings,
        note,
        consumed0,
    )


def _bob_binary(
    ch: AuthenticatedChannel,
    km: Any,
    layout: Any,
    dim: int,
    cfg: PipelineConfig,
    secret: SecretRandom,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Bob's multidimensional reconciliation: normalise and rotate his samples, send the
    rotations, norms, syndromes and a tag per frame; returns his kept key bits and the public
    reconciliation record."""
    from cvqkd.reconciliation.reconcile import bob_reconcile, keep_frames

    y = np.asarray(km.bob, dtype=np.float64).ravel().copy()
    zero = y == 0.0  # ADC zeros cannot be normalised: Bob's private random sign (no leak)
    y[zero] = np.where(secret.bits(int(zero.sum())) == 1, 1e-12, -1e-12)
    # Bob's key bits b, punctured bits and hash seeds: drawn by bob_reconcile from ``rng``,
    # here the SecretRandom (it offers the Generator methods that code uses, nothing else)
    bits, msg = bob_reconcile(
        y, layout=layout, dimension=dim, rng=secret.as_generator(), prime_bits=cfg.prime_bits
    )
    plan, order = _disclosure(cfg, layout)
    ch.send(
        "reconcile",
        dimension=msg.dimension,
        rotations=msg.rotations,
        y_norms=msg.y_norms,
        syndromes=msg.syndromes,
        tags=[t.to_bytes() for t in msg.tags],
        # what Bob is willing to disclose per frame (his choice; Alice follows it)
        disclosure=[0, 0] if plan is None else [plan.step_bits, plan.max_bits],
    )
    ledger = None
    if plan is not None:
        from cvqkd.reconciliation.disclosure import DisclosureLedger

        ledger = DisclosureLedger(bits, order=order, plan=plan)
        while True:  # Alice's requests, until an empty one
            req = ch.recv("disclose_request")
            frames = np.asarray(req["frames"], dtype=np.int64)
            if frames.size == 0:
                break
            ch.send("disclose", bits=ledger.answer(frames, start=int(req["start"])))
    reply = ch.recv("frame_ok")
    frame_ok = np.asarray(reply["frame_ok"], dtype=bool)
    if frame_ok.shape != (bits.shape[0],):
        raise SecurityAbort(f"frame_ok has {frame_ok.size} entries for {bits.shape[0]} frames")
    kept = keep_frames(bits, frame_ok).ravel()
    disclosed = ledger.leak_bits(frame_ok) if ledger is not None else 0
    return kept, _binary_record(
        dict(reply["stats"]), layout, kept.size, int(frame_ok.sum()), cfg, disclosed
    )


def _disclosure(cfg: PipelineConfig, layout: Any, announced: Any = None) -> tuple[Any, Any]:
    """The disclosure plan and public order of this block's code (both None when off): Bob's
    from ``cfg``, Alice's from what Bob ``announced`` (``[step, max]`` bits)."""
    from cvqkd.reconciliation.disclosure import (
        DISCLOSURE_SEED,
        DisclosurePlan,
        frame_disclosure_order,
        plan_for,
    )

    order = frame_disclosure_order(
        layout.code.n_vars, layout.code.var_degrees, layout.data_positions, seed=DISCLOSURE_SEED
    )
    if announced is not None:
        step, most = (int(v) for v in announced)
        if step == most == 0:
            return None, None
        if not (0 < step <= most <= order.size):
            raise SecurityAbort(f"Bob announced an impossible disclosure plan {step}/{most}")
        return DisclosurePlan(step_bits=step, max_bits=most), order
    if cfg.disclosure == 0.0:
        return None, None
    plan = plan_for(
        layout.n_data - layout.code.n_checks,
        max_fraction=cfg.disclosure,
        rounds=cfg.disclosure_rounds,
    )
    if plan is None or order.size < plan.max_bits:
        return None, None
    return plan, order


def _binary_record(
    stats: dict[str, Any],
    layout: Any,
    key_bits: int,
    n_ok: int,
    cfg: PipelineConfig,
    disclosed_bits: int = 0,
) -> dict[str, Any]:
    """The public reconciliation record of the binary scheme (both parties build it; the
    fields the accounting uses come from the code and the party's own disclosure count, not
    from the peer's stats)."""
    from cvqkd.reconciliation.reconcile import FrameTag

    return {
        **stats,
        "scheme": "binary",
        "key_bits": int(key_bits),
        "key_bits_per_sample": 1,
        "key_entropy_bits_per_sample": 1.0,
        "discretisation_bits": 1,
        "syndrome_bits": n_ok * int(layout.code.n_checks),
        "hash_bits": n_ok * FrameTag(seed=0, tag=0, prime_bits=cfg.prime_bits).leaked_bits,
        "disclosed_bits": int(disclosed_bits),
    }


def _bob_finish(
    ch: AuthenticatedChannel,
    cfg: PipelineConfig,
    pub: dict[str, Any],
    code_desc: dict[str, Any],
    n_slots: int,
    kept: NDArray[np.uint8],
    rec_pub: dict[str, Any],
    secret: SecretRandom,
    store: Any,
    link: Any,
    partial: dict[str, Any],
    timings: dict[str, float],
    note: Callable[[str], None],
    consumed0: int,
) -> PartyResult:
    """Bob after reconciliation (either scheme): privacy amplification, confirmation, store."""
    # --- privacy amplification
    t0 = time.perf_counter()
    chosen, levels = accounting(cfg=cfg, est=pub, rec=rec_pub)
    partial["key_length"] = {lv: _kl_dict(k) for lv, k in levels.items()}
    ell = chosen.require_positive()
    if ell > kept.size:
        raise SecurityAbort(f"key length {ell} exceeds the {kept.size} reconciled bits")
    seed = random_seed(n_bits=int(kept.size), out_bits=ell, randomness=secret)
    block_id = str(uuid.UUID(bytes=secret.bytes(16), version=4))
    ch.send("privacy", out_bits=ell, level=chosen.level, seed=seed, block_id=block_id)
    final = toeplitz_hash(np.packbits(kept), seed=seed, n_bits=int(kept.size), out_bits=ell)
    key = final.tobytes()[: ell // 8]  # whole bytes only (≤ 7 bits dropped)
    timings["privacy"] = time.perf_counter() - t0
    note("privacy")
    # --- confirmation
    t0 = time.perf_counter()
    tag = _confirm_tag(ch, key)
    ch.send("confirm", tag=tag)
    ch.recv("confirmed")
    timings["confirmation"] = time.perf_counter() - t0
    note("confirmation")
    stages = {
        "slots": n_slots,
        "data_symbols": pub["n_data_symbols"],
        "disclosed_symbols": pub["n_disclosed_symbols"],
        "key_symbols": pub["n_key_symbols"],
        "reconciled_bits": int(kept.size),
        "leaked_bits": rec_pub["syndrome_bits"]
        + rec_pub["hash_bits"]
        + int(rec_pub.get("disclosed_bits", 0)),
        "pa_output_bits": ell,
        "final_key_bits": 8 * len(key),
        "estimates": pub,
        "code": code_desc,
        "reconciliation": rec_pub,
        "key_length": {lv: _kl_dict(k) for lv, k in levels.items()},
        "security": cfg.security,
        "model_consistency": partial.get("model_consistency"),
    }
    result = _finish(
        ch,
        role="bob",
        key=key,
        block_id=block_id,
        level=chosen.level,
        store=store,
        link=link,
        stages=stages,
        timings=timings,
        consumed_before=consumed0,
    )
    note("storage")
    return result


def _frame_counts(st: Any) -> dict[str, Any]:
    """The public frame counts of either scheme's stats (a ``FrameCounts``)."""
    return {
        "frames_tried": st.frames_tried,
        "frames_failed": st.frames_failed,
        "frames_unconverged": st.frames_unconverged,
        "frames_hash_failed": st.frames_hash_failed,
        "fer": st.fer,
    }


def _bob_sliced(
    ch: AuthenticatedChannel,
    km: Any,
    code_desc: dict[str, Any],
    cfg: PipelineConfig,
    secret: SecretRandom,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Bob's sliced reconciliation (docs/slice-reconciliation.md, "Pipeline"): quantise his
    samples, disclose the low levels, send the coded levels' syndromes and a tag per frame;
    returns his kept key bits and the public reconciliation record."""
    from cvqkd.reconciliation.reconcile import keep_frames
    from cvqkd.reconciliation.slicing import slice_reconcile_bob

    design = slice_design_for(code_desc)
    y = np.asarray(km.bob, dtype=np.float64).ravel()
    key, msg = slice_reconcile_bob(
        y, design=design, rng=secret.as_generator(), prime_bits=cfg.prime_bits
    )
    ch.send(
        "reconcile",
        fingerprint=_fingerprint(design),
        y_std=msg.y_std,
        disclosed=msg.disclosed,
        syndromes=list(msg.syndromes),
        tags=[t.to_bytes() for t in msg.tags],
    )
    reply = ch.recv("frame_ok")
    frame_ok = np.asarray(reply["frame_ok"], dtype=bool)
    if frame_ok.shape != (msg.frames,):
        raise SecurityAbort("Alice's frame_ok does not match the frames sent")
    kept = keep_frames(key, frame_ok).ravel()
    return kept, _sliced_record(dict(reply["stats"]), design, kept.size, int(frame_ok.sum()), cfg)


def _sliced_record(
    stats: dict[str, Any], design: Any, key_bits: int, n_ok: int, cfg: PipelineConfig
) -> dict[str, Any]:
    """The public reconciliation record of the sliced scheme (both parties build it)."""
    from cvqkd.reconciliation.reconcile import FrameTag

    return {
        **stats,
        "scheme": "sliced",
        "key_bits": int(key_bits),
        "key_bits_per_sample": len(design.coded_levels),
        "key_entropy_bits_per_sample": design.key_entropy_bits_per_symbol,
        "discretisation_bits": int(design.quantiser.bits),
        "disclosed_levels": list(design.disclosed_levels),
        "level_checks": list(design.level_checks),
        "syndrome_bits": n_ok * int(sum(design.level_checks)),
        "hash_bits": n_ok * FrameTag(seed=0, tag=0, prime_bits=cfg.prime_bits).leaked_bits,
    }


def _alice_sliced(
    ch: AuthenticatedChannel,
    x: NDArray[np.float64],
    pub: dict[str, Any],
    code_desc: dict[str, Any],
    cfg: PipelineConfig,
) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Alice's side of :func:`_bob_sliced`: multistage decoding, hash check per frame."""
    from cvqkd.errors import DataFormatError
    from cvqkd.reconciliation.reconcile import FrameTag
    from cvqkd.reconciliation.slicing import SliceBobMessage, slice_reconcile_alice

    design = slice_design_for(code_desc)
    m = ch.recv("reconcile")
    if m["fingerprint"] != _fingerprint(design):
        raise SecurityAbort("Bob's slice design differs from Alice's (same public parameters)")
    msg = SliceBobMessage(
        fingerprint=design.fingerprint,
        y_std=float(m["y_std"]),
        disclosed=np.asarray(m["disclosed"], dtype=np.uint8),
        syndromes=tuple(np.asarray(v, dtype=np.uint8) for v in m["syndromes"]),
        tags=tuple(FrameTag.from_bytes(b) for b in m["tags"]),
    )
    try:
        res = slice_reconcile_alice(
            x,
            msg,
            design=design,
            gain=float(pub["gain"]),
            noise_variance=float(pub["noise_variance_snu"]),
            max_iterations=cfg.max_iterations,
            backend=cfg.decoder_backend,  # type: ignore[arg-type]
        )
    except DataFormatError as exc:
        raise SecurityAbort(f"Bob's reconciliation message is malformed: {exc}") from None
    st = res.stats
    stats = {
        **_frame_counts(st),
        "snr": st.snr,
        "beta": st.beta,
        "ideal_beta": st.ideal_beta,
        "mean_iterations": float(np.mean(st.mean_iterations)) if st.mean_iterations else 0.0,
        "mean_iterations_per_level": list(st.mean_iterations),
        "epsilon_cor_per_frame": st.epsilon_cor,
        "n_data_per_frame": design.frame_length,
    }
    ch.send("frame_ok", frame_ok=res.frame_ok, stats=stats)
    kept = res.key_bits.ravel()
    return kept, _sliced_record(stats, design, kept.size, int(res.frame_ok.sum()), cfg)


def _kl_dict(k: KeyLength) -> dict[str, Any]:
    return {
        "level": k.level,
        "length_bits": k.length_bits,
        "terms": k.terms,
        "epsilon_total": k.epsilon_total,
        "epsilons": k.epsilons,
        "finite_size_secure": k.finite_size_secure,
        "reference": k.reference,
        "n_key_symbols": k.n_key_symbols,
    }


def run_alice(
    ch: AuthenticatedChannel,
    data: AliceData,
    *,
    config: PipelineConfig,
    store: Any = None,
    link: Any = None,
) -> PartyResult:
    """Alice's side of one block (see the module docstring); raises on abort."""
    return _guarded(ch, lambda: _alice(ch, data, config, store, link))


def _alice_reference(
    symbols: NDArray[np.complex64], mask: NDArray[np.bool_], req: dict[str, Any]
) -> NDArray[np.float64]:
    a = symbols[mask].astype(np.complex128)
    if req["detection"] == "heterodyne":
        return np.stack((a.real, a.imag), axis=1)
    psi = np.asarray(req["phase_estimate"], dtype=np.float64)[mask]
    theta = np.asarray(req["quadrature"])[mask] * (np.pi / 2.0) + psi
    return np.asarray(a.real * np.cos(theta) + a.imag * np.sin(theta), dtype=np.float64)


def _alice(
    ch: AuthenticatedChannel,
    data: AliceData,
    cfg: PipelineConfig,
    store: Any,
    link: Any,
) -> PartyResult:
    from cvqkd.dataset import SLOT_DATA
    from cvqkd.estimation import disclosed_slots
    from cvqkd.reconciliation.reconcile import BobMessage, FrameTag, alice_reconcile

    consumed0 = ch.psk.consumed_bytes
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    req = ch.recv("pe_request")
    slot_kind = np.asarray(req["slot_kind"], dtype=np.uint8)
    if slot_kind.size != data.symbols.size or int(req["start"]) != data.start:
        raise SecurityAbort("Bob's slot list does not match Alice's transmission")
    is_data = slot_kind == SLOT_DATA
    mask = disclosed_slots(
        start=data.start,
        slot_kind=slot_kind,
        key=int(req["disclosure_key"]),
        fraction=float(req["fraction"]),
    )
    ch.send("pe_disclose", symbols=data.symbols[mask].astype(np.complex64))
    ann = ch.recv("estimates")
    pub = ann["estimates"]
    if cfg.parameters == "model":  # Alice checks Bob's announcement against the model herself
        assert cfg.model is not None
        _require_consistent(pub, cfg.model)
    sliced = ann["code"].get("source") == "sliced"
    layout = None if sliced else layout_for(ann["code"])
    timings["estimation"] = time.perf_counter() - t0
    # --- reconciliation
    t0 = time.perf_counter()
    x = _alice_reference(data.symbols, is_data & ~mask, req).ravel()
    if sliced:
        kept, rec_pub = _alice_sliced(ch, x, pub, ann["code"], cfg)
        timings["reconciliation"] = time.perf_counter() - t0
        return _alice_finish(ch, cfg, pub, kept, rec_pub, store, link, timings, consumed0)
    assert layout is not None
    m = ch.recv("reconcile")
    msg = BobMessage(
        dimension=int(m["dimension"]),
        rotations=np.asarray(m["rotations"]),
        y_norms=np.asarray(m["y_norms"]),
        syndromes=np.asarray(m["syndromes"], dtype=np.uint8),
        tags=tuple(FrameTag.from_bytes(b) for b in m["tags"]),
    )
    plan, order = _disclosure(cfg, layout, announced=m.get("disclosure", [0, 0]))
    if plan is not None:  # Alice's own choice: a short first attempt, warm retries
        plan = plan.with_caps(cfg.max_iterations)

    def request(frames: NDArray[np.int64], start: int) -> NDArray[np.uint8]:
        ch.send("disclose_request", frames=frames, start=start)
        return np.asarray(ch.recv("disclose")["bits"], dtype=np.uint8)

    res = alice_reconcile(
        x,
        msg,
        layout=layout,
        gain=float(pub["gain"]),
        noise_variance=float(pub["noise_variance_snu"]),
        max_iterations=cfg.max_iterations,
        backend=cfg.decoder_backend,  # type: ignore[arg-type]
        disclosure=plan,
        request=request,
        disclosure_order=order,
    )
    if plan is not None:
        ch.send("disclose_request", frames=np.zeros(0, dtype=np.int64), start=-1)
    st = res.stats
    stats = {
        **_frame_counts(st),
        "rate": st.rate,
        "snr": st.snr,
        "beta": st.beta,
        "mean_iterations": st.mean_iterations,
        "epsilon_cor_per_frame": st.epsilon_cor,
        "dimension": msg.dimension,
        "n_data_per_frame": int(layout.n_data),
        "frames_with_disclosure": st.frames_with_disclosure,
    }
    ch.send("frame_ok", frame_ok=res.frame_ok, stats=stats)
    kept = res.key_bits.ravel()
    rec_pub = _binary_record(
        stats, layout, kept.size, int(res.frame_ok.sum()), cfg, st.disclosed_bits
    )
    timings["reconciliation"] = time.perf_counter() - t0
    return _alice_finish(ch, cfg, pub, kept, rec_pub, store, link, timings, consumed0)


def _alice_finish(
    ch: AuthenticatedChannel,
    cfg: PipelineConfig,
    pub: dict[str, Any],
    kept: NDArray[np.uint8],
    rec_pub: dict[str, Any],
    store: Any,
    link: Any,
    timings: dict[str, float],
    consumed0: int,
) -> PartyResult:
    """Alice after reconciliation (either scheme): ℓ as Bob, privacy amplification,
    confirmation, store."""
    # --- privacy amplification: recompute ℓ independently, it must match Bob's
    t0 = time.perf_counter()
    pa = ch.recv("privacy")
    chosen, _ = accounting(cfg=cfg, est=pub, rec=rec_pub)
    ell = int(pa["out_bits"])
    if ell != chosen.length_bits or pa["level"] != chosen.level:
        raise SecurityAbort(
            f"Bob's key length {ell} ({pa['level']}) differs from Alice's "
            f"{chosen.length_bits} ({chosen.level})"
        )
    seed = np.asarray(pa["seed"], dtype=np.uint8)
    final = toeplitz_hash(np.packbits(kept), seed=seed, n_bits=int(kept.size), out_bits=ell)
    key = final.tobytes()[: ell // 8]
    timings["privacy"] = time.perf_counter() - t0
    # --- confirmation
    t0 = time.perf_counter()
    mine = _confirm_tag(ch, key)
    theirs = ch.recv("confirm")["tag"]
    if not hmac.compare_digest(mine, theirs):
        raise SecurityAbort("final key confirmation failed: Alice's and Bob's keys differ")
    ch.send("confirmed")
    timings["confirmation"] = time.perf_counter() - t0
    stages = {
        "reconciled_bits": int(kept.size),
        "pa_output_bits": ell,
        "final_key_bits": 8 * len(key),
        "reconciliation": rec_pub,
    }
    return _finish(
        ch,
        role="alice",
        key=key,
        block_id=str(pa["block_id"]),
        level=chosen.level,
        store=store,
        link=link,
        stages=stages,
        timings=timings,
        consumed_before=consumed0,
    )


# ------------------------------------------------------------------ one block, in-process


def default_preshared_secret(randomness: SecretRandom, nbytes: int = 4096) -> bytes:
    """A fresh pre-shared authentication secret (both parties get a copy out of band)."""
    if not isinstance(randomness, SecretRandom):
        raise TypeError("the pre-shared secret needs a cvqkd.randomness.SecretRandom")
    return randomness.bytes(nbytes)


def simulate(channel: Any, *, config: PipelineConfig, rng: np.random.Generator) -> Any:
    """Simulate the transmission of one block (both parties' data in one block)."""
    from cvqkd.sim.session import simulate_block

    return simulate_block(channel, n_symbols=config.n_symbols, rng=rng, settings=config.session)


def run_block(
    channel: Any,
    *,
    config: PipelineConfig,
    seed: int | None = None,
    randomness: SecretRandom | None = None,
    block: Any = None,
    secret: bytes | None = None,
    stores: tuple[Any, Any] | None = None,
    link: Any = None,
    on_stage: Callable[[str], None] | None = None,
    tamper: Callable[[int, bytes], bytes | None] | None = None,
    tamper_alice: Callable[[int, bytes], bytes | None] | None = None,
) -> BlockReport:
    """Run one block end to end: Alice and Bob as two threads over an in-process channel.

    ``channel`` is a :class:`~cvqkd.sim.channel.ChannelParameters` (or pass a measured or
    pre-simulated ``block``); ``seed`` seeds the simulated transmission only; ``randomness``
    supplies the key material (the pre-shared ``secret`` unless given, and all of Bob's draws):
    default ``SecretRandom()``, the OS CSPRNG — pass ``SecretRandom.insecure_for_tests(s)`` for
    a reproducible, labelled-insecure block; ``stores`` are (Alice's, Bob's) key stores;
    ``tamper`` is a test hook that sees every Bob→Alice frame (index, bytes) and may change or
    drop it;
    ``tamper_alice`` the same for Alice→Bob.
    Raises the first party's :class:`~cvqkd.errors.CvqkdError` if the block aborts.
    """
    # the simulation stream keeps its historical position (child 1 of SeedSequence(seed))
    sim_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1])
    key_source = randomness if randomness is not None else SecretRandom()
    if not isinstance(key_source, SecretRandom):
        raise TypeError("run_block: randomness must be a cvqkd.randomness.SecretRandom")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if block is None:
        block = simulate(channel, config=config, rng=sim_rng)
    timings["transmission"] = time.perf_counter() - t0
    if on_stage:
        on_stage("transmission")
    alice_data, bob_data = split_block(block)
    secret = secret if secret is not None else default_preshared_secret(key_source)
    ta, tb = InProcessTransport.pair()
    tb_used: Any = tb if tamper is None else _Tamper(tb, tamper)
    ta_used: Any = ta if tamper_alice is None else _Tamper(ta, tamper_alice)
    psk_a, psk_b = PresharedKey.from_secret(secret), PresharedKey.from_secret(secret)
    wait = IN_PROCESS_TIMEOUT_S
    a_ch = AuthenticatedChannel(ta_used, role="alice", psk=psk_a, timeout_s=wait)
    b_ch = AuthenticatedChannel(tb_used, role="bob", psk=psk_b, timeout_s=wait)
    a_store, b_store = stores if stores is not None else (None, None)
    box: dict[str, Any] = {}
    partial: dict[str, Any] = {
        "slots": int(block.n_slots),
        "transmission_s": timings["transmission"],
        "randomness": key_source.label,
        "randomness_secure": key_source.secure,
    }

    def alice_thread() -> None:
        try:
            box["alice"] = run_alice(a_ch, alice_data, config=config, store=a_store, link=link)
        except BaseException as exc:  # reported to the caller below
            box["alice_error"] = exc
            ta.close()

    th = threading.Thread(target=alice_thread, name="alice", daemon=True)
    th.start()
    try:
        bob = run_bob(
            b_ch,
            bob_data,
            config=config,
            randomness=key_source,
            store=b_store,
            link=link,
            on_stage=on_stage,
            partial=partial,
        )
    except BaseException as exc:
        tb.close()
        th.join(60)
        first = box.get("alice_error")
        # the root cause: Alice's error when Bob only saw her hang up, else Bob's
        root = first if first is not None and isinstance(exc, TransportError) else exc
        if isinstance(root, CvqkdError):
            partial["parameters"] = config.parameters
            _add_block_size_hint(partial, config)
            root.partial = partial  # type: ignore[attr-defined]
        if root is exc:
            raise
        raise root from exc
    th.join(IN_PROCESS_TIMEOUT_S)
    if "alice_error" in box:
        raise box["alice_error"]
    alice: PartyResult = box["alice"]
    identical = hmac.compare_digest(alice.key, bob.key)
    if not identical:  # cannot happen after a passed confirmation; never release then
        raise SecurityAbort("keys differ after confirmation")
    return replace(
        _report(alice, bob, block, timings, config),
        randomness=key_source.label,
        randomness_secure=key_source.secure,
    )


class _Tamper:
    def __init__(self, inner: InProcessTransport, fn: Callable[[int, bytes], bytes | None]):
        self.inner, self.fn, self.i = inner, fn, 0

    def send(self, data: bytes) -> None:
        out = self.fn(self.i, data)
        self.i += 1
        if out is not None:
            self.inner.send(out)

    def recv(self, timeout_s: float | None) -> bytes:
        return self.inner.recv(timeout_s)

    def close(self) -> None:
        self.inner.close()


def _add_block_size_hint(partial: dict[str, Any], cfg: PipelineConfig) -> None:
    """For an aborted block: the block size a finite-size / composable key would need, at the
    measured β and FER if reconciliation ran and kept frames, else at the target β, FER 0."""
    est = partial.get("estimates")
    if est and cfg.parameters == "model" and cfg.model is not None:
        est = model_estimates(est, cfg.model)
        partial["block_size_hint_parameters"] = "model T and ξ"
    if not est or est["transmittance"] <= 0:
        return
    rec = partial.get("reconciliation") or {}
    if not rec or rec.get("fer", 1.0) >= 1.0:
        rec = {"beta": cfg.beta, "fer": 0.0}
        partial["block_size_hint_assumes"] = f"target β = {cfg.beta}, FER = 0"
    for level in ("finite-size", "composable"):
        try:
            partial[f"min_symbols_{level.replace('-', '_')}"] = needed_symbols(
                level=level, est=est, rec=rec, security=cfg.security
            )
        except (CvqkdError, ValueError, ArithmeticError):  # a hint only; never mask the abort
            partial[f"min_symbols_{level.replace('-', '_')}"] = None


def needed_symbols(
    *, level: str, est: dict[str, Any], rec: dict[str, Any], security: SecurityParameters
) -> int | None:
    """Predicted block size (symbols) for a positive key at ``level``; None if none ≤ 1e16.

    Uses :mod:`cvqkd.keyrate.finite_size` / :mod:`cvqkd.keyrate.composable` at the estimated
    T̂ and max(ξ̂, 0), the measured β and FER and this block's disclosed fraction (the
    confidence intervals then shrink with the block as 1/√m).
    """
    from cvqkd.keyrate import finite_size
    from cvqkd.keyrate.composable import composable_gg02

    sp = finite_size.SecurityParameters(
        epsilon_pe=security.eps_pe,
        epsilon_smooth=security.eps_smooth,
        epsilon_pa=security.eps_pa,
        epsilon_cor=max(security.eps_cor, 1e-300),
        epsilon_ent=security.eps_ent,
    )
    m = est["n_disclosed_symbols"]
    kw = dict(
        transmittance=est["transmittance"],
        excess_noise_snu=max(0.0, est["excess_noise_snu"]),
        modulation_variance_snu=est["modulation_variance_snu"],
        estimation_fraction=m / (m + est["n_key_symbols"]),
        security=sp,
        detector_efficiency=est["detector_efficiency"],
        electronic_noise_snu=est["electronic_noise_snu"],
        reconciliation_efficiency=max(1e-6, min(1.0, rec["beta"])),
        detection=est["detection"],
    )

    def rate(log_n: float) -> float:
        r: Any
        with np.errstate(invalid="ignore", divide="ignore"):
            if level == "composable":
                r = composable_gg02(
                    block_size=10.0**log_n,
                    frame_success_probability=max(1e-9, 1.0 - rec["fer"]),
                    discretisation_bits=int(rec.get("discretisation_bits", 1)),
                    **kw,
                )
            else:
                r = finite_size.finite_size_gg02(block_size=10.0**log_n, **kw)
        v = float(np.asarray(r.key_rate_bits_per_symbol))
        return v if math.isfinite(v) else -1.0

    lo, hi = 2.0, 16.0
    if rate(hi) <= 0:
        return None
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if rate(mid) > 0 else (mid, hi)
    return math.ceil(10.0**hi)


def _report(
    alice: PartyResult,
    bob: PartyResult,
    block: Any,
    timings: dict[str, float],
    cfg: PipelineConfig | None = None,
) -> BlockReport:
    st = bob.stages
    pub = st["estimates"]
    model = cfg.model if cfg is not None and cfg.parameters == "model" else None
    # the block size a finite-size key needs: at the model's T, ξ when those were assumed
    need_est = model_estimates(pub, model) if model is not None else pub
    rec = st["reconciliation"]
    kl = st["key_length"]
    sym_rate = float(getattr(block.metadata, "symbol_rate_hz", 0.0) or 0.0)
    slots = int(st["slots"])
    delivered = bob.key_bits
    for k, v in bob.timings_s.items():
        timings[k] = max(v, alice.timings_s.get(k, 0.0))
    eps_mac = float(alice.auth["forgery_bound"] + bob.auth["forgery_bound"])
    for entry in kl.values():  # the channel's forgery bound joins every finite-size ε
        if entry["epsilons"]:
            entry["epsilons"]["eps_mac"] = entry["epsilons"].get("eps_mac", 0.0) + eps_mac
            entry["epsilon_total"] = float(sum(entry["epsilons"].values()))
    chosen = kl[bob.level]
    sec = bob.stages["security"]

    def need(level: str) -> int | None:
        if model is None and (level not in kl or kl[level]["length_bits"] > 0):
            return None
        return needed_symbols(level=level, est=need_est, rec=rec, security=sec)

    if model is not None:
        used_params = {
            "source": "model",
            "label": MODEL_LABEL,
            "transmittance": model.transmittance,
            "excess_noise_snu": model.excess_noise_snu,
            "assumed_from": model.source,
            "block_estimates": {
                "transmittance": pub["transmittance"],
                "transmittance_interval": pub["transmittance_interval"],
                "excess_noise_snu": pub["excess_noise_snu"],
                "excess_noise_interval_snu": pub["excess_noise_interval_snu"],
            },
        }
    else:
        used_params = {
            "source": "estimated",
            "transmittance": pub["transmittance"],
            "excess_noise_snu": pub["excess_noise_snu"],
            "worst_case_transmittance": pub["worst_case_transmittance"],
            "worst_case_excess_noise_snu": pub["worst_case_excess_noise_snu"],
        }

    return BlockReport(
        keys_identical=True,
        delivered_bits=delivered,
        alice_key_bits=alice.key_bits,
        bob_key_bits=bob.key_bits,
        block_id=bob.block_id,
        level=bob.level,
        bits_after_stage={
            "slots_sent": slots,
            "data_symbols": int(st["data_symbols"]),
            "key_symbols_after_disclosure": int(st["key_symbols"]),
            "reconciled_bits": int(st["reconciled_bits"]),
            "leaked_bits": int(st["leaked_bits"]),
            "privacy_amplified_bits": int(st["pa_output_bits"]),
            "final_key_bits": int(st["final_key_bits"]),
            "auth_replenish_bits": int(st["auth_replenish_bits"]),
            "delivered_bits": delivered,
        },
        estimates=pub,
        reconciliation={**rec, "code": st["code"]},
        key_length={"used": chosen, "all_levels": kl},
        authentication={"alice": alice.auth, "bob": bob.auth},
        net_key_bits=int(st["final_key_bits"]) - 8 * int(bob.auth["pad_bytes_consumed"]),
        key_rate_bits_per_symbol=delivered / slots,
        key_rate_bps=delivered / slots * sym_rate,
        symbol_rate_hz=sym_rate,
        min_symbols_finite_size=need("finite-size"),
        min_symbols_composable=need("composable"),
        timings_s=timings,
        parameters="model" if model is not None else "estimated",
        parameters_used=used_params,
        model_consistency=st.get("model_consistency"),
    )
