"""ETSI GS QKD 014 V1.1.1 data formats, with the standard's exact wire names (pydantic).

These models are the REST boundary only; inside the KME keys travel as frozen dataclasses
(:mod:`cvqkd.kms.store`). Field names follow the standard letter for letter (``key_ID``,
``source_KME_ID``, ``additional_slave_SAE_IDs``, ...), so the classes break the usual
snake_case rule on purpose.

Example::

    >>> KeyRequest.model_validate({"number": 2, "size": 256}).number
    2
"""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = [
    "ErrorBody",
    "KeyContainer",
    "KeyEntry",
    "KeyIDEntry",
    "KeyIDs",
    "KeyRequest",
    "Status",
    "b64encode_key",
]

#: Extension objects are free-form JSON objects ({name: value}).
Extension = dict[str, Any]


class _Wire(BaseModel):
    """Strict wire model: no type coercion ("5" is not 5), unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Status(_Wire):
    """Answer of ``GET /api/v1/keys/{slave_SAE_ID}/status`` (ETSI GS QKD 014 §6.1)."""

    source_KME_ID: StrictStr
    target_KME_ID: StrictStr
    master_SAE_ID: StrictStr
    slave_SAE_ID: StrictStr
    key_size: StrictInt
    stored_key_count: StrictInt
    max_key_count: StrictInt
    max_key_per_request: StrictInt
    max_key_size: StrictInt
    min_key_size: StrictInt
    max_SAE_ID_count: StrictInt
    status_extension: Extension | None = None


class KeyRequest(_Wire):
    """Body of ``POST .../enc_keys`` (§6.2); every field is optional and ``{}`` is valid."""

    number: StrictInt | None = None
    size: StrictInt | None = None
    additional_slave_SAE_IDs: list[StrictStr] | None = None
    extension_mandatory: list[Extension] | None = None
    extension_optional: list[Extension] | None = None


class KeyEntry(_Wire):
    """One key of a key container: UUID ``key_ID`` and the key in padded base64 (RFC 4648)."""

    key_ID: StrictStr
    key: StrictStr
    key_ID_extension: Extension | None = None
    key_extension: Extension | None = None


class KeyContainer(_Wire):
    """Answer of enc_keys and dec_keys (§6.3)."""

    keys: list[KeyEntry]
    key_container_extension: Extension | None = None


class KeyIDEntry(_Wire):
    """One entry of ``key_IDs``."""

    key_ID: StrictStr
    key_ID_extension: Extension | None = None


class KeyIDs(_Wire):
    """Body of ``POST .../dec_keys`` (§6.4)."""

    key_IDs: list[KeyIDEntry] = Field(min_length=1)
    key_IDs_extension: Extension | None = None


class ErrorBody(_Wire):
    """Error answer (§6.5): ``message`` and optional ``details`` (a list of {name: value})."""

    message: StrictStr
    details: list[Extension] | None = None


def b64encode_key(key: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4) of ``key``, as the key container carries it.

    >>> b64encode_key(bytes([0, 1, 2]))
    'AAEC'
    """
    return base64.b64encode(key).decode("ascii")
