"""The HDF5 dataset format: exact round trips, chunked reading, and one clear error per defect."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from cvqkd.dataset import (
    SCHEMA_VERSION,
    TransmissionBlock,
    iter_dataset,
    read_dataset,
    read_metadata,
    write_dataset,
)
from cvqkd.errors import DataFormatError
from cvqkd.estimation import estimate
from cvqkd.sim import ChannelParameters, SessionSettings, simulate_block, simulate_stream
from cvqkd.sim.session import count_pilots


def _channel(detection: str) -> ChannelParameters:
    return ChannelParameters(
        transmittance=0.3,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        detection=detection,
        excess_noise_sources_snu={"raman_forward": 0.02},
        modulation_variance_snu=4.0,
        symbol_rate_hz=1e8,
        local_oscillator="local",
        linewidth_alice_hz=1e3,
        linewidth_bob_hz=1e3,
    )


def _assert_same(a: TransmissionBlock, b: TransmissionBlock) -> None:
    assert a.metadata == b.metadata
    assert (a.start, a.n_slots, a.total_slots) == (b.start, b.n_slots, b.total_slots)
    for name in ("slot_kind", "alice_symbols", "bob_samples", "phase_estimate", "pilot_samples"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    if a.quadrature is None:
        assert b.quadrature is None
    else:
        assert b.quadrature is not None and np.array_equal(a.quadrature, b.quadrature)


@pytest.mark.parametrize("detection", ["homodyne", "heterodyne"])
@pytest.mark.parametrize("bits", [12, 0])
def test_round_trip_is_exact(tmp_path: Path, detection: str, bits: int) -> None:
    b = simulate_block(
        _channel(detection),
        n_symbols=5_001,
        rng=np.random.default_rng(1),
        settings=SessionSettings(adc_bits=bits),
    )
    path = write_dataset(tmp_path / "d.h5", b)
    back = read_dataset(path)
    _assert_same(b, back)
    meta, n = read_metadata(path)
    assert n == 5_001 and meta == b.metadata
    assert meta.truth["transmittance"] == 0.3


def test_chunked_write_and_read(tmp_path: Path) -> None:
    s = SessionSettings(chunk_slots=1_000)
    chunks = list(
        simulate_stream(
            _channel("homodyne"), n_symbols=7_777, rng=np.random.default_rng(2), settings=s
        )
    )
    whole = TransmissionBlock.concatenate(chunks)
    path = write_dataset(
        tmp_path / "c.h5",
        chunks,
        total_slots=7_777,
        n_pilots=count_pilots(7_777, whole.metadata.pilot_period),
    )
    read_chunks = list(iter_dataset(path, chunk_slots=999))
    assert [c.start for c in read_chunks] == list(range(0, 7_777, 999))
    _assert_same(whole, TransmissionBlock.concatenate(read_chunks))
    # estimation from the file (streamed) equals estimation from memory (one block)
    e1 = estimate(
        path,
        disclosed_fraction=0.5,
        epsilon_pe=0.01,
        rng=np.random.default_rng(3),
        chunk_slots=1_234,
    )
    e2 = estimate(whole, disclosed_fraction=0.5, epsilon_pe=0.01, rng=np.random.default_rng(3))
    assert e1.transmittance.value == pytest.approx(e2.transmittance.value, rel=1e-10)
    assert e1.excess_noise_snu.value == pytest.approx(e2.excess_noise_snu.value, rel=1e-8)


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    b = simulate_block(_channel("homodyne"), n_symbols=2_000, rng=np.random.default_rng(4))
    return write_dataset(tmp_path / "good.h5", b)


def _read_all(path: Path) -> None:
    for _ in iter_dataset(path, chunk_slots=512):
        pass


def _mutate(path: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda f: f.attrs.__setitem__("schema_version", 99), "schema_version 99 is not supported"),
        (lambda f: f.attrs.__delitem__("schema_version"), "'schema_version' is missing"),
        (lambda f: f.attrs.__setitem__("format", "other"), "attribute 'format'"),
        (lambda f: f.__delitem__("bob/samples"), "'/bob/samples' is missing"),
        (lambda f: f.__delitem__("bob/quadrature"), "'/bob/quadrature' is missing"),
        (
            lambda f: f["metadata"].attrs.__delitem__("symbol_rate_hz"),
            "'symbol_rate_hz' is missing",
        ),
        (lambda f: f["metadata"].attrs.__setitem__("detection", "photon"), "'detection'"),
        (lambda f: f["metadata"].attrs.__setitem__("symbol_rate_hz", "fast"), "must be float"),
        (lambda f: f["metadata"].attrs.__setitem__("detector_efficiency", 1.5), "<= 1"),
        (
            lambda f: (
                f.__delitem__("bob/phase_estimate"),
                f.create_dataset("bob/phase_estimate", data=np.zeros(2_000)),
            ),
            "'/bob/phase_estimate' has dtype float64",
        ),
        (
            lambda f: (
                f.__delitem__("alice/symbols"),
                f.create_dataset("alice/symbols", data=np.zeros((1_999, 2), np.float32)),
            ),
            "'/alice/symbols' must have shape (2000, 2)",
        ),
        (
            lambda f: f["slots/kind"].__setitem__(slice(5, 6), 7),
            "unknown slot kind 7",
        ),
        (
            lambda f: (
                f.__delitem__("bob/pilot_samples"),
                f.create_dataset("bob/pilot_samples", data=np.zeros((3, 2), np.int16)),
            ),
            "pilot_samples",
        ),
    ],
)
def test_malformed_files_give_one_clear_error(good_file: Path, mutation, message: str) -> None:  # type: ignore[no-untyped-def]
    _mutate(good_file, mutation)
    with pytest.raises(DataFormatError) as info:
        _read_all(good_file)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        read_metadata(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(DataFormatError, match="not a readable HDF5 file"):
        read_metadata(junk)


def test_schema_version_constant() -> None:
    assert SCHEMA_VERSION == 1
