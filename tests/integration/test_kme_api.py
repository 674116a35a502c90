"""ETSI GS QKD 014 V1.1.1 over real mutual TLS on loopback: two KMEs (KME_A, KME_B) in
threads, real development certificates, real HTTPS clients (http.client / our client).

Expected values come from the standard (field names, status codes, the fixed 400 messages;
see /work/shared/ETSI014.md, summarised in the module docstrings of cvqkd.kms) and from exact
identities (the master's and the slave's key bytes are equal; no key ID is issued twice).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from cvqkd.errors import KeyNotFoundError, KeyStoreError
from cvqkd.kms.certs import make_dev_pki
from cvqkd.kms.client import Etsi014Error, Etsi014KeyNotFoundError, client_ssl_context
from cvqkd.kms.testing import DevKmePair

STATUS_FIELDS = {
    "source_KME_ID",
    "target_KME_ID",
    "master_SAE_ID",
    "slave_SAE_ID",
    "key_size",
    "stored_key_count",
    "max_key_count",
    "max_key_per_request",
    "max_key_size",
    "min_key_size",
    "max_SAE_ID_count",
}
NOT_FOUND = "one or more keys specified are not found on KME"
FILL_BITS = 1 << 20  # 4096 chunks of 256 bits per link


def _postgres_urls(tmp_schema_prefix: str) -> dict[str, str]:
    url = os.environ.get("CVQKD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CVQKD_TEST_POSTGRES_URL is not set")
    import psycopg

    urls = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for kme in ("KME_A", "KME_B"):
            schema = f"{tmp_schema_prefix}_{kme.lower()}"
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in url else "?"
            urls[kme] = f"{url}{sep}options=-csearch_path%3D{schema}"
    return urls


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def kmes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    store_urls = None
    if request.param == "postgres":
        store_urls = _postgres_urls(f"kme_api_{uuid.uuid4().hex[:8]}")
    with DevKmePair(
        tmp_path_factory.mktemp("kmes"), store_urls=store_urls, fill_bits=FILL_BITS
    ) as pair:
        yield pair


def raw(
    kmes: DevKmePair,
    sae: str,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    kme: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTPS request with ``sae``'s certificate; returns (status, decoded JSON body)."""
    ctx = client_ssl_context(
        cert_file=kmes.certs[sae].cert_file,
        key_file=kmes.certs[sae].key_file,
        ca_file=kmes.ca_file,
    )
    port = int(kmes.url(kme or kmes.saes.get(sae, "KME_A")).rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.getheader("Content-Type") == "application/json"
        return resp.status, json.loads(data)
    finally:
        conn.close()


def post(kmes: DevKmePair, sae: str, path: str, obj: Any, **kw: Any) -> tuple[int, Any]:
    return raw(kmes, sae, "POST", path, json.dumps(obj).encode(), **kw)


def assert_error(status: int, body: Any, expected_status: int, message: str | None = None) -> None:
    assert status == expected_status, body
    assert isinstance(body, dict) and isinstance(body["message"], str)
    assert set(body) <= {"message", "details"}
    if message is not None:
        assert body["message"] == message


# ---- status -------------------------------------------------------------------------------


def test_status_has_exactly_the_standard_fields(kmes: DevKmePair) -> None:
    status, body = raw(kmes, "SAE_A", "GET", "/api/v1/keys/SAE_B/status")
    assert status == 200
    assert set(body) - {"status_extension"} == STATUS_FIELDS
    assert body["source_KME_ID"] == "KME_A" and body["target_KME_ID"] == "KME_B"
    assert body["master_SAE_ID"] == "SAE_A" and body["slave_SAE_ID"] == "SAE_B"
    assert body["key_size"] == 256
    for name in STATUS_FIELDS - {"source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID"}:
        assert type(body[name]) is int
    # stored_key_count counts default-size keys: available chunks of 256 bits.
    avail = kmes.store("KME_A").available_chunks(_link("KME_A", "KME_B"))
    assert body["stored_key_count"] == avail


def test_status_unknown_slave_is_400_and_foreign_sae_is_401(kmes: DevKmePair) -> None:
    assert_error(*raw(kmes, "SAE_A", "GET", "/api/v1/keys/NOBODY/status"), 400)
    # SAE_B is attached to KME_B, so KME_A refuses it.
    assert_error(*raw(kmes, "SAE_B", "GET", "/api/v1/keys/SAE_A/status", kme="KME_A"), 401)


# ---- enc_keys / dec_keys round trips ----------------------------------------------------------


def test_master_and_slave_get_the_same_bytes_across_two_kmes(kmes: DevKmePair) -> None:
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {"number": 3, "size": 512})
    assert status == 200 and set(body) == {"keys"}
    keys = body["keys"]
    assert len(keys) == 3
    for k in keys:
        assert str(uuid.UUID(k["key_ID"])) == k["key_ID"]
        raw_key = base64.b64decode(k["key"], validate=True)
        assert len(raw_key) == 64 and base64.b64encode(raw_key).decode() == k["key"]
    ids = {"key_IDs": [{"key_ID": k["key_ID"]} for k in keys]}
    status, body2 = post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids)
    assert status == 200
    assert body2["keys"] == keys
    # Delivered once: the second fetch is the standard's 400 "not found".
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids), 400, NOT_FOUND)


