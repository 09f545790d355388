"""Governance: hash-chained audit log, PII and secret scanning, model cards."""
