"""``parameters="model"``: a key from assumed (link-model) T and ξ, honestly labelled and gated.

Same short, clean channel as test_pipeline.py (T = 0.8, homodyne, 60 000 slots, a random
(3, 8)-regular code: a few seconds per block). There the block's own intervals are tight
(T ± 0.1, ξ ± 0.2 SNU at ε_PE = 1e-10), so the consistency gate must catch a channel that
differs from the model; at 120 km the same gate is loose (± several SNU), which is why such a
key is labelled "not secure against an adversary who changes the channel".
"""

from __future__ import annotations

import pytest

from cvqkd.errors import ConfigError, SecurityAbort
from cvqkd.kms.store import LinkId, open_store
from cvqkd.pipeline import MODEL_LABEL, ModelParameters, PipelineConfig, run_block
from cvqkd.randomness import SecretRandom
from cvqkd.sim.channel import ChannelParameters

LINK = LinkId("KME_A", "KME_B")
CODE = {"source": "regular", "n_vars": 2000, "var_degree": 3, "check_degree": 8, "seed": 1}


def _channel(*, transmittance: float = 0.8, xi: float = 0.01) -> ChannelParameters:
    return ChannelParameters(
        transmittance=transmittance,
        detector_efficiency=0.9,
        electronic_noise_snu=0.01,
        detection="homodyne",
        excess_noise_sources_snu={"test": xi},
        modulation_variance_snu=4.0,
        symbol_rate_hz=1e8,
    )


def _model_config(*, transmittance: float = 0.8, xi: float = 0.01, **kw) -> PipelineConfig:  # type: ignore[no-untyped-def]
    return PipelineConfig(
        n_symbols=60_000,
        code=CODE,
        parameters="model",
        model=ModelParameters(transmittance=transmittance, excess_noise_snu=xi, source="test"),
        **kw,
    )


def test_model_key_uses_the_model_holevo_and_is_only_asymptotic() -> None:
    from cvqkd.keyrate.gaussian import holevo_bits

    rep = run_block(
        _channel(), config=_model_config(), seed=11, randomness=SecretRandom.insecure_for_tests(1)
    )
    assert rep.keys_identical and rep.delivered_bits > 0
    assert rep.parameters == "model" and rep.level == "asymptotic"
    # never a finite-size or composable length: the model mode computes no such level
    assert set(rep.key_length["all_levels"]) == {"asymptotic"}
    assert rep.key_length["used"]["finite_size_secure"] is False
    pu = rep.parameters_used
    assert (pu["source"], pu["transmittance"], pu["excess_noise_snu"]) == ("model", 0.8, 0.01)
    assert pu["label"] == MODEL_LABEL and pu["assumed_from"] == "test"
    assert rep.model_consistency is not None and rep.model_consistency["passed"] is True
    # identity: Eve's term is n·χ_BE at the MODEL's T and ξ (η, v_el, V_A as announced), not at
    # the block's estimates
    e = rep.estimates
    chi = float(
        holevo_bits(
            transmittance=0.8,
            excess_noise_snu=0.01,
            modulation_variance_snu=e["modulation_variance_snu"],
            detector_efficiency=e["detector_efficiency"],
            electronic_noise_snu=e["electronic_noise_snu"],
            detection="homodyne",
        )
    )
    used = rep.key_length["used"]
    assert -used["terms"]["holevo_eve"] == pytest.approx(used["n_key_symbols"] * chi, rel=1e-12)
    assert e["excess_noise_snu"] != 0.01  # the block's own ξ̂ was not what was used
    # the report still says how large a block a finite-size key would need
    assert rep.min_symbols_finite_size is not None and rep.min_symbols_finite_size > 60_000


def test_report_labels_a_model_key_and_never_calls_it_finite_size() -> None:
    from cvqkd.report import build_report

    cfg = _model_config()
    block = run_block(_channel(), config=cfg, seed=12)  # OS CSPRNG key material
    rep = build_report(block, scenario="test", budget=None, config=cfg, wall_time_s=1.0)
    st = rep["security_statement"]
    assert st.startswith(MODEL_LABEL)
    assert "NOT finite-size or composably secure" in st
    assert not st.startswith(("finite-size", "composable"))
    assert f"{float(rep['min_symbols_finite_size']):.2g}" in st  # "a finite-size key needs ≈N"
    assert rep["config"]["parameters"] == "model" and rep["parameters"] == "model"
    assert rep["parameters_used"]["source"] == "model"


def test_gate_aborts_when_the_channel_is_lossier_than_the_model(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # true T = 0.5 against a model T = 0.8: the block's interval (±0.1 at T = 0.8) excludes it
    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    with pytest.raises(SecurityAbort, match=r"model T = 0\.8 outside") as info:
        run_block(
            _channel(transmittance=0.5),
            config=_model_config(),
            seed=13,
            randomness=SecretRandom.insecure_for_tests(13),
            stores=(sa, sb),
            link=LINK,
        )
    assert sa.available_chunks(LINK) == sb.available_chunks(LINK) == 0
    partial = info.value.partial  # type: ignore[attr-defined]
    assert partial["parameters"] == "model"
    assert partial["model_consistency"]["transmittance_in_interval"] is False


def test_gate_aborts_when_the_channel_is_three_times_noisier_than_the_model() -> None:
    # true ξ = 0.45 SNU, model ξ = 0.15 (3×): the block's ξ interval is ±0.2 SNU (σ ≈ 0.03,
    # z ≈ 6.4 at ε_PE = 1e-10), so 0.15 lies ≈ 10σ below the estimate, far outside it
    with pytest.raises(SecurityAbort, match=r"model ξ = 0\.15 SNU outside"):
        run_block(
            _channel(xi=0.45),
            config=_model_config(xi=0.15),
            seed=14,
            randomness=SecretRandom.insecure_for_tests(14),
        )


def test_the_same_model_passes_the_gate_when_the_channel_matches() -> None:
    # the control for the two aborts above: same seeds, the channel equal to the model. At
    # ξ = 0.15 SNU the asymptotic key of this short block may be ≤ 0 (then it aborts for that
    # reason, after the gate): only the gate's verdict is asserted.
    for seed, t, xi in ((13, 0.5, 0.01), (14, 0.8, 0.45)):
        try:
            rep = run_block(
                _channel(transmittance=t, xi=xi),
                config=_model_config(transmittance=t, xi=xi),
                seed=seed,
                randomness=SecretRandom.insecure_for_tests(seed),
            )
            check = rep.model_consistency
        except SecurityAbort as exc:
            assert "differs from the assumed model" not in str(exc)
            check = exc.partial["model_consistency"]  # type: ignore[attr-defined]
        assert check is not None and check["passed"] is True, check


def test_model_mode_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="needs the model"):
        PipelineConfig(parameters="model")
    with pytest.raises(ConfigError, match="asymptotic only"):
        _model_config(level="finite-size")
    with pytest.raises(ConfigError, match="parameters must be one of"):
        PipelineConfig(parameters="guessed")
    with pytest.raises(ConfigError, match="excess noise"):
        ModelParameters(transmittance=0.5, excess_noise_snu=-0.1)