def test_get_forms_of_enc_keys_and_dec_keys(kmes: DevKmePair) -> None:
    status, body = raw(kmes, "SAE_A", "GET", "/api/v1/keys/SAE_B/enc_keys")
    assert status == 200 and len(body["keys"]) == 1
    assert len(base64.b64decode(body["keys"][0]["key"])) == 32  # default key_size 256 bits
    status, body = raw(kmes, "SAE_A", "GET", "/api/v1/keys/SAE_B/enc_keys?number=2&size=128")
    assert status == 200 and [len(base64.b64decode(k["key"])) for k in body["keys"]] == [16, 16]
    kid = body["keys"][1]["key_ID"]
    status, got = raw(kmes, "SAE_B", "GET", f"/api/v1/keys/SAE_A/dec_keys?key_ID={kid}")
    assert status == 200 and got["keys"] == [body["keys"][1]]
    assert_error(*raw(kmes, "SAE_A", "GET", "/api/v1/keys/SAE_B/enc_keys?number=x"), 400)
    assert_error(*raw(kmes, "SAE_A", "GET", "/api/v1/keys/SAE_B/enc_keys?bogus=1"), 400)


def test_empty_post_body_is_a_valid_key_request(kmes: DevKmePair) -> None:
    status, body = raw(kmes, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", b"{}")
    assert status == 200 and len(body["keys"]) == 1
    status, body = raw(kmes, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", b"")
    assert status == 200 and len(body["keys"]) == 1


def test_client_library_round_trip_and_errors(kmes: DevKmePair) -> None:
    with kmes.client("SAE_A") as alice, kmes.client("SAE_B") as bob:
        st = alice.status("SAE_B")
        assert st.key_size == 256 and st.target_KME_ID == "KME_B"
        keys = alice.get_keys("SAE_B", number=4, size_bits=1024)
        assert all(len(k.key) == 128 for k in keys)
        assert bob.get_keys_with_ids("SAE_A", [k.key_id for k in keys]) == keys
        with pytest.raises(Etsi014KeyNotFoundError) as exc:
            bob.get_keys_with_ids("SAE_A", [keys[0].key_id])
        assert isinstance(exc.value, KeyNotFoundError) and str(exc.value) == NOT_FOUND
        with pytest.raises(Etsi014Error) as exc2:
            alice.get_keys("SAE_B", size_bits=12)
        assert exc2.value.status_code == 400 and isinstance(exc2.value, KeyStoreError)
        assert str(exc2.value) == "size shall be a multiple of 8"


def test_keys_in_the_other_direction_and_on_a_local_link(kmes: DevKmePair) -> None:
    with kmes.client("SAE_B") as bob, kmes.client("SAE_A") as alice:
        keys = bob.get_keys("SAE_A", number=2)
        assert alice.get_keys_with_ids("SAE_B", [k.key_id for k in keys]) == keys
    with kmes.client("SAE_A") as a1, kmes.client("SAE_A2") as a2:
        keys = a1.get_keys("SAE_A2", number=2, size_bits=384)  # 1.5 chunks each
        assert a2.get_keys_with_ids("SAE_A", [k.key_id for k in keys]) == keys
        assert a1.status("SAE_A2").target_KME_ID == "KME_A"


def test_multicast_to_additional_slaves(kmes: DevKmePair) -> None:
    req = {"number": 1, "additional_slave_SAE_IDs": ["SAE_B2"]}
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", req)
    assert status == 200
    ids = {"key_IDs": [{"key_ID": body["keys"][0]["key_ID"]}]}
    for slave in ("SAE_B", "SAE_B2"):
        status, got = post(kmes, slave, "/api/v1/keys/SAE_A/dec_keys", ids)
        assert status == 200 and got["keys"] == body["keys"]
        assert_error(*post(kmes, slave, "/api/v1/keys/SAE_A/dec_keys", ids), 400, NOT_FOUND)
    # An additional slave at another KME, and too many additional slaves.
    bad = {"additional_slave_SAE_IDs": ["SAE_A2"]}
    assert_error(*post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", bad), 400)
    many = {"additional_slave_SAE_IDs": ["SAE_B2"] * 5}
    assert_error(*post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", many), 400)


# ---- 400: the request is wrong -------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"size": 12}, "size shall be a multiple of 8"),
        ({"size": 8192 + 8}, None),  # above max_key_size
        ({"size": 8}, None),  # below min_key_size (64)
        ({"number": 129}, None),  # above max_key_per_request (128)
        ({"number": 0}, None),
        ({"number": "2"}, None),  # a string is not an integer
        ({"number": 2.0}, None),
        ({"size": True}, None),
        ({"additional_slave_SAE_IDs": "SAE_B2"}, None),
        ({"nummber": 2}, None),  # unknown field
        ({"extension_mandatory": [{"abc_route_type": "direct"}]}, None),
    ],
)
def test_bad_key_requests_are_400(kmes: DevKmePair, request_body: Any, message: str | None) -> None:
    before = kmes.store("KME_A").metrics(_link("KME_A", "KME_B")).available_chunks
    assert_error(*post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", request_body), 400, message)
    assert kmes.store("KME_A").metrics(_link("KME_A", "KME_B")).available_chunks == before


def test_extension_mandatory_message_and_optional_ignored(kmes: DevKmePair) -> None:
    req = {"extension_mandatory": [{"abc_route_type": "direct"}]}
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", req)
    assert_error(status, body, 400, "not all extension_mandatory parameters are supported")
    req = {"extension_optional": [{"abc_max_age": 1}]}
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", req)
    assert status == 200 and len(body["keys"]) == 1


def test_wrong_types_name_the_field_in_details(kmes: DevKmePair) -> None:
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {"number": "2"})
    assert_error(status, body, 400)
    assert any("number" in d for d in body["details"])


@pytest.mark.parametrize(
    "payload", [b"{", b"[1, 2]", b"null", b'{"number": 1', b"\xff\xfe", b'"text"']
)
def test_malformed_json_is_400(kmes: DevKmePair, payload: bytes) -> None:
    assert_error(*raw(kmes, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", payload), 400)
    assert_error(*raw(kmes, "SAE_B", "POST", "/api/v1/keys/SAE_A/dec_keys", payload), 400)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"key_IDs": []},
        {"key_IDs": "x"},
        {"key_IDs": [{"keyID": "x"}]},
        {"key_IDs": [{"key_ID": 5}]},
    ],
)
def test_malformed_key_ids_are_400(kmes: DevKmePair, payload: Any) -> None:
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", payload), 400)


def test_unknown_key_ids_are_400_not_404(kmes: DevKmePair) -> None:
    ids = {"key_IDs": [{"key_ID": str(uuid.uuid4())}]}
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids), 400, NOT_FOUND)
    ids = {"key_IDs": [{"key_ID": "not-a-uuid"}]}
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids), 400, NOT_FOUND)


