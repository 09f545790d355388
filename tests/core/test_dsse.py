"""DSSE envelopes: what a signature covers, which envelopes parse, and which signatures verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from provenir.core.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    Envelope,
    EnvelopeSignature,
    pae,
    sign_envelope,
    verify_envelope,
)
from provenir.core.errors import AttestationError
from provenir.core.signers import fingerprint as raw_fingerprint
from provenir.core.signers import parse_public_key
from provenir.core.signing_keys import generate_signing_key, load_signing_key, public_key_b64


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list:
    folder = tmp_path_factory.mktemp("keys")
    out = []
    for name in ("a", "b"):
        generate_signing_key(folder / f"{name}.pem")
        out.append(load_signing_key(folder / f"{name}.pem"))
    return out


def fingerprint(public_b64: str) -> str:
    return raw_fingerprint(parse_public_key(public_b64))


def test_pae_is_the_dsse_v1_encoding() -> None:
    assert pae("t", b"") == b"DSSEv1 1 t 0 "
    assert pae(IN_TOTO_PAYLOAD_TYPE, b"{}") == b"DSSEv1 28 application/vnd.in-toto+json 2 {}"
    # Lengths count bytes, not characters.
    assert pae("é", "ü".encode()) == "DSSEv1 2 é 2 ü".encode()


def test_a_signed_envelope_verifies_and_names_its_key(keys: list) -> None:
    envelope = sign_envelope(b'{"x":1}', keys[0])
    public = public_key_b64(keys[0])
    assert envelope.payload_type == IN_TOTO_PAYLOAD_TYPE
    assert envelope.signatures[0].keyid == fingerprint(public)
    assert verify_envelope(envelope, [public]) == public
    assert envelope.payload_json() == {"x": 1}


def test_the_json_form_is_one_compact_sorted_line_that_round_trips(keys: list) -> None:
    envelope = sign_envelope(b"payload", keys[0], payload_type="text/plain")
    line = envelope.to_json()
    assert "\n" not in line and ": " not in line and ", " not in line
    assert list(json.loads(line)) == ["payload", "payloadType", "signatures"]
    assert json.loads(line)["payload"] == base64.b64encode(b"payload").decode()
    assert Envelope.from_json(line) == envelope


def test_every_signature_is_tried_against_every_trusted_key(keys: list) -> None:
    message = pae(IN_TOTO_PAYLOAD_TYPE, b"{}")
    by_b = EnvelopeSignature("", keys[1].sign(message))
    foreign = EnvelopeSignature("whatever", keys[0].sign(b"something else"))
    envelope = Envelope(IN_TOTO_PAYLOAD_TYPE, b"{}", (foreign, by_b))
    a, b = public_key_b64(keys[0]), public_key_b64(keys[1])
    assert verify_envelope(envelope, [a, b]) == b


def test_a_changed_payload_or_type_fails_naming_keys(keys: list) -> None:
    envelope = sign_envelope(b'{"x":1}', keys[0])
    public = public_key_b64(keys[0])
    for forged in (
        Envelope(envelope.payload_type, b'{"x":2}', envelope.signatures),
        Envelope("text/plain", envelope.payload, envelope.signatures),
    ):
        with pytest.raises(AttestationError, match="no signature verifies") as info:
            verify_envelope(forged, [public])
        assert fingerprint(public) in str(info.value) and envelope.signatures[0].keyid in str(info.value)
    other = public_key_b64(keys[1])
    with pytest.raises(AttestationError, match=f"trusted key\\(s\\) {fingerprint(other)} "):
        verify_envelope(envelope, [other])
    unnamed = Envelope(
        envelope.payload_type, envelope.payload, (EnvelopeSignature("", envelope.signatures[0].sig),)
    )
    with pytest.raises(AttestationError, match=r"keyid \(no keyid\)"):
        verify_envelope(unnamed, [other])
    with pytest.raises(AttestationError, match="no public key"):
        verify_envelope(envelope, [])


def _good() -> dict:
    return {
        "payloadType": "t",
        "payload": base64.b64encode(b"{}").decode(),
        "signatures": [{"keyid": "k", "sig": "AAAA"}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("payloadType"), "payloadType is missing"),
        (lambda d: d.__setitem__("payloadType", ""), "payloadType is missing"),
        (lambda d: d.__setitem__("payloadType", 3), "payloadType is missing"),
        (lambda d: d.pop("payload"), "payload must be a base64 string"),
        (lambda d: d.__setitem__("payload", "not base64!"), "payload is not valid base64"),
        (lambda d: d.__setitem__("signatures", []), "has no signatures"),
        (lambda d: d.__setitem__("signatures", {"keyid": "k"}), "has no signatures"),
        (lambda d: d.__setitem__("signatures", ["sig"]), "signature 0 is not an object"),
        (
            lambda d: d["signatures"].append({"keyid": 7, "sig": "AAAA"}),
            "signature 1: keyid must be a string",
        ),
        (lambda d: d["signatures"][0].pop("sig"), "signature 0 must be a base64 string"),
        (lambda d: d["signatures"][0].__setitem__("sig", "A"), "signature 0 is not valid base64"),
    ],
)
def test_a_malformed_envelope_names_the_field(change, message: str) -> None:
    data = _good()
    change(data)
    with pytest.raises(AttestationError, match=message):
        Envelope.from_dict(data)


def test_only_json_objects_are_envelopes() -> None:
    with pytest.raises(AttestationError, match="expected a JSON object"):
        Envelope.from_dict(["payloadType"])
    with pytest.raises(AttestationError, match="invalid JSON"):
        Envelope.from_json("{not json")


def test_url_safe_base64_and_a_missing_keyid_are_accepted() -> None:
    data = _good()
    data["payload"] = base64.urlsafe_b64encode(b"\xfb\xff\xfe").decode()  # "-__-" in the URL alphabet
    del data["signatures"][0]["keyid"]
    envelope = Envelope.from_dict(data)
    assert envelope.payload == b"\xfb\xff\xfe" and envelope.signatures[0].keyid == ""


def test_a_payload_that_is_not_utf8_json_is_an_attestation_error() -> None:
    for payload in (b"\xff\xfe", b"{not json"):
        with pytest.raises(AttestationError, match="not UTF-8 JSON"):
            Envelope("t", payload, ()).payload_json()


def test_a_key_file_signs_what_its_public_key_verifies(tmp_path: Path) -> None:
    generate_signing_key(tmp_path / "k.pem")
    key = load_signing_key(tmp_path / "k.pem")
    assert verify_envelope(sign_envelope(b"[]", key), [public_key_b64(key)]) == public_key_b64(key)
