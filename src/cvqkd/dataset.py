"""CV-QKD transmission data in memory (:class:`TransmissionBlock`) and on disk (HDF5).

One format serves simulated and measured data; docs/dataset-format.md is the user's reference.
A block holds, per time slot (symbol period), what Alice sent and what Bob's ADC recorded:

- ``slot_kind`` (uint8): 0 data, 1 pilot, 2 shot-noise calibration (signal input blocked, LO on),
  3 electronic-noise calibration (LO blocked). Calibration slots are interleaved at random.
- ``alice_symbols`` (complex64, SNU): Alice's displacement x + i p per slot (pilots included).
- ``bob_samples``: raw ADC values (any linear unit; integer codes or float), shape (n,) for
  homodyne, (n, 2) (columns x, p) for heterodyne. The shot-noise unit is NOT given: estimation
  derives it from the calibration slots, as a real receiver must.
- ``quadrature`` (uint8, homodyne only): 0 = x (θ = 0), 1 = p (θ = π/2).
- ``phase_estimate`` (float32, rad): Bob's recovered LO phase ψ̂ per slot (0 for a
  transmitted LO): heterodyne samples are rotated by e^{iψ̂}, homodyne references use θ + ψ̂.
- ``pilot_samples`` (n_pilots, 2): Bob's phase-diverse pilot measurements, in slot order.

HDF5 layout (schema_version 1)::

    /                 attrs: format="cvqkd-dataset", schema_version=1
    /metadata         attrs: detection, symbol_rate_hz, modulation, modulation_variance_snu,
                             detector_efficiency, pilot_period, adc_bits, local_oscillator,
                             source; optional /metadata/truth attrs (simulations)
    /slots/kind       uint8 (n,)
    /alice/symbols    float32 (n, 2)
    /bob/samples      int16|int32|float32|float64 (n,) or (n, 2)
    /bob/quadrature   uint8 (n,)            homodyne only
    /bob/phase_estimate float32 (n,)
    /bob/pilot_samples  same dtype as samples (n_pilots, 2)

Example:
    >>> SLOT_DATA, SLOT_PILOT, SLOT_SHOT_NOISE, SLOT_ELECTRONIC
    (0, 1, 2, 3)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import DataFormatError

#: The schema version this code writes and reads.
SCHEMA_VERSION = 1
FORMAT_NAME = "cvqkd-dataset"

SLOT_DATA = 0
SLOT_PILOT = 1
SLOT_SHOT_NOISE = 2
SLOT_ELECTRONIC = 3

_REQUIRED_META: dict[str, type] = {
    "detection": str,
    "symbol_rate_hz": float,
    "modulation": str,
    "modulation_variance_snu": float,
    "detector_efficiency": float,
    "pilot_period": int,
    "adc_bits": int,
    "local_oscillator": str,
    "source": str,
}
_SAMPLE_DTYPES = (np.int16, np.int32, np.float32, np.float64)


@dataclass(frozen=True)
class BlockMetadata:
    """What a receiver records about a run; units in the names.

    ``adc_bits`` = 0 means float samples without known ADC rails (no clipping statistic).
    ``truth`` holds simulated ground truth (empty for measured data); never used by estimation.
    """

    detection: str
    symbol_rate_hz: float
    modulation: str
    modulation_variance_snu: float
    detector_efficiency: float
    pilot_period: int
    adc_bits: int
    local_oscillator: str = "transmitted"
    source: str = "measurement"
    truth: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "truth", MappingProxyType(dict(self.truth)))
        if self.detection not in ("homodyne", "heterodyne"):
            raise DataFormatError(
                f"metadata 'detection' must be 'homodyne' or 'heterodyne', got {self.detection!r}"
            )
        for name in ("symbol_rate_hz", "modulation_variance_snu", "detector_efficiency"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise DataFormatError(f"metadata {name!r} must be a positive number, got {v}")
        if self.detector_efficiency > 1:
            raise DataFormatError(
                f"metadata 'detector_efficiency' must be <= 1, got {self.detector_efficiency}"
            )
        if self.pilot_period < 0 or self.pilot_period == 1:
            raise DataFormatError(
                f"metadata 'pilot_period' must be 0 (no pilots) or >= 2, got {self.pilot_period}"
            )
        if not 0 <= self.adc_bits <= 32:
            raise DataFormatError(f"metadata 'adc_bits' must be in 0..32, got {self.adc_bits}")

    @property
    def adc_rails(self) -> tuple[float, float] | None:
        """(min, max) ADC code, or None if unknown (``adc_bits`` = 0)."""
        if self.adc_bits == 0:
            return None
        return float(-(2 ** (self.adc_bits - 1))), float(2 ** (self.adc_bits - 1) - 1)


@dataclass(frozen=True)
class TransmissionBlock:
    """A contiguous run of slots ``[start, start + n)`` of one transmission (see module doc)."""

    metadata: BlockMetadata
    start: int
    slot_kind: NDArray[np.uint8]
    alice_symbols: NDArray[np.complex64]
    bob_samples: NDArray[Any]
    quadrature: NDArray[np.uint8] | None
    phase_estimate: NDArray[np.float32]
    pilot_samples: NDArray[Any]
    #: Total number of slots in the whole transmission this block belongs to.
    total_slots: int = -1

    def __post_init__(self) -> None:
        if self.total_slots < 0:
            object.__setattr__(self, "total_slots", self.start + self.n_slots)
        validate_block(self)

    @property
    def n_slots(self) -> int:
        """Number of slots in this block."""
        return int(self.slot_kind.size)

    def count(self, kind: int) -> int:
        """Number of slots of ``kind`` (SLOT_DATA, SLOT_PILOT, ...)."""
        return int(np.count_nonzero(self.slot_kind == kind))

    @staticmethod
    def concatenate(blocks: Iterable[TransmissionBlock]) -> TransmissionBlock:
        """Join consecutive blocks of one transmission into one block."""
        bl = list(blocks)
        if not bl:
            raise DataFormatError("no blocks to concatenate")
        for a, b in itertools.pairwise(bl):
            if b.start != a.start + a.n_slots:
                raise DataFormatError("blocks are not consecutive")
        quad = None if bl[0].quadrature is None else np.concatenate([b.quadrature for b in bl])
        return TransmissionBlock(
            metadata=bl[0].metadata,
            start=bl[0].start,
            slot_kind=np.concatenate([b.slot_kind for b in bl]),
            alice_symbols=np.concatenate([b.alice_symbols for b in bl]),
            bob_samples=np.concatenate([b.bob_samples for b in bl]),
            quadrature=quad,
            phase_estimate=np.concatenate([b.phase_estimate for b in bl]),
            pilot_samples=np.concatenate([b.pilot_samples for b in bl]),
            total_slots=bl[0].total_slots,
        )


def validate_block(block: TransmissionBlock) -> None:
    """Check shapes, dtypes and slot kinds; raise :class:`DataFormatError` naming the problem."""
    n = block.slot_kind.size
    het = block.metadata.detection == "heterodyne"

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise DataFormatError(msg)

    need(
        block.slot_kind.dtype == np.uint8 and block.slot_kind.ndim == 1,
        f"slots/kind must be a 1-D uint8 array, got "
        f"{block.slot_kind.dtype} {block.slot_kind.shape}",
    )
    need(
        block.alice_symbols.shape == (n,) and block.alice_symbols.dtype == np.complex64,
        f"alice/symbols must hold {n} complex64 symbols, got {block.alice_symbols.dtype} "
        f"{block.alice_symbols.shape}",
    )
    want = (n, 2) if het else (n,)
    need(
        block.bob_samples.shape == want,
        f"bob/samples must have shape {want} for {block.metadata.detection}, "
        f"got {block.bob_samples.shape}",
    )
    need(
        block.bob_samples.dtype in _SAMPLE_DTYPES,
        "bob/samples dtype must be int16, int32, float32 or float64, "
        f"got {block.bob_samples.dtype}",
    )
    if het:
        need(block.quadrature is None, "bob/quadrature must be absent for heterodyne data")
    else:
        need(
            block.quadrature is not None
            and block.quadrature.shape == (n,)
            and block.quadrature.dtype == np.uint8,
            f"bob/quadrature must be a uint8 array of {n} entries for homodyne data",
        )
    need(
        block.phase_estimate.shape == (n,) and block.phase_estimate.dtype == np.float32,
        f"bob/phase_estimate must hold {n} float32 values, got {block.phase_estimate.dtype} "
        f"{block.phase_estimate.shape}",
    )
    if n and int(block.slot_kind.max()) > SLOT_ELECTRONIC:
        raise DataFormatError(
            f"slots/kind holds an unknown slot kind {int(block.slot_kind.max())} (allowed 0..3)"
        )
    npil = int(np.count_nonzero(block.slot_kind == SLOT_PILOT))
    need(
        block.pilot_samples.shape == (npil, 2),
        f"bob/pilot_samples must have shape ({npil}, 2), got {block.pilot_samples.shape}",
    )
    if block.quadrature is not None and n and int(block.quadrature.max()) > 1:
        raise DataFormatError("bob/quadrature must hold 0 (x) or 1 (p)")


# ----------------------------------------------------------------------------- HDF5 I/O


class DatasetWriter:
    """Write a transmission to HDF5 chunk by chunk (bounded memory).

    >>> # with DatasetWriter(path, metadata, total_slots=n) as w: w.append(block) ...
    """

    def __init__(
        self,
        path: str | Path,
        metadata: BlockMetadata,
        *,
        total_slots: int,
        sample_dtype: Any,
        n_pilots: int,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        import h5py

        self.path = Path(path)
        self.metadata = metadata
        self.total = int(total_slots)
        self._h5 = h5py.File(self.path, "w")
        f = self._h5
        f.attrs["format"] = FORMAT_NAME
        f.attrs["schema_version"] = SCHEMA_VERSION
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        meta = f.create_group("metadata")
        for k in _REQUIRED_META:
            meta.attrs[k] = getattr(metadata, k)
        if metadata.truth:
            truth = meta.create_group("truth")
            for k, v in metadata.truth.items():
                truth.attrs[k] = float(v)
        n = self.total
        ch = max(1, min(n, 1 << 18))
        het = metadata.detection == "heterodyne"
        f.create_dataset("slots/kind", shape=(n,), dtype=np.uint8, chunks=(ch,))
        f.create_dataset("alice/symbols", shape=(n, 2), dtype=np.float32, chunks=(ch, 2))
        f.create_dataset(
            "bob/samples",
            shape=(n, 2) if het else (n,),
            dtype=sample_dtype,
            chunks=(ch, 2) if het else (ch,),
        )
        if not het:
            f.create_dataset("bob/quadrature", shape=(n,), dtype=np.uint8, chunks=(ch,))
        f.create_dataset("bob/phase_estimate", shape=(n,), dtype=np.float32, chunks=(ch,))
        f.create_dataset(
            "bob/pilot_samples",
            shape=(n_pilots, 2),
            dtype=sample_dtype,
            chunks=(max(1, min(n_pilots, 1 << 16)), 2) if n_pilots else None,
        )
        self._pos = 0
        self._pil = 0

    def append(self, block: TransmissionBlock) -> None:
        """Write the next consecutive block."""
        f = self._h5
        a, b = self._pos, self._pos + block.n_slots
        if block.start != a or b > self.total:
            raise DataFormatError(
                f"block [{block.start}, {block.start + block.n_slots}) "
                f"does not continue the file at slot {a} of {self.total}"
            )
        f["slots/kind"][a:b] = block.slot_kind
        f["alice/symbols"][a:b] = block.alice_symbols.view(np.float32).reshape(-1, 2)
        f["bob/samples"][a:b] = block.bob_samples
        if block.quadrature is not None:
            f["bob/quadrature"][a:b] = block.quadrature
        f["bob/phase_estimate"][a:b] = block.phase_estimate
        np_ = block.pilot_samples.shape[0]
        if np_:
            f["bob/pilot_samples"][self._pil : self._pil + np_] = block.pilot_samples
        self._pil += np_
        self._pos = b

    def close(self) -> None:
        """Close the file (checks that every slot was written)."""
        if self._h5:
            self._h5.close()
        if self._pos != self.total:
            raise DataFormatError(f"only {self._pos} of {self.total} slots were written")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._h5.close()


def write_dataset(
    path: str | Path,
    blocks: TransmissionBlock | Iterable[TransmissionBlock],
    *,
    total_slots: int | None = None,
    n_pilots: int | None = None,
) -> Path:
    """Write a block (or consecutive chunks, given ``total_slots`` and ``n_pilots``) to HDF5."""
    if isinstance(blocks, TransmissionBlock):
        total_slots = blocks.n_slots
        n_pilots = blocks.pilot_samples.shape[0]
        blocks = [blocks]
    if total_slots is None or n_pilots is None:
        raise DataFormatError("writing chunks needs total_slots and n_pilots")
    it = iter(blocks)
    first = next(it)
    with DatasetWriter(
        path,
        first.metadata,
        total_slots=total_slots,
        sample_dtype=first.bob_samples.dtype,
        n_pilots=n_pilots,
    ) as w:
        w.append(first)
        for b in it:
            w.append(b)
    return Path(path)


def _open(path: str | Path) -> Any:
    import h5py

    p = Path(path)
    if not p.exists():
        raise DataFormatError(f"dataset file {str(p)!r} does not exist")
    try:
        return h5py.File(p, "r")
    except OSError as exc:
        raise DataFormatError(f"{str(p)!r} is not a readable HDF5 file ({exc})") from None


def _read_metadata(f: Any, path: str) -> BlockMetadata:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT_NAME:
        raise DataFormatError(
            f"{path}: root attribute 'format' must be {FORMAT_NAME!r}, got {fmt!r}"
        )
    if "schema_version" not in f.attrs:
        raise DataFormatError(f"{path}: root attribute 'schema_version' is missing")
    ver = int(f.attrs["schema_version"])
    if ver != SCHEMA_VERSION:
        raise DataFormatError(
            f"{path}: schema_version {ver} is not supported (this cvqkd reads {SCHEMA_VERSION})"
        )
    if "metadata" not in f:
        raise DataFormatError(f"{path}: group '/metadata' is missing")
    attrs = f["metadata"].attrs
    vals: dict[str, Any] = {}
    for k, typ in _REQUIRED_META.items():
        if k not in attrs:
            raise DataFormatError(f"{path}: metadata attribute {k!r} is missing")
        v = attrs[k]
        if isinstance(v, bytes):
            v = v.decode()
        try:
            vals[k] = typ(v.item() if isinstance(v, np.generic) else v)
        except (TypeError, ValueError):
            raise DataFormatError(
                f"{path}: metadata attribute {k!r} must be {typ.__name__}, got {v!r}"
            ) from None
    truth = {}
    if "truth" in f["metadata"]:
        truth = {k: float(v) for k, v in f["metadata/truth"].attrs.items()}
    try:
        return BlockMetadata(**vals, truth=truth)
    except DataFormatError as exc:
        raise DataFormatError(f"{path}: {exc}") from None


_DATASETS = (
    "slots/kind",
    "alice/symbols",
    "bob/samples",
    "bob/phase_estimate",
    "bob/pilot_samples",
)


def _check_layout(f: Any, meta: BlockMetadata, path: str) -> tuple[int, int]:
    for name in _DATASETS + (("bob/quadrature",) if meta.detection == "homodyne" else ()):
        if name not in f:
            raise DataFormatError(f"{path}: dataset '/{name}' is missing")
    n = f["slots/kind"].shape[0] if f["slots/kind"].ndim == 1 else -1
    if n < 0 or f["slots/kind"].dtype != np.uint8:
        raise DataFormatError(f"{path}: '/slots/kind' must be a 1-D uint8 array")
    checks: dict[str, tuple[tuple[int, ...], tuple[Any, ...]]] = {
        "alice/symbols": ((n, 2), (np.float32,)),
        "bob/samples": ((n, 2) if meta.detection == "heterodyne" else (n,), _SAMPLE_DTYPES),
        "bob/phase_estimate": ((n,), (np.float32,)),
    }
    if meta.detection == "homodyne":
        checks["bob/quadrature"] = ((n,), (np.uint8,))
    for name, (shape, dtypes) in checks.items():
        d = f[name]
        if d.shape != shape:
            raise DataFormatError(f"{path}: '/{name}' must have shape {shape}, got {d.shape}")
        if d.dtype not in dtypes:
            raise DataFormatError(
                f"{path}: '/{name}' has dtype {d.dtype}, expected one of "
                f"{', '.join(np.dtype(t).name for t in dtypes)}"
            )
    ps = f["bob/pilot_samples"]
    if ps.ndim != 2 or ps.shape[1] != 2:
        raise DataFormatError(f"{path}: '/bob/pilot_samples' must have shape (n_pilots, 2)")
    return n, ps.shape[0]


def read_metadata(path: str | Path) -> tuple[BlockMetadata, int]:
    """Metadata and number of slots of a dataset file (validates the layout)."""
    with _open(path) as f:
        meta = _read_metadata(f, str(path))
        n, _ = _check_layout(f, meta, str(path))
    return meta, n


def iter_dataset(path: str | Path, *, chunk_slots: int = 1 << 20) -> Iterator[TransmissionBlock]:
    """Read a dataset chunk by chunk (bounded memory); each chunk is validated."""
    with _open(path) as f:
        meta = _read_metadata(f, str(path))
        n, n_pil = _check_layout(f, meta, str(path))
        pil = 0
        for a in range(0, n, chunk_slots):
            b = min(n, a + chunk_slots)
            kind = f["slots/kind"][a:b]
            k = int(np.count_nonzero(kind == SLOT_PILOT))
            if pil + k > n_pil:
                raise DataFormatError(
                    f"{path}: '/bob/pilot_samples' has {n_pil} rows "
                    "but slots/kind marks more pilots"
                )
            alice = np.ascontiguousarray(f["alice/symbols"][a:b]).view(np.complex64).reshape(-1)
            yield TransmissionBlock(
                metadata=meta,
                start=a,
                slot_kind=kind,
                alice_symbols=alice,
                bob_samples=f["bob/samples"][a:b],
                quadrature=f["bob/quadrature"][a:b] if meta.detection == "homodyne" else None,
                phase_estimate=f["bob/phase_estimate"][a:b],
                pilot_samples=f["bob/pilot_samples"][pil : pil + k],
                total_slots=n,
            )
            pil += k
        if pil != n_pil:
            raise DataFormatError(
                f"{path}: '/bob/pilot_samples' has {n_pil} rows but slots/kind marks {pil} pilots"
            )


def read_dataset(path: str | Path) -> TransmissionBlock:
    """Read a whole dataset into one :class:`TransmissionBlock`."""
    chunks = list(iter_dataset(path, chunk_slots=1 << 62))
    if not chunks:
        meta, _ = read_metadata(path)
        empty = np.zeros(0)
        return TransmissionBlock(
            metadata=meta,
            start=0,
            slot_kind=empty.astype(np.uint8),
            alice_symbols=empty.astype(np.complex64),
            bob_samples=np.zeros((0, 2) if meta.detection == "heterodyne" else 0),
            quadrature=None if meta.detection == "heterodyne" else empty.astype(np.uint8),
            phase_estimate=empty.astype(np.float32),
            pilot_samples=np.zeros((0, 2)),
        )
    return TransmissionBlock.concatenate(chunks)
