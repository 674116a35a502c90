"""ETSI 014 wire models: exact field names, strict types, padded base64 (RFC 4648)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cvqkd.kms.models import ErrorBody, KeyContainer, KeyIDs, KeyRequest, Status, b64encode_key


def test_empty_key_request_is_valid() -> None:
    req = KeyRequest.model_validate({})
    assert req.number is None and req.size is None


@pytest.mark.parametrize(
    "bad",
    [{"number": "1"}, {"size": 256.0}, {"number": True}, {"extra": 1}, {"number": None, "x": 2}],
)
def test_key_request_is_strict(bad: dict) -> None:
    with pytest.raises(ValidationError):
        KeyRequest.model_validate(bad)


def test_field_names_are_the_standards() -> None:
    assert set(Status.model_fields) == {
        "source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID", "key_size",
        "stored_key_count", "max_key_count", "max_key_per_request", "max_key_size",
        "min_key_size", "max_SAE_ID_count", "status_extension",
    }  # fmt: skip
    assert set(KeyRequest.model_fields) == {
        "number", "size", "additional_slave_SAE_IDs", "extension_mandatory",
        "extension_optional",
    }  # fmt: skip
    assert set(KeyContainer.model_fields) == {"keys", "key_container_extension"}
    assert set(KeyIDs.model_fields) == {"key_IDs", "key_IDs_extension"}
    assert set(ErrorBody.model_fields) == {"message", "details"}


@given(st.binary(max_size=200))
def test_b64_is_padded_rfc4648_and_round_trips(key: bytes) -> None:
    text = b64encode_key(key)
    assert len(text) % 4 == 0
    assert base64.b64decode(text, validate=True) == key


def test_rfc4648_vectors() -> None:
    # RFC 4648 §10 test vectors.
    for raw, enc in [(b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"foobar", "Zm9vYmFy")]:
        assert b64encode_key(raw) == enc
