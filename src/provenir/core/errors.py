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


class ModelSignatureError(GovernanceError):
    """A model folder's signature is missing or does not verify, or the folder cannot be signed."""


class AttestationError(GovernanceError):
    """An attestation cannot be made (no key, a run that does not verify) or does not verify."""


class MissingExtraError(ProvenirError):
    """An optional package is not installed; the message names the extra that installs it."""

    def __init__(self, message: str, *, module: str, extra: str) -> None:
        super().__init__(message)
        self.module = module
        self.extra = extra


class RunInterrupted(KeyboardInterrupt):
    """A training run stopped by Ctrl-C, after its manifest was saved with ``status: failed``.

    Still a :class:`KeyboardInterrupt`, so code that stops on Ctrl-C keeps stopping. ``step``
    is the last completed optimizer step (``None`` when the backend does not report steps);
    ``checkpoint`` the newest complete checkpoint and ``resume_command`` the command that
    continues the run from it (both ``None`` without one). ``str()`` gives the report, one
    line per fact.
    """

    def __init__(
        self,
        run_id: str,
        step: int | None,
        manifest_path: str,
        checkpoint: str | None = None,
        resume_command: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.step = step
        self.manifest_path = manifest_path
        self.checkpoint = checkpoint
        self.resume_command = resume_command
        super().__init__("\n".join(self.lines))

    @property
    def lines(self) -> list[str]:
        """What happened, then what to do about it."""
        at = f" at step {self.step}" if self.step is not None else ""
        lines = [f"interrupted{at}; the run is marked failed ({self.manifest_path})"]
        if self.resume_command is not None:
            lines.append(f"resume it from {self.checkpoint} with: {self.resume_command}")
        else:
            lines.append("no checkpoint was saved, so it cannot be resumed (set save_steps to save some)")
        return lines
