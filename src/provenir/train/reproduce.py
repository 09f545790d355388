"""``provenir reproduce``: check a manifest's inputs, replay the run, compare the weights.

Before anything trains: the manifest must verify (hash, file form, signature, under the signer
policy when one is given: unsigned or foreign-signed is refused) and record a completed run; its embedded config must still resolve to the recorded ``config_hash`` under this
Provenir version; and every pinned input (:mod:`provenir.core.inputs`: model and adapter files,
chat template, dataset sources, the exact training and eval rows) must be derived again from what
is on disk and equal what was recorded. Otherwise nothing runs, and the error names each input
that differs. When the replay is not bitwise identical, the environment fields that differ from
the original run are listed: they are the usual reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from provenir.core.config import RunConfig
from provenir.core.environment import environment_diff
from provenir.core.errors import ManifestTamperedError, ReproducibilityError
from provenir.core.manifest import RunManifest
from provenir.core.signers import SignerPolicy
from provenir.core.store import RunStore
from provenir.train.runner import RunOptions, train


@dataclass
class Reproduction:
    """The original manifest, the replay's manifest and how their results compare."""

    original: RunManifest
    replay: RunManifest
    identical: bool
    metric_deltas: dict[str, tuple[float, float]] = field(default_factory=dict)
    environment_changes: list[str] = field(default_factory=list)
    """``path: original -> replay`` for every environment field that differs (see ``environment_diff``)."""

    def to_dict(self) -> dict[str, Any]:
        """The comparison as JSON-serialisable data (what ``provenir reproduce --json`` prints)."""
        return {
            "original_run_id": self.original.run_id,
            "replay_run_id": self.replay.run_id,
            "original_adapter_hash": self.original.adapter_hash,
            "replay_adapter_hash": self.replay.adapter_hash,
            "identical": self.identical,
            "metric_deltas": {k: list(v) for k, v in self.metric_deltas.items()},
            "environment_changes": self.environment_changes,
        }

    @property
    def verdict(self) -> str:
        """``bitwise identical`` or ``differs``."""
        return "bitwise identical" if self.identical else "differs"


def check_inputs(manifest: RunManifest) -> RunConfig:
    """The config to replay, after checking the run finished and its config still hashes alike.

    The pinned inputs themselves are re-derived and compared by the run driver
    (``RunOptions.expected_inputs``) before it writes or trains anything.
    """
    if manifest.status != "completed":
        raise ReproducibilityError(
            f"run {manifest.run_id} is {manifest.status}: only a completed run can be reproduced"
        )
    if manifest.inputs is None:
        raise ReproducibilityError(
            f"run {manifest.run_id} has a schema-{manifest.schema_version} manifest that pins no inputs "
            "(model files, rows); it cannot be replayed against them"
        )
    config = RunConfig.from_dict(manifest.config)
    if config.config_hash() != manifest.config_hash:
        raise ReproducibilityError(
            f"config hash changed: the manifest's config now resolves to {config.config_hash()[:16]}…, "
            f"recorded {manifest.config_hash[:16]}… (a Provenir upgrade changed config defaults?)"
        )
    return config


def reproduce(
    manifest_file: str | os.PathLike[str],
    *,
    output_dir: str | None = None,
    policy: SignerPolicy | None = None,
) -> Reproduction:
    """Verify ``manifest_file`` (under ``policy``), replay its run with the same seed and compare
    adapter hashes. Raises :class:`ManifestTamperedError` with the verification's problems, before
    anything is written, when the manifest does not verify.

    The original run's output files are not re-hashed: a replay needs only the manifest and its
    inputs (which the run driver re-derives), not the original adapter.
    """
    stored = RunStore.of_manifest_file(manifest_file).open(manifest_file, policy=policy, check_outputs=False)
    original = stored.manifest
    if original is None or not stored.verification.ok:
        raise ManifestTamperedError(
            f"{manifest_file}: refusing to reproduce: " + "; ".join(stored.verification.problems)
        )
    config = check_inputs(original)
    # Replays land beside the original unless told otherwise.
    store = RunStore(output_dir) if output_dir is not None else stored.store
    config = config.model_copy(update={"output_dir": str(store.root)})
    replay = train(
        config,
        RunOptions(
            provenance=[*original.provenance, original.run_id],
            relation="reproduce",
            expected_inputs=original.inputs,
        ),
    )
    identical = original.adapter_hash is not None and original.adapter_hash == replay.adapter_hash
    deltas = {
        k: (original.metrics[k], replay.metrics[k])
        for k in sorted(set(original.metrics) & set(replay.metrics))
        if k not in ("train_runtime_s", "train_cpu_s") and original.metrics[k] != replay.metrics[k]
    }
    env_diff = environment_diff(original.environment, replay.environment)
    from provenir.governance.audit import AuditLogger

    AuditLogger(store.audit_dir).log(
        "reproduce_completed",
        run_id=replay.run_id,
        original_run_id=original.run_id,
        identical=identical,
        adapter_hash=replay.adapter_hash,
    )
    return Reproduction(original, replay, identical, deltas, env_diff)
