"""SecretScanner on detect-secrets plugins: positives, prose negatives, pre-filter equivalence, policy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from provenir.core.errors import DataError
from provenir.governance.scanners import SecretScanner, apply_scan_policy, scan_dataset

SECRET_LINES = [
    ("AWS Access Key", "deploy with AKIAIOSFODNN7EXAMPLE please", "AKIAIOSFODNN7EXAMPLE"),
    (
        "GitHub Token",
        "token ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123 leaked",
        "ghp_abcdefghijklmnopqrstuvwxyzABCDEF0123",
    ),
    ("Slack Token", "xoxb-123456789012-1234567890123-abcdefghijABCDEFGHIJklmn", None),
    ("Stripe Access Key", "key: sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    (
        "JSON Web Token",
        "auth eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        None,
    ),
    ("Secret Keyword", 'password = "hunter2horse"', "hunter2horse"),
    ("Basic Auth Credentials", "db at https://admin:s3cretpw@db.example.com/x", "s3cretpw"),
    ("Hex High Entropy String", 'commit "3f786850e387550fdab836ed7e6dc881de23001b"', None),
    ("Artifactory Credentials", "AKCp8jQ8sDfGhJkLzzzz", None),
]

PROSE = [
    "This is a risk-free investment with guaranteed returns.",
    "The key idea of LoRA is low-rank adaptation of the weights.",
    "The password is something you should never share.",
    'He said "supercalifragilisticexpialidocious" loudly.',
    "Our secret sauce is good data, not a bigger model.",
    "Contact me at the office on Monday; the API is documented online.",
    "The dataset sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is recorded.",
    'id "550e8400-e29b-41d4-a716-446655440000" is a UUID',
    "Interoperability, internationalization and responsibilities are long words.",
]


@pytest.fixture(scope="module")
def scanner() -> SecretScanner:
    return SecretScanner()


@pytest.mark.parametrize(("stype", "line", "value"), SECRET_LINES)
def test_secret_formats_are_found(scanner: SecretScanner, stype: str, line: str, value: str | None) -> None:
    found = scanner.scan_text(line)
    assert stype in {f.type for f in found}
    if value is not None:
        assert value in {line[f.start : f.end] for f in found}


@pytest.mark.parametrize("line", PROSE)
def test_ordinary_prose_is_not_a_secret(scanner: SecretScanner, line: str) -> None:
    assert scanner.scan_text(line) == []


def test_prefilter_gives_exactly_the_results_of_running_every_plugin(scanner: SecretScanner) -> None:
    full = SecretScanner(prefilter=False)
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/_-=\"':@ "
    lines = [line for _, line, _ in SECRET_LINES] + PROSE
    lines += ["".join(rng.choice(alphabet) for _ in range(rng.randint(5, 80))) for _ in range(300)]
    text = "\n".join(lines)
    assert scanner.scan_text(text) == full.scan_text(text)
    for line in lines:
        assert scanner.scan_text(line) == full.scan_text(line), line


def test_private_key_block_is_one_span(scanner: SecretScanner) -> None:
    text = (
        "x\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n"
        "-----END RSA PRIVATE KEY-----\ny"
    )
    (f,) = scanner.scan_text(text)
    assert text[f.start : f.end].endswith("-----END RSA PRIVATE KEY-----") and text[f.end :] == "\ny"


def test_allowlist_pragma_is_honoured(scanner: SecretScanner) -> None:
    assert scanner.scan_text("AKIAIOSFODNN7EXAMPLE  # pragma: allowlist secret") == []


def test_combined_scan_summary_is_json_and_never_holds_the_values() -> None:
    rows = [
        {"prompt": "mail a@b.com", "response": "use AKIAIOSFODNN7EXAMPLE"},
        {"prompt": "fine", "response": "ok"},
    ]
    summary = scan_dataset(rows)
    data = summary.to_dict()
    text = json.dumps(data)
    assert data["has_pii"] and data["has_secrets"] and data["rows_scanned"] == 2
    assert data["secrets"]["counts"] == {"AWS Access Key": 1}
    assert data["secrets"]["findings"][0] == {
        "type": "AWS Access Key",
        "row": 0,
        "field": "response",
        "start": 4,
        "end": 24,
    }
    assert "AKIAIOSFODNN7EXAMPLE" not in text and "a@b.com" not in text


def test_scan_policy_report_mask_refuse() -> None:
    rows = [{"prompt": "mail a@b.com", "response": "use AKIAIOSFODNN7EXAMPLE"}]
    same, summary = apply_scan_policy(rows, "report")
    assert same is rows and summary.action == "report"
    masked, summary = apply_scan_policy(rows, "mask")
    assert (
        masked == [{"prompt": "mail <EMAIL_1>", "response": "use <SECRET_1>"}]
        and summary.to_dict()["action"] == "masked"
    )
    with pytest.raises(DataError, match="EMAIL=1, AWS Access Key=1"):
        apply_scan_policy(rows, "refuse")
    clean, summary = apply_scan_policy([{"prompt": "hello"}], "refuse")
    assert summary.action == "none_found"


def test_governance_imports_stay_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, provenir.governance.audit, provenir.governance.pii, provenir.governance.scanners, "
        "provenir.governance.model_card, provenir.cli.governance_commands; "
        "heavy = [m for m in ('detect_secrets', 'phonenumbers', 'huggingface_hub', 'datasets') "
        "if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scan_file_masks_and_records_counts_never_values(tmp_path: Path) -> None:
    from provenir.governance.audit import AuditLogger
    from provenir.governance.scanners import scan_file

    data = tmp_path / "d.jsonl"
    rows = [{"prompt": "mail a@b.com", "response": "key AKIAIOSFODNN7EXAMPLE"}, {"prompt": "hi"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plain = scan_file(data)
    assert plain.action == "report" and plain.rows_scanned == 2 and plain.has_findings
    assert not (tmp_path / "audit").exists()  # nothing recorded without an audit folder
    masked = tmp_path / "masked.jsonl"
    summary = scan_file(data, mask=masked, audit_dir=tmp_path / "audit")
    assert summary.action == "masked"
    assert [json.loads(x) for x in masked.read_text().splitlines()] == [
        {"prompt": "mail <EMAIL_1>", "response": "key <SECRET_1>"},
        {"prompt": "hi"},
    ]
    (record,) = AuditLogger(tmp_path / "audit").query().records
    assert record.event == "dataset_scanned" and record.fields["masked_to"] == str(masked)
    assert (
        record.fields["secret_counts"] == {"AWS Access Key": 1} and record.fields["pii_counts"]["EMAIL"] == 1
    )
    assert "AKIAIOSFODNN7EXAMPLE" not in (tmp_path / "audit" / "audit.jsonl").read_text()