def test_all_or_nothing_when_one_key_id_is_unknown(kmes: DevKmePair) -> None:
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {"number": 2})
    good = [{"key_ID": k["key_ID"]} for k in body["keys"]]
    mixed = {"key_IDs": [*good, {"key_ID": str(uuid.uuid4())}]}
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", mixed), 400, NOT_FOUND)
    status, got = post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", {"key_IDs": good})
    assert status == 200 and got["keys"] == body["keys"]


def test_too_many_key_ids_is_400(kmes: DevKmePair) -> None:
    ids = {"key_IDs": [{"key_ID": str(uuid.uuid4())} for _ in range(129)]}
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids), 400)


# ---- 401: the wrong party asks -----------------------------------------------------------------


def test_wrong_slave_gets_401_with_error_body(kmes: DevKmePair) -> None:
    status, body = post(kmes, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {})
    ids = {"key_IDs": [{"key_ID": body["keys"][0]["key_ID"]}]}
    # SAE_B2 sits at the same KME but the key was issued for SAE_B.
    assert_error(*post(kmes, "SAE_B2", "/api/v1/keys/SAE_A/dec_keys", ids), 401)
    # The master cannot fetch its own key as a slave at its own KME.
    assert_error(*post(kmes, "SAE_A", "/api/v1/keys/SAE_A/dec_keys", ids, kme="KME_A"), 400)
    # A slave at the wrong KME is not authorised there.
    assert_error(*post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids, kme="KME_A"), 401)
    # The key is still there for the right slave.
    status, got = post(kmes, "SAE_B", "/api/v1/keys/SAE_A/dec_keys", ids)
    assert status == 200 and got["keys"] == body["keys"]


