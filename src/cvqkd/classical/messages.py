"""Framing of classical-channel messages: a JSON header and raw binary blobs, never pickle.

Frame layout (all integers big-endian)::

    b"CVQ1" | u32 header length | header (UTF-8 JSON) | blob bytes

The header is ``{"kind": str, "seq": int, "sender": "alice"|"bob", "fields": {...}}``. A field is
a JSON value (int, float, str, bool, None, list, dict of those), or a reference to a blob:
``{"__ndarray__": [dtype, shape, offset, nbytes]}`` for numpy arrays of a whitelisted dtype, or
``{"__bytes__": [offset, nbytes]}`` for bytes. Decoding checks every offset and length and raises
:class:`cvqkd.errors.DataFormatError` on anything malformed.

Example:
    >>> import numpy as np
    >>> frame = encode_message("syndrome", seq=3, sender="bob", fields={"n": 5, "s": np.arange(3)})
    >>> msg = decode_message(frame)
    >>> msg.kind, msg.seq, msg.sender, msg.fields["s"].tolist()
    ('syndrome', 3, 'bob', [0, 1, 2])
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvqkd.errors import DataFormatError

MAGIC = b"CVQ1"
ROLES = ("alice", "bob")
#: numpy dtypes allowed on the wire (little-endian, no objects).
ALLOWED_DTYPES = frozenset(
    ["|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8", "|b1", "<c8", "<c16"]
)


@dataclass(frozen=True)
class Message:
    """A decoded message: its kind, sequence number, sender and fields."""

    kind: str
    seq: int
    sender: str
    fields: dict[str, Any]


def encode_message(kind: str, *, seq: int, sender: str, fields: dict[str, Any]) -> bytes:
    """Serialise one message into a frame (see the module docstring)."""
    if sender not in ROLES:
        raise ValueError(f"sender must be one of {ROLES}, got {sender!r}")
    blobs: list[bytes] = []
    offset = 0

    def enc(value: Any) -> Any:
        nonlocal offset
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            if arr.dtype.byteorder == ">" or (
                arr.dtype.byteorder == "=" and arr.dtype.itemsize > 1
            ):
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            dt = arr.dtype.str
            if dt not in ALLOWED_DTYPES:
                raise TypeError(f"dtype {dt} cannot be sent")
            raw = arr.tobytes()
            ref = {"__ndarray__": [dt, list(arr.shape), offset, len(raw)]}
            blobs.append(raw)
            offset += len(raw)
            return ref
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            blobs.append(raw)
            ref = {"__bytes__": [offset, len(raw)]}
            offset += len(raw)
            return ref
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            return {str(k): enc(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [enc(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot send a value of type {type(value).__name__}")

    header = {"kind": kind, "seq": int(seq), "sender": sender, "fields": enc(fields)}
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    return b"".join([MAGIC, struct.pack(">I", len(head)), head, *blobs])


def peek_header(frame: bytes) -> dict[str, Any]:
    """Parse only the header of a frame (no blob checks). Raises DataFormatError."""
    if len(frame) < 8 or frame[:4] != MAGIC:
        raise DataFormatError("classical message: bad magic or truncated frame")
    (hlen,) = struct.unpack(">I", frame[4:8])
    if 8 + hlen > len(frame):
        raise DataFormatError("classical message: header runs past the end of the frame")
    try:
        header = json.loads(frame[8 : 8 + hlen].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"classical message: header is not JSON ({exc})") from exc
    if not isinstance(header, dict) or not {"kind", "seq", "sender", "fields"} <= header.keys():
        raise DataFormatError("classical message: header lacks kind/seq/sender/fields")
    if not isinstance(header["seq"], int) or header["sender"] not in ROLES:
        raise DataFormatError("classical message: bad seq or sender")
    return header


def decode_message(frame: bytes) -> Message:
    """Parse a frame into a :class:`Message`; arrays are read-only views copied out of the frame."""
    header = peek_header(frame)
    (hlen,) = struct.unpack(">I", frame[4:8])
    body = memoryview(frame)[8 + hlen :]

    def dec(value: Any) -> Any:
        if isinstance(value, dict):
            if "__ndarray__" in value:
                try:
                    dt, shape, off, nbytes = value["__ndarray__"]
                    dtype = np.dtype(dt)
                except (TypeError, ValueError) as exc:
                    raise DataFormatError("classical message: bad array reference") from exc
                if dt not in ALLOWED_DTYPES:
                    raise DataFormatError(f"classical message: dtype {dt} not allowed")
                count = int(np.prod(shape)) if shape else 1
                if off < 0 or off + nbytes > len(body) or count * dtype.itemsize != nbytes:
                    raise DataFormatError("classical message: array blob out of bounds")
                return np.frombuffer(body[off : off + nbytes], dtype=dtype).reshape(shape).copy()
            if "__bytes__" in value:
                off, nbytes = value["__bytes__"]
                if off < 0 or off + nbytes > len(body):
                    raise DataFormatError("classical message: bytes blob out of bounds")
                return bytes(body[off : off + nbytes])
            return {k: dec(v) for k, v in value.items()}
        if isinstance(value, list):
            return [dec(v) for v in value]
        return value

    return Message(
        kind=str(header["kind"]),
        seq=int(header["seq"]),
        sender=str(header["sender"]),
        fields=dec(header["fields"]),
    )
