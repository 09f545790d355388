"""DSSE (Dead Simple Signing Envelope): the signed wrapper around Provenir's attestations.

The signature covers the *pre-authentication encoding* (PAE) of the payload type and the
payload bytes, never the JSON envelope, so the envelope's serialisation does not matter and
the type cannot be swapped under a valid signature::

    PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body   (lengths in ASCII decimal)

An envelope is ``{"payloadType", "payload" (base64), "signatures": [{"keyid", "sig" (base64)}]}``.
Provenir signs with the run's Ed25519 key (:mod:`provenir.core.signing_keys`); ``keyid`` is that
key's fingerprint (first 16 hex chars of SHA-256 of the raw public key), the same name
``provenir manifest verify`` prints for a manifest's signer. The keyid is only a hint: a verifier
tries every key it trusts. Any DSSE implementation verifies these envelopes, for example
securesystemslib's::

    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw_public_key.hex()})
    Envelope.from_dict(json.loads(line)).verify(keys=[key], threshold=1)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provenir.core.errors import AttestationError
from provenir.core.extras import require_extra
from provenir.core.signers import fingerprint, parse_public_key
from provenir.core.signing_keys import public_key_object, raw_public_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

#: The payload type of an in-toto Statement (every envelope Provenir writes carries one).
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: the exact bytes a signature covers."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature: ``keyid`` (a hint naming the key) and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: typed payload bytes and the signatures over their PAE."""

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form DSSE defines (payload and signatures in standard base64)."""
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode(),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures
            ],
        }

    def to_json(self) -> str:
        """One line of compact JSON (a line of a ``.intoto.jsonl`` file, without the newline)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        """Parse the JSON form; :class:`AttestationError` naming the first malformed field."""
        if not isinstance(data, Mapping):
            raise AttestationError("not a DSSE envelope: expected a JSON object")
        payload_type = data.get("payloadType")
        if not isinstance(payload_type, str) or not payload_type:
            raise AttestationError("not a DSSE envelope: payloadType is missing")
        payload = _b64("payload", data.get("payload"))
        raw_signatures = data.get("signatures")
        if not isinstance(raw_signatures, list) or not raw_signatures:
            raise AttestationError("DSSE envelope has no signatures")
        signatures = []
        for i, entry in enumerate(raw_signatures):
            if not isinstance(entry, Mapping):
                raise AttestationError(f"DSSE signature {i} is not an object")
            keyid = entry.get("keyid", "")
            if not isinstance(keyid, str):
                raise AttestationError(f"DSSE signature {i}: keyid must be a string")
            signatures.append(EnvelopeSignature(keyid, _b64(f"signature {i}", entry.get("sig"))))
        return cls(payload_type, payload, tuple(signatures))

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        """Parse one line of a ``.intoto.jsonl`` file."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise AttestationError(f"not a DSSE envelope: invalid JSON ({exc.msg})") from None

    def payload_json(self) -> Any:
        """The payload parsed as JSON (an in-toto Statement for Provenir's envelopes)."""
        try:
            return json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise AttestationError("DSSE payload is not UTF-8 JSON") from None


def sign_envelope(
    payload: bytes, signing_key: Ed25519PrivateKey, *, payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> Envelope:
    """An envelope around ``payload`` with one Ed25519 signature over its PAE.

    Load the key with :func:`provenir.core.signing_keys.load_signing_key`.
    """
    keyid = fingerprint(raw_public_key(signing_key))
    signature = signing_key.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (EnvelopeSignature(keyid, signature),))


def verify_envelope(envelope: Envelope, public_keys: Sequence[str]) -> str:
    """The base64 public key (of ``public_keys``) whose signature on ``envelope`` verifies.

    Every signature is tried against every key (the keyid is only a hint); raises
    :class:`AttestationError` when none verifies.
    """
    if not public_keys:
        raise AttestationError("no public key to verify the attestation against")
    require_extra("cryptography", "signing", purpose="checking an attestation signature")
    from cryptography.exceptions import InvalidSignature

    message = pae(envelope.payload_type, envelope.payload)
    for key in public_keys:
        public = public_key_object(key)
        for signature in envelope.signatures:
            try:
                public.verify(signature.sig, message)
            except InvalidSignature:
                continue
            return key
    signers = ", ".join(sorted({s.keyid or "(no keyid)" for s in envelope.signatures}))
    trusted = ", ".join(fingerprint(parse_public_key(k)) for k in public_keys)
    raise AttestationError(
        f"no signature verifies with the trusted key(s) {trusted} (envelope names keyid {signers}): "
        "the payload was changed or another key signed it"
    )


def _b64(what: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise AttestationError(f"DSSE envelope: {what} must be a base64 string")
    try:
        # DSSE readers accept URL-safe base64 too: map it onto the standard alphabet, then be strict.
        return base64.b64decode(value.translate(_URL_SAFE), validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError(f"DSSE envelope: {what} is not valid base64") from None


_URL_SAFE = str.maketrans("-_", "+/")