def test_sae_cannot_call_the_kme_to_kme_route_and_kme_cannot_call_etsi(kmes: DevKmePair) -> None:
    assert_error(*post(kmes, "SAE_B", "/kme/v1/reservations", {"reservations": []}), 401)
    assert_error(*raw(kmes, "KME_A", "GET", "/api/v1/keys/SAE_B/status", kme="KME_B"), 401)


# ---- TLS: no certificate, untrusted CA -----------------------------------------------------------


def _handshake(kmes: DevKmePair, ctx: ssl.SSLContext) -> None:
    port = int(kmes.url("KME_A").rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        conn.request("GET", "/api/v1/keys/SAE_B/status")
        conn.getresponse().read()
    finally:
        conn.close()


def test_no_client_certificate_is_refused_at_the_handshake(kmes: DevKmePair) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(kmes.ca_file))
    # TLS 1.3: the server's alert arrives on the first read, so the request fails there.
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _handshake(kmes, ctx)


def test_certificate_from_an_untrusted_ca_is_refused(kmes: DevKmePair, tmp_path: Path) -> None:
    rogue = make_dev_pki(tmp_path / "rogue", sae_ids=["SAE_A"], kme_ids=[])
    ctx = client_ssl_context(
        cert_file=rogue["SAE_A"].cert_file, key_file=rogue["SAE_A"].key_file, ca_file=kmes.ca_file
    )
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.HTTPException)):
        _handshake(kmes, ctx)


def test_client_refuses_a_kme_with_an_untrusted_certificate(
    kmes: DevKmePair, tmp_path: Path
) -> None:
    rogue = make_dev_pki(tmp_path / "rogue", sae_ids=[], kme_ids=["X"])
    from cvqkd.kms.client import Etsi014Client

    client = Etsi014Client(
        kmes.url("KME_A"),
        cert_file=kmes.certs["SAE_A"].cert_file,
        key_file=kmes.certs["SAE_A"].key_file,
        ca_file=rogue["ca"].cert_file,
    )
    with pytest.raises(KeyStoreError, match="TLS"):
        client.status("SAE_B")


# ---- concurrency -----------------------------------------------------------------------------


