"""What a run launched through torchrun or Ray Train ran on: the typed ``distributed`` section of a manifest.

Every rank writes its own :class:`RankRecord` into the run folder when it finishes (its host,
its place in the world, how often the launcher had restarted it, and a digest of its environment);
the launcher gathers them into one :class:`DistributedRun` that the manifest seals. Two ranks
whose ``environment_sha256`` differ ran on different interpreters, packages, CPUs or
result-changing variables (see :func:`provenir.core.environment.capture_environment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from provenir.core.hashing import sha256_json


def environment_digest(environment: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a captured environment."""
    return sha256_json(dict(environment))


class RankRecord(BaseModel):
    """One process of a distributed run, as it reported itself."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(description="Global rank (torch.distributed).")
    local_rank: int = Field(description="Rank among the processes of its node.")
    group_rank: int = Field(description="The node's rank, as the rendezvous assigned it.")
    world_size: int = Field(description="Processes in the world this rank trained in.")
    host: str = Field(description="socket.gethostname() of the rank's machine.")
    restart_count: int = Field(
        description="How many times the launcher had restarted the workers when this rank ran "
        "(torchrun's TORCHELASTIC_RESTART_COUNT; under Ray Train, the rank's own count of its starts)."
    )
    dist_backend: str | None = Field(
        None,
        description="The torch.distributed backend the rank ran (gloo, nccl); None if none was initialised.",
    )
    environment_sha256: str = Field(
        description="SHA-256 of the canonical JSON of the rank's capture_environment() output."
    )


class DistributedRun(BaseModel):
    """Nodes, world size, restarts and every rank of a run launched through torchrun or Ray Train."""

    model_config = ConfigDict(extra="forbid")

    nodes: int = Field(description="Nodes that trained (distinct group ranks).")
    world_size: int = Field(description="Processes that trained.")
    restarts: int = Field(description="Times the launcher restarted the workers (the most any rank saw).")
    strategy: str = Field(description="distributed.strategy as configured.")
    dist_backend: str | None = Field(None, description="The torch.distributed backend rank 0 ran.")
    rendezvous: Literal["standalone", "c10d", "ray"] = Field(
        description="standalone: one node, a local rendezvous; c10d: nodes met at rdzv_endpoint; "
        "ray: Ray Train set up the process group."
    )
    nnodes: str = Field(description="Nodes asked for: a number, or MIN:MAX for an elastic run.")
    rdzv_endpoint: str | None = Field(None, description="host:port where the nodes met (c10d).")
    rdzv_id: str | None = Field(None, description="The rendezvous id the nodes shared (c10d).")
    scheduler: Literal["slurm", "skypilot"] | None = Field(
        None, description="The batch scheduler whose environment the launching node ran in."
    )
    ranks: list[RankRecord] = Field(description="Every rank, in rank order.")
    launcher: Literal["torchrun", "ray"] | None = Field(
        None, description="What started the processes (absent from manifests written before it was recorded)."
    )
    ray_version: str | None = Field(None, description="ray.__version__ of the driver (launcher: ray).")
    ray_workers: int | None = Field(None, description="Ray Train workers asked for (launcher: ray).")

    @model_serializer(mode="wrap")
    def _omit_unrecorded(self, handler: SerializerFunctionWrapHandler):
        # Manifests sealed before these fields existed keep their body, hence their hash.
        # No return annotation: pydantic would take it for the serialised schema.
        data: dict[str, Any] = handler(self)
        for name in _OMITTED_WHEN_NONE:
            if name in data and data[name] is None:
                del data[name]
        return data


#: DistributedRun fields left out of its dump while unset.
_OMITTED_WHEN_NONE = ("launcher", "ray_version", "ray_workers")
