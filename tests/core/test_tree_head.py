"""Tree heads of the audit log: what a head says about its signature, its key and the empty tree.

Signatures are made with a key written by ``generate_signing_key`` and checked here with
``cryptography`` directly, so a head's verdict is compared with an independent check.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from provenir.core.signing_keys import generate_signing_key
from provenir.core.tree_head import TreeHead, make_tree_head
from provenir.governance import merkle

ROOT = merkle.root_of([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"), merkle.leaf_hash(b"c")])


@pytest.fixture
def key(tmp_path: Path) -> tuple[Path, str]:
    """A signing key and the fingerprint ``provenir manifest keygen`` prints for it."""
    path = tmp_path / "signing.key"
    return path, generate_signing_key(path)


@pytest.fixture
def other_key(tmp_path: Path) -> Path:
    path = tmp_path / "other.key"
    generate_signing_key(path)
    return path


def _with_junk(b64: str) -> str:
    """The same base64 with a character outside the alphabet in the middle (an edited field)."""
    return b64[:8] + "!" + b64[8:]


def test_a_head_of_the_empty_log_is_a_valid_head(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    head = make_tree_head(0, merkle.EMPTY_ROOT)
    assert (head.size, head.root) == (0, hashlib.sha256(b"").hexdigest())
    assert TreeHead.model_validate(head.model_dump()) == head
    with pytest.raises(ValidationError, match="size"):
        TreeHead(size=-1, root=head.root, timestamp=head.timestamp)


def test_an_unsigned_head_has_no_key_fingerprint_or_signature_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    head = make_tree_head(3, ROOT)
    assert not head.signed and head.public_key is None and head.fingerprint is None
    assert head.to_note() == head.checkpoint_text()
    assert head.signature_state() == "unsigned"
    # Expecting a key and finding none is not a pass: the head is untrusted, not merely unsigned.
    assert head.signature_state(trusted_public_key="AAAA") == "untrusted"


def test_a_signed_head_names_its_key_and_verifies(
    key: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    path, printed = key
    monkeypatch.delenv("PROVENIR_SIGNING_KEY", raising=False)
    head = make_tree_head(3, ROOT, path)
    assert head.signed and head.public_key is not None and head.signature is not None
    raw = base64.b64decode(head.public_key)
    assert head.fingerprint == printed == hashlib.sha256(raw).hexdigest()[:16]
    Ed25519PublicKey.from_public_bytes(raw).verify(
        base64.b64decode(head.signature), head.checkpoint_text().encode()
    )  # an independent check: raises if the signature is wrong
    assert head.signature_state() == "valid"
    assert head.signature_state(trusted_public_key=head.public_key) == "valid"
    # The same head made through $PROVENIR_SIGNING_KEY is signed by the same key.
    monkeypatch.setenv("PROVENIR_SIGNING_KEY", str(path))
    assert make_tree_head(3, ROOT).fingerprint == printed


def test_a_valid_signature_by_another_key_than_the_trusted_one_is_untrusted(
    key: tuple[Path, str], other_key: Path
) -> None:
    head = make_tree_head(3, ROOT, key[0])
    trusted = make_tree_head(3, ROOT, other_key).public_key
    assert trusted is not None and trusted != head.public_key
    assert head.signature_state(trusted_public_key=trusted) == "untrusted"
    assert head.signature_state() == "valid"


def test_an_edited_head_or_a_swapped_key_is_invalid(key: tuple[Path, str], other_key: Path) -> None:
    head = make_tree_head(3, ROOT, key[0])
    other = make_tree_head(3, ROOT, other_key)
    assert head.model_copy(update={"size": 4}).signature_state() == "invalid"
    assert head.model_copy(update={"root": merkle.EMPTY_ROOT.hex()}).signature_state() == "invalid"
    assert head.model_copy(update={"public_key": other.public_key}).signature_state() == "invalid"
    assert head.model_copy(update={"signature": other.signature}).signature_state() == "invalid"
    # A key or signature that is not strict base64 is an edited field, even when a lenient
    # decoder (which drops the stray character) would recover the signed bytes.
    assert head.public_key is not None and head.signature is not None
    assert head.model_copy(update={"public_key": _with_junk(head.public_key)}).signature_state() == "invalid"
    assert head.model_copy(update={"signature": _with_junk(head.signature)}).signature_state() == "invalid"
    assert head.model_copy(update={"signature": head.signature[:-8]}).signature_state() == "invalid"


def test_half_a_signature_is_read_as_none(key: tuple[Path, str]) -> None:
    """A head that lost its key or its signature cannot be checked: it reads as unsigned (and
    untrusted where a key is expected), its note has no signature line, and nothing raises."""
    head = make_tree_head(3, ROOT, key[0])
    for half in (head.model_copy(update={"public_key": None}), head.model_copy(update={"signature": None})):
        assert half.signature_state() == "unsigned"
        assert half.signature_state(trusted_public_key=head.public_key) == "untrusted"
        assert half.to_note() == half.checkpoint_text()
        # What the API and `provenir audit head` show agrees with the check: not signed.
        assert not half.signed
