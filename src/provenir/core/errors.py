"""Error types. Each carries a message a user can act on; the CLI prints it on one line and exits 2."""

from __future__ import annotations


class ProvenirError(Exception):
    """Base class of every error Provenir raises on purpose (bad input, failed check)."""


class ConfigError(ProvenirError):
    """A run configuration is missing, malformed, or has an invalid field."""


class DataError(ProvenirError):
    """A dataset is missing, unreadable, empty, or lacks the columns the job needs."""


class ManifestError(ProvenirError):
    """A manifest file is missing or is not a valid manifest."""


class ManifestTamperedError(ManifestError):
    """A manifest's content no longer matches its recorded hash or signature."""


class ReproducibilityError(ProvenirError):
    """A run cannot be reproduced because an input (config or dataset) changed."""


class BackendError(ProvenirError):
    """A training backend is unknown or failed to train."""


class PluginError(ProvenirError):
    """A plugin is unknown, registered twice, or does not implement its protocol."""


class RegressionError(ProvenirError):
    """The regression gate tripped: a metric dropped more than the allowed tolerance."""


class EvaluationError(ProvenirError):
    """An evaluation cannot be computed (empty input, mismatched lengths, unknown metric)."""


class JudgeError(ProvenirError):
    """An LLM judge failed to produce a valid verdict after its retries."""


class GovernanceError(ProvenirError):
    """An audit log, scan or model card operation failed a check."""


class AuditTamperedError(GovernanceError):
    """The audit log's hash chain is broken: a record was edited, deleted or reordered."""


class AttestationError(GovernanceError):
    """An attestation cannot be made (no key, a run that does not verify) or does not verify."""


class MissingExtraError(ProvenirError):
    """An optional package is not installed; the message names the extra that installs it."""

    def __init__(self, message: str, *, module: str, extra: str) -> None:
        super().__init__(message)
        self.module = module
        self.extra = extra
