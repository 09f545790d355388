"""Credential formats: every type is found and masked whole, the text around it is kept, look-alikes stay."""

from __future__ import annotations

import random
import re
import string

import pytest

from provenir.core.credentials import find_credentials, is_credential_key, normalise_key
from provenir.governance.scanners import SecretScanner, masker_for
from provenir.testing.secret_samples import SECRET_TYPES, LabelledSecret, labelled_samples, negative_samples

PER_TYPE = 40
SAMPLES = labelled_samples(PER_TYPE, seed=14)
_PLACEHOLDER = r"<[A-Z_]+_\d+>"


@pytest.fixture(scope="module")
def scanner() -> SecretScanner:
    return SecretScanner()


def _expected_shape(sample: LabelledSecret) -> re.Pattern[str]:
    """The masked text must be the sample's own text with each secret span replaced by a placeholder."""
    parts, pos = [], 0
    for start, end in sorted(sample.spans):
        parts.append(re.escape(sample.text[pos:start]))
        pos = end
    parts.append(re.escape(sample.text[pos:]))
    return re.compile(_PLACEHOLDER.join(parts), re.DOTALL)


@pytest.mark.parametrize("secret_type", SECRET_TYPES)
def test_every_secret_type_is_masked_whole_and_the_text_around_it_is_kept(secret_type: str) -> None:
    masker = masker_for()
    samples = [s for s in SAMPLES if s.type == secret_type]
    assert len(samples) == PER_TYPE
    for sample in samples:
        masked = masker.mask_text(sample.text)
        secret = sample.secret
        surviving = [
            secret[i : i + 4]
            for i in range(len(secret) - 3)
            if secret[i : i + 4] in masked and secret[i : i + 4] not in _outside(sample)
        ]
        assert not surviving, (sample.text, masked, surviving)
        assert _expected_shape(sample).fullmatch(masked), (sample.text, masked)


def _outside(sample: LabelledSecret) -> str:
    """The sample's text without any of its secrets (a 4-character piece found there is not a leak)."""
    out, pos = [], 0
    for start, end in sorted(sample.spans):
        out.append(sample.text[pos:start])
        pos = end
    out.append(sample.text[pos:])
    return "\x00".join(out)


@pytest.mark.parametrize("line", negative_samples())
def test_look_alikes_are_left_alone(scanner: SecretScanner, line: str) -> None:
    assert find_credentials(line) == []
    assert scanner.scan_text(line) == []


def test_the_issue_examples_are_masked_whole() -> None:
    ghp = "ghp_" + "abcdefghijklmnopqrstuvwxyzABCDEF0123" + "AB"  # 38 characters after the prefix
    lines = {
        "sk-ant": "key sk-ant-api03-" + "x7Yq" * 23 + "AbAA here",
        "sk-proj": "OPENAI_API_KEY=sk-proj-" + "Ab3dEf6hIj" * 12 + " (prod)",
        "aws": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "hf": "HF_TOKEN is hf_" + "abcdefghijklmnopqrstuvwxyzABCDEFGH" + " today",
        "google": "maps key AIzaSyD-1234567890abcdefghijklmnopqrstu ok",
        "password": "password: Tr0ub4dor&3",
        "ghp": f"token {ghp}",
    }
    masker = masker_for()
    masked = {name: masker.mask_text(line) for name, line in lines.items()}
    assert masked["ghp"] == "token <SECRET_7>"
    assert masked["aws"] == "aws_secret_access_key = <SECRET_3>"
    assert masked["password"] == "password: <SECRET_6>"
    assert masked["hf"] == "HF_TOKEN is <SECRET_4> today"
    for name, line in lines.items():
        assert masked[name].count("<SECRET_") == 1, (line, masked[name])


def test_credential_formats_and_detect_secrets_merge_into_one_finding_per_secret(
    scanner: SecretScanner,
) -> None:
    # detect-secrets' GitHub regex stops after 36 characters; the credential format goes on.
    text = "leaked ghp_" + "a" * 30 + "B1C2D3E4" + " yesterday"
    (finding,) = scanner.scan_text(text)
    assert finding.type == "GitHub Token" and text[finding.start : finding.end] == text.split()[1]


def test_pragma_allowlist_also_silences_the_credential_formats(scanner: SecretScanner) -> None:
    line = "sk-ant-api03-" + "q" * 40 + "1  # pragma: allowlist secret"
    assert find_credentials(line) and scanner.scan_text(line) == []


CREDENTIAL_KEYS = [
    "api_key", "apiKey", "api-key", "API_KEY", "ApiKey", "APIKey", "apikey", "x-api-key", "X-Api-Key",
    "OPENAI_API_KEY", "anthropicApiKey", "access_key", "secret_access_key", "AWS_SECRET_ACCESS_KEY",
    "aws_session_token", "client_secret", "clientSecret", "password", "Password", "db_password",
    "dbPassword", "PGPASSWORD", "passwd", "passphrase", "auth_token", "X-Auth-Token", "access_token",
    "refresh_token", "id_token", "Authorization", "authorization", "private_key", "privateKey", "secret",
    "token", "hf_token", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "github_token", "GITLAB_TOKEN", "cookie",
    "Set-Cookie", "credentials", "connection_string", "AccountKey", "webhook_secret", "PRIVATE-TOKEN",
]  # fmt: skip
NOT_CREDENTIAL_KEYS = [
    "token_f1", "max_new_tokens", "tokenizer", "num_tokens", "mean_token_accuracy", "max_tokens",
    "eos_token", "pad_token", "tokens_per_second", "signing_key_path", "api_key_env", "key",
    "sort_key", "is_secret", "has_secrets", "secrets", "scan_secrets", "secret_counts", "password_file",
    "keyword", "primary_key_id", "access_key_id", "AWS Access Key", "Secret Keyword", "monkey",
    "passage", "bypass", "compass", "secretary", "token_count",
]  # fmt: skip


@pytest.mark.parametrize("key", CREDENTIAL_KEYS)
def test_credential_key_names_in_every_joined_form(key: str) -> None:
    assert is_credential_key(key), normalise_key(key)


@pytest.mark.parametrize("key", NOT_CREDENTIAL_KEYS)
def test_keys_that_merely_contain_a_credential_word_are_not_credential_keys(key: str) -> None:
    assert not is_credential_key(key), normalise_key(key)


def test_the_cheap_gate_never_changes_a_result() -> None:
    # long_run=True claims a long run of non-space characters, which opens the gate for any text.
    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + "+/_-=:\"' \n.@"
    texts = [s.text for s in SAMPLES] + negative_samples()
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 60))) for _ in range(500)]
    texts += [f"--password x{i}y7 and pwd: a{i}b9" for i in range(3)]
    for text in texts:
        assert find_credentials(text) == find_credentials(text, long_run=True), text