def test_32_concurrent_clients_never_receive_the_same_key(kmes: DevKmePair) -> None:
    n_threads, per_thread = 32, 6
    results: list[list[Any]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(i: int) -> None:
        try:
            with kmes.client("SAE_A") as c:
                barrier.wait()
                for _ in range(per_thread):
                    results[i].extend(c.get_keys("SAE_B", number=2))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    keys = [k for r in results for k in r]
    assert len(keys) == n_threads * per_thread * 2
    assert len({k.key_id for k in keys}) == len(keys)
    assert len({k.key for k in keys}) == len(keys)  # 256 random bits: equal only if reused
    with kmes.client("SAE_B") as bob:
        got = []
        for start in range(0, len(keys), 128):
            got.extend(
                bob.get_keys_with_ids("SAE_A", [k.key_id for k in keys[start : start + 128]])
            )
    assert got == keys


# ---- 503: the KME cannot serve --------------------------------------------------------------


def test_empty_pool_and_unreachable_peer_are_503_and_lose_no_key(tmp_path: Path) -> None:
    with DevKmePair(tmp_path, fill_bits=8 * 256) as small:  # 8 chunks per link
        link = _link("KME_A", "KME_B")
        status, body = post(small, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {"number": 9})
        assert_error(status, body, 503)
        assert small.store("KME_A").available_chunks(link) == 8
        small.kmes["KME_B"].server.stop()
        status, body = post(small, "SAE_A", "/api/v1/keys/SAE_B/enc_keys", {"number": 2})
        assert_error(status, body, 503)
        # The reservation was given back: nothing left the pool.
        assert small.store("KME_A").available_chunks(link) == 8
        m = small.service("KME_A").metrics()
        assert m["errors"]["enc_keys"] == 2 and m["requests"]["enc_keys"] == 2


def _link(a: str, b: str) -> Any:
    from cvqkd.kms.store import LinkId

    return LinkId(a, b)


def test_chunks_expired_at_the_target_first_are_skipped_by_the_source(tmp_path: Path) -> None:
    """The target erased some chunks (shorter lifetime there); the source learns which, erases
    them too and serves the next ones, so the pool head never blocks the link."""
    import time

    with DevKmePair(tmp_path, fill_bits=0) as pair:
        link = _link("KME_A", "KME_B")
        old, new = (uuid.uuid4(), os.urandom(64)), (uuid.uuid4(), os.urandom(64))
        pair.store("KME_A").add_keys(link, [old], lifetime_s=3600)
        pair.store("KME_B").add_keys(link, [old], lifetime_s=0.2)
        for k in ("KME_A", "KME_B"):
            pair.store(k).add_keys(link, [new])
        time.sleep(0.3)
        with pair.client("SAE_A") as alice, pair.client("SAE_B") as bob:
            keys = alice.get_keys("SAE_B", number=1, size_bits=512)
            assert keys[0].key == new[1]
            assert bob.get_keys_with_ids("SAE_A", [keys[0].key_id]) == keys
        m = pair.store("KME_A").metrics(link)
        assert (m.expired_chunks, m.available_chunks) == (2, 0)


# ---- HTTP edges -------------------------------------------------------------------------------


def test_http_edges_unknown_path_method_chunked_and_oversize(kmes: DevKmePair) -> None:
    status, body = raw(kmes, "SAE_A", "GET", "/api/v1/nothing")
    assert status == 404 and isinstance(body["message"], str)
    status, body = raw(kmes, "SAE_A", "DELETE", "/api/v1/keys/SAE_B/enc_keys")
    assert status == 405 and isinstance(body["message"], str)
    status, body = raw(
        kmes, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", b"{}",
        headers={"Transfer-Encoding": "chunked"},
    )  # fmt: skip
    assert_error(status, body, 400)
    status, body = raw(
        kmes, "SAE_A", "POST", "/api/v1/keys/SAE_B/enc_keys", b"{}",
        headers={"Content-Length": str(1 << 30)},
    )  # fmt: skip
    assert_error(status, body, 400)


def test_keep_alive_serves_many_requests_on_one_connection(kmes: DevKmePair) -> None:
    ctx = client_ssl_context(
        cert_file=kmes.certs["SAE_A"].cert_file,
        key_file=kmes.certs["SAE_A"].key_file,
        ca_file=kmes.ca_file,
    )
    port = int(kmes.url("KME_A").rsplit(":", 1)[1])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    try:
        for _ in range(5):
            conn.request("GET", "/api/v1/keys/SAE_B/status")
            resp = conn.getresponse()
            assert resp.status == 200 and not resp.will_close
            resp.read()
        first_sock = conn.sock
        conn.request("POST", "/api/v1/keys/SAE_B/enc_keys", body=b"{bad")
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        # Errors found before the body is parsed still consume it: the stream stays in step.
        conn.request("POST", "/api/v1/keys/SAE_B/enc_keys?number=2", body=b'{"number": 1}')
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        conn.request("POST", "/api/v1/keys/NOBODY/enc_keys", body=b'{"number": 1}')
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        conn.request("GET", "/api/v1/keys/SAE_B/status")
        assert conn.getresponse().status == 200 and conn.sock is first_sock
    finally:
        conn.close()


def test_peer_route_checks_the_link_and_the_body(kmes: DevKmePair) -> None:
    # KME_A is KME_B's peer, but may reserve only on its own link to KME_B.
    fake = {
        "key_ID": str(uuid.uuid4()),
        "source_KME_ID": "KME_X",
        "target_KME_ID": "KME_B",
        "size": 256,
        "chunk_IDs": [str(uuid.uuid4())],
        "master_SAE_ID": "SAE_A",
        "slave_SAE_IDs": ["SAE_B"],
        "expires_at": 1e12,
    }
    path = "/kme/v1/reservations"
    assert_error(*post(kmes, "KME_A", path, {"reservations": [fake]}, kme="KME_B"), 401)
    assert_error(*post(kmes, "KME_A", path, {"reservations": "x"}, kme="KME_B"), 400)
    bad = {**fake, "source_KME_ID": "KME_A", "size": "big"}
    assert_error(*post(kmes, "KME_A", path, {"reservations": [bad]}, kme="KME_B"), 400)
    # Well-formed but naming chunks KME_B does not hold: 503 listing them.
    unknown = {**fake, "source_KME_ID": "KME_A"}
    status, body = post(kmes, "KME_A", path, {"reservations": [unknown]}, kme="KME_B")
    assert_error(status, body, 503)
    assert body["details"] == [{"unavailable_chunk_IDs": fake["chunk_IDs"]}]
