"""Framing of classical messages: round trips and malformed frames."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cvqkd.classical.messages import MAGIC, decode_message, encode_message
from cvqkd.errors import DataFormatError

_dtypes = st.sampled_from([np.uint8, np.int32, np.int64, np.float64, np.float32, np.bool_])


@settings(max_examples=50, deadline=None)
@given(
    arr=_dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(max_dims=3, max_side=20))),
    blob=st.binary(max_size=200),
    meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    seq=st.integers(0, 2**62),
)
def test_round_trip(arr: np.ndarray, blob: bytes, meta: dict, seq: int) -> None:
    frame = encode_message("k", seq=seq, sender="alice", fields={"a": arr, "b": blob, "m": meta})
    msg = decode_message(frame)
    assert (msg.kind, msg.seq, msg.sender) == ("k", seq, "alice")
    assert msg.fields["a"].dtype == arr.dtype
    assert np.array_equal(msg.fields["a"], arr, equal_nan=arr.dtype.kind == "f")
    assert msg.fields["b"] == blob
    assert msg.fields["m"] == meta


def test_big_endian_arrays_arrive_little_endian() -> None:
    arr = np.arange(5, dtype=">i4")
    out = decode_message(encode_message("k", seq=0, sender="bob", fields={"a": arr}))
    assert out.fields["a"].tolist() == [0, 1, 2, 3, 4]


def test_objects_cannot_be_sent() -> None:
    with pytest.raises(TypeError):
        encode_message("k", seq=0, sender="bob", fields={"a": np.array([object()])})
    with pytest.raises(TypeError):
        encode_message("k", seq=0, sender="bob", fields={"a": {1, 2}})


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"XXXX\x00\x00\x00\x02{}",
        MAGIC + struct.pack(">I", 100) + b"{}",
        MAGIC + struct.pack(">I", 2) + b"[]",
        MAGIC + struct.pack(">I", 3) + b"{x}",
    ],
)
def test_malformed_frames_raise(frame: bytes) -> None:
    with pytest.raises(DataFormatError):
        decode_message(frame)


def test_blob_out_of_bounds_raises() -> None:
    frame = encode_message("k", seq=0, sender="bob", fields={"a": np.arange(10)})
    with pytest.raises(DataFormatError, match="out of bounds"):
        decode_message(frame[:-8])


def test_disallowed_dtype_in_header_raises() -> None:
    head = b'{"kind":"k","seq":0,"sender":"bob","fields":{"a":{"__ndarray__":["|O",[1],0,8]}}}'
    with pytest.raises(DataFormatError):
        decode_message(MAGIC + struct.pack(">I", len(head)) + head + bytes(8))
