"""``provenir reproduce``: check a manifest's inputs, replay the run, compare the weights.

Before anything trains, the manifest must verify (hash, file form, signature), its embedded
config must still resolve to the recorded ``config_hash`` under this Provenir version, and the
dataset on disk must hash to the recorded ``dataset_hash``. Otherwise nothing runs. A replay
that is not bitwise identical names the environment fields that differ from the original's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from provenir.core.config import RunConfig
from provenir.core.environment import environment_diff
from provenir.core.errors import ReproducibilityError
from provenir.core.manifest import RunManifest
from provenir.data.loading import dataset_hash
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

    @property
    def verdict(self) -> str:
        """``bitwise identical`` or ``differs``."""
        return "bitwise identical" if self.identical else "differs"


def check_inputs(manifest: RunManifest) -> RunConfig:
    """The config to replay, after checking that neither it nor the dataset changed."""
    config = RunConfig.from_dict(manifest.config)
    if config.config_hash() != manifest.config_hash:
        raise ReproducibilityError(
            f"config hash changed: the manifest's config now resolves to {config.config_hash()[:16]}…, "
            f"recorded {manifest.config_hash[:16]}… (a Provenir upgrade changed config defaults?)"
        )
    current = dataset_hash(config.data.path)
    if current != manifest.dataset_hash:
        raise ReproducibilityError(
            f"dataset changed: {config.data.path} hashes to {current[:16]}…, "
            f"the manifest recorded {manifest.dataset_hash[:16]}…"
        )
    if config.data.eval_path and manifest.eval_dataset_hash:
        current_eval = dataset_hash(config.data.eval_path)
        if current_eval != manifest.eval_dataset_hash:
            raise ReproducibilityError(
                f"eval dataset changed: {config.data.eval_path} hashes to {current_eval[:16]}…, "
                f"the manifest recorded {manifest.eval_dataset_hash[:16]}…"
            )
    if config.init_adapter:
        from provenir.core.hashing import sha256_path

        recorded = manifest.extra.get("init_adapter_hash")
        if sha256_path(config.init_adapter) != recorded:
            raise ReproducibilityError(
                f"initial adapter changed: {config.init_adapter} no longer hashes as recorded"
            )
    return config


def reproduce(manifest_file: str | os.PathLike[str], *, output_dir: str | None = None) -> Reproduction:
    """Verify ``manifest_file``, replay its run with the same seed and compare adapter hashes."""
    original, raw = RunManifest.load_with_text(manifest_file)
    original.verify(raw=raw)
    config = check_inputs(original)
    if output_dir is not None:
        config = config.model_copy(update={"output_dir": output_dir})
    else:
        # Replays land beside the original: <output_dir>/manifests/<id>.json -> <output_dir>.
        config = config.model_copy(update={"output_dir": str(Path(manifest_file).resolve().parent.parent)})
    replay = train(
        config, RunOptions(provenance=[*original.provenance, original.run_id], relation="reproduce")
    )
    identical = original.adapter_hash is not None and original.adapter_hash == replay.adapter_hash
    deltas = {
        k: (original.metrics[k], replay.metrics[k])
        for k in sorted(set(original.metrics) & set(replay.metrics))
        if k not in ("train_runtime_s", "train_cpu_s") and original.metrics[k] != replay.metrics[k]
    }
    from provenir.governance.audit import AuditLogger

    AuditLogger(Path(config.output_dir) / "audit").log(
        "reproduce_completed",
        run_id=replay.run_id,
        original_run_id=original.run_id,
        identical=identical,
        adapter_hash=replay.adapter_hash,
    )
    changes = environment_diff(original.environment, replay.environment)
    return Reproduction(original, replay, identical, deltas, changes)
