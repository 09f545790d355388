"""PII detectors on labelled positives and tricky negatives; masking with overlaps; dataset kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenir.core.errors import DataError, GovernanceError
from provenir.governance.pii import PIIMasker, PIIScanner, iban_valid, luhn_valid, merge_spans

POSITIVES = [
    ("EMAIL", "write to jane.doe+news@mail.example.co.uk today", "jane.doe+news@mail.example.co.uk"),
    ("EMAIL", "(bob@example.org)", "bob@example.org"),
    ("PHONE", "call +1 415-555-2671 now", "+1 415-555-2671"),
    ("PHONE", "office: (415) 555-2671.", "(415) 555-2671"),
    ("PHONE", "London +44 20 7946 0958", "+44 20 7946 0958"),
    ("CREDIT_CARD", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
    ("CREDIT_CARD", "amex 378282246310005", "378282246310005"),
    ("CREDIT_CARD", "mc 5555-5555-5555-4444.", "5555-5555-5555-4444"),
    ("IBAN", "pay DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("US_SSN", "ssn: 123-45-6789", "123-45-6789"),
    ("IP_ADDRESS", "host 192.168.1.10, then", "192.168.1.10"),
    ("IP_ADDRESS", "dns is 8.8.8.8.", "8.8.8.8"),
    ("IP_ADDRESS", "v6 2001:db8::8a2e:370:7334 ok", "2001:db8::8a2e:370:7334"),
    ("IP_ADDRESS", "loopback ::1", "::1"),
]

NEGATIVES = [
    "card 4111 1111 1111 1112 fails Luhn",
    "4111 1111-1111 1111 mixes separators",
    "0000 0000 0000 0000 has no issuer",
    "the meeting is on 2023-01-15 at 10:30:45",
    "born 12/25/1990, moved 1999-2005",
    "timestamp 20230115103045",
    "ISBN 978-3-16-148410-0",
    "order #1234567 shipped",
    "pip install torch==2.13.0 and version 1.2.3.4",
    "release v1.2.3.4 and build 10.0.19041.1",
    "sequence 1.2.3.4.5 and 10.0.0.256",
    "ssn-like 000-12-3456 and 666-12-3456 and 123-00-4567",
    "DE89 3704 0044 0532 0130 01 is a bad IBAN checksum",
    "XX89370400440532013000 is no country",
    "std::vector<int> and a::b and 12:30:45",
    "email-ish user@localhost and @handle and a@b",
    "risk-free returns of 12.5% in 2024",
]


@pytest.mark.parametrize(("etype", "text", "expected"), POSITIVES)
def test_detectors_find_labelled_positives(etype: str, text: str, expected: str) -> None:
    found = [(f.type, text[f.start : f.end]) for f in PIIScanner().scan_text(text)]
    assert found == [(etype, expected)]


@pytest.mark.parametrize("text", NEGATIVES)
def test_detectors_ignore_tricky_negatives(text: str) -> None:
    assert PIIScanner().scan_text(text) == []


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")


def test_report_has_rows_fields_offsets_and_counts() -> None:
    rows = [
        {"prompt": "hi", "response": "no pii", "n": 3},
        {"prompt": "mail a@b.com or c@d.org", "messages": [{"role": "user", "content": "ssn 123-45-6789"}]},
    ]
    report = PIIScanner().scan(rows)
    assert report.has_pii and report.rows_scanned == 2 and report.rows_with_pii == 1
    assert report.counts["EMAIL"] == 2 and report.counts["US_SSN"] == 1 and report.counts["PHONE"] == 0
    ssn = [f for f in report.findings if f.type == "US_SSN"][0]
    assert (ssn.row, ssn.field, ssn.start, ssn.end) == (1, "messages[0].content", 4, 15)
    summary = report.to_dict()
    json.dumps(summary)  # goes into RunManifest.scans
    assert "a@b.com" not in json.dumps(summary)
    assert not PIIScanner().scan([{"text": "nothing here"}]).has_pii


def test_masking_uses_stable_typed_placeholders_and_keeps_other_fields() -> None:
    rows = [
        {"id": 7, "text": "a@b.com wrote to c@d.org", "score": 0.5},
        {"id": 8, "text": "again a@b.com, call +1 415-555-2671", "tags": ["x"]},
    ]
    masked = PIIMasker().mask(rows)
    assert masked == [
        {"id": 7, "text": "<EMAIL_1> wrote to <EMAIL_2>", "score": 0.5},
        {"id": 8, "text": "again <EMAIL_1>, call <PHONE_1>", "tags": ["x"]},
    ]
    assert rows[0]["text"] == "a@b.com wrote to c@d.org"  # input untouched


def test_overlapping_findings_are_merged_without_corrupting_text() -> None:
    assert merge_spans([("PHONE", 5, 12), ("EMAIL", 0, 20), ("IP_ADDRESS", 18, 25), ("US_SSN", 30, 41)]) == [
        ("EMAIL", 0, 25),
        ("US_SSN", 30, 41),
    ]

    def overlapping(text: str) -> list[tuple[str, int, int]]:
        i = text.find("555")
        return [("SECRET", i, i + 12)] if i >= 0 else []

    masker = PIIMasker(extra_spans=overlapping)
    text = "id: +1 415-555-2671 ends"  # the extra span overlaps the phone and runs past it
    assert masker.mask_text(text) == "id: <PHONE_1>s"  # union [4, 23) masked once
    assert PIIMasker().mask_text("x 4111 1111 1111 1111 y") == "x <CREDIT_CARD_1> y"


def test_mask_files_and_bad_inputs(tmp_path: Path) -> None:
    src = tmp_path / "d.jsonl"
    src.write_text(
        json.dumps({"q": "my ip is 10.0.0.1", "a": 1}) + "\n\n" + json.dumps({"q": "none", "a": 2}) + "\n"
    )
    out = tmp_path / "m.csv"
    PIIMasker().mask_file(src, str(out))
    assert out.read_text().splitlines() == ["q,a", "my ip is <IP_ADDRESS_1>,1", "none,2"]
    assert PIIScanner().scan(str(out)).has_pii is False
    with pytest.raises(DataError, match="refusing to overwrite"):
        PIIMasker().mask_file(src, str(src))
    with pytest.raises(DataError, match="not found"):
        PIIScanner().scan(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl: line 2 is not valid JSON"):
        PIIScanner().scan(bad)
    with pytest.raises(DataError, match="row 0 is a str"):
        PIIScanner().scan(["just a string"])
    with pytest.raises(GovernanceError, match="unknown PII entity types"):
        PIIScanner(entity_types=["EMAIL", "NAME"])


def test_hf_dataset_is_scanned_and_masked() -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"prompt": "ping a@b.com", "n": 1}, {"prompt": "a@b.com again", "n": 2}])
    assert PIIScanner().scan(ds).counts["EMAIL"] == 2
    masked = PIIMasker().mask(ds)
    assert isinstance(masked, datasets.Dataset)
    assert masked["prompt"] == ["ping <EMAIL_1>", "<EMAIL_1> again"] and masked["n"] == [1, 2]
