"""The ``stub`` backend: no model, no training, returns at once. For CI of the surrounding plumbing.

It writes a small deterministic placeholder "adapter" (derived from the config and dataset
hashes) so that hashing, manifests and reproduction can be exercised without torch. Its
manifests say ``backend: stub``; nothing in them pretends a model was trained.
"""

from __future__ import annotations

from pathlib import Path

from provenir.core.abstractions import TrainData, TrainResult
from provenir.core.atomic import atomic_write_bytes, atomic_write_json
from provenir.core.config import RunConfig
from provenir.core.hashing import sha256_bytes


class StubBackend:
    """Instant backend for tests of everything around training."""

    #: The run driver pins (hashes) the base model only for backends that load one.
    loads_model = False

    # fit takes no ``callbacks``: no Trainer runs, so there is nothing to call them; the run driver
    # replays the log below to the tracker instead, as for any backend without callbacks.
    def fit(self, config: RunConfig, dataset: TrainData, run_dir: Path) -> TrainResult:
        """Write the placeholder adapter and report zero training."""
        adapter = run_dir / "adapter"
        seed_material = f"{config.config_hash()}:{dataset.dataset_hash}:{config.seed}".encode()
        # 4 KiB of bytes that depend only on the inputs, so reproduce can check identity.
        blob = b"".join(bytes.fromhex(sha256_bytes(seed_material + i.to_bytes(4, "big"))) for i in range(128))
        atomic_write_bytes(adapter / "stub_adapter.bin", blob)
        atomic_write_json(adapter / "adapter_config.json", {"backend": "stub", "rank": config.peft.rank})
        return TrainResult(
            adapter_dir=adapter,
            metrics={"train_rows": float(len(dataset))},
            log_history=[{"step": 0, "note": "stub backend: no training performed"}],
            device="none",
        )
