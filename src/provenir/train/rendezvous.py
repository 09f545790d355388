"""Where the nodes of a run meet: torchrun's c10d rendezvous, from the config or the scheduler.

Every node's ``torchrun`` agent contacts the same ``host:port`` (the rendezvous endpoint) under the
same rendezvous id; the rendezvous then numbers the nodes and their processes. The values come,
in order of precedence, from

1. the config (``distributed.nnodes``, ``rdzv_endpoint``, ``rdzv_id``; the deprecated
   ``num_nodes`` and ``master_addr``/``master_port`` are mapped onto them),
2. the batch scheduler the process runs under (:func:`scheduler_job`): Slurm's ``SLURM_NNODES``,
   ``SLURM_JOB_NODELIST`` (its first host, port 29400) and ``SLURM_JOB_ID``; SkyPilot's
   ``SKYPILOT_NUM_NODES``, ``SKYPILOT_NODE_IPS`` (its first line) and ``SKYPILOT_TASK_ID``,
3. defaults: one node, and a rendezvous id derived from the run id, so two runs never join
   each other.

Everything here is a pure function of its arguments except :func:`slurm_hostnames`, which asks
``scontrol`` when it is installed::

    job = scheduler_job({"SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "41"})
    resolve_rendezvous(config.distributed, run_id, job)
    # Rendezvous(endpoint='gpu07:29400', rdzv_id='41', nnodes='2', ...)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from provenir.core.config import DistributedConfig, parse_nnodes
from provenir.core.errors import ConfigError

#: torchrun's own default port for a c10d endpoint given without one.
DEFAULT_RDZV_PORT = 29400

_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._:-]")


@dataclass(frozen=True)
class SchedulerJob:
    """What a batch scheduler says about the job this process runs in (None: it does not say)."""

    scheduler: Literal["slurm", "skypilot"]
    nnodes: int | None
    node_rank: int | None
    job_id: str | None
    first_host: str | None


@dataclass(frozen=True)
class Rendezvous:
    """The torchrun rendezvous every node of one run uses."""

    backend: str
    endpoint: str
    rdzv_id: str
    nnodes: str
    join_timeout_s: int

    def torchrun_args(self) -> list[str]:
        """``--nnodes``, ``--rdzv-backend``, ``--rdzv-endpoint``, ``--rdzv-id`` and the join timeout."""
        return [
            f"--nnodes={self.nnodes}",
            f"--rdzv-backend={self.backend}",
            f"--rdzv-endpoint={self.endpoint}",
            f"--rdzv-id={self.rdzv_id}",
            f"--rdzv-conf=join_timeout={self.join_timeout_s}",
        ]


# -- Slurm host lists ---------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets: ``a[1,2],b`` -> ``['a[1,2]', 'b']``."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (part.strip() for part in parts) if p]


def _expand_range_list(body: str) -> list[str]:
    """``01-03,7`` -> ``['01', '02', '03', '7']`` (zero padding kept, as Slurm does)."""
    out: list[str] = []
    for item in body.split(","):
        low, sep, high = item.strip().partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"not a Slurm range: [{body}]")
        if not sep:
            out.append(low)
            continue
        width = len(low)
        out.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
    return out


def _expand_host(pattern: str) -> list[str]:
    """``gpu[1-2]-ib[3,4]`` -> every combination, in order."""
    match = re.search(r"\[([^\]]*)\]", pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise ValueError(f"unbalanced brackets in Slurm host list: {pattern}")
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [
        head + value + rest for value in _expand_range_list(match.group(1)) for rest in _expand_host(tail)
    ]


def expand_slurm_nodelist(nodelist: str) -> list[str]:
    """Expand a Slurm host list as ``scontrol show hostnames`` does, without Slurm.

    ``node[01-03],gpu7`` -> ``['node01', 'node02', 'node03', 'gpu7']``; a ``ValueError`` for a
    malformed list.
    """
    hosts: list[str] = []
    for part in _split_top_level(nodelist):
        hosts.extend(_expand_host(part))
    return hosts


def slurm_hostnames(nodelist: str) -> list[str]:
    """``scontrol show hostnames NODELIST`` when Slurm's tools are installed, else the built-in parser."""
    scontrol = shutil.which("scontrol")
    if scontrol is not None:
        try:
            out = subprocess.run(
                [scontrol, "show", "hostnames", nodelist],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        hosts = [line.strip() for line in out.splitlines() if line.strip()]
        if hosts:
            return hosts
    return expand_slurm_nodelist(nodelist)


# -- the scheduler's environment ----------------------------------------------------------------


def _int(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise ConfigError(f"${name} is {value!r}, expected a non-negative integer")
    return int(value)


def _job_id(value: str | None) -> str | None:
    # Scheduler ids become torchrun arguments: keep them to the characters a config rdzv_id allows.
    return _UNSAFE_ID_CHARS.sub("-", value.strip())[:128] if value and value.strip() else None


def scheduler_job(
    environ: Mapping[str, str], expand_nodelist: Callable[[str], list[str]] = expand_slurm_nodelist
) -> SchedulerJob | None:
    """What Slurm or SkyPilot variables in ``environ`` say about this job; None outside both.

    Slurm: ``SLURM_NNODES`` (or ``SLURM_JOB_NUM_NODES``), ``SLURM_NODEID`` (else
    ``SLURM_PROCID``), ``SLURM_JOB_ID``, and the first host of ``SLURM_JOB_NODELIST`` (or
    ``SLURM_NODELIST``), expanded with ``expand_nodelist``. SkyPilot: ``SKYPILOT_NUM_NODES``,
    ``SKYPILOT_NODE_RANK``, ``SKYPILOT_TASK_ID``, and the first line of ``SKYPILOT_NODE_IPS``.
    """
    if "SLURM_JOB_ID" in environ:
        nodelist = environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST")
        first = None
        if nodelist:
            try:
                hosts = expand_nodelist(nodelist)
            except ValueError as exc:
                raise ConfigError(f"$SLURM_JOB_NODELIST {nodelist!r}: {exc}") from None
            first = hosts[0] if hosts else None
        node_rank = _int(environ, "SLURM_NODEID")
        return SchedulerJob(
            scheduler="slurm",
            nnodes=_int(environ, "SLURM_NNODES") or _int(environ, "SLURM_JOB_NUM_NODES"),
            node_rank=node_rank if node_rank is not None else _int(environ, "SLURM_PROCID"),
            job_id=_job_id(environ.get("SLURM_JOB_ID")),
            first_host=first,
        )
    if "SKYPILOT_NUM_NODES" in environ or "SKYPILOT_NODE_IPS" in environ:
        ips = [line.strip() for line in environ.get("SKYPILOT_NODE_IPS", "").splitlines() if line.strip()]
        return SchedulerJob(
            scheduler="skypilot",
            nnodes=_int(environ, "SKYPILOT_NUM_NODES"),
            node_rank=_int(environ, "SKYPILOT_NODE_RANK"),
            job_id=_job_id(environ.get("SKYPILOT_TASK_ID")),
            first_host=ips[0] if ips else None,
        )
    return None


# -- putting config and scheduler together ------------------------------------------------------


def resolve_nodes(config: DistributedConfig, job: SchedulerJob | None) -> tuple[int, int]:
    """(MIN, MAX) nodes: ``nnodes``, else the deprecated ``num_nodes``, else the scheduler's, else 1."""
    if config.nnodes is not None:
        return parse_nnodes(config.nnodes)
    if config.num_nodes != 1:
        return config.num_nodes, config.num_nodes
    if job is not None and job.nnodes:
        return job.nnodes, job.nnodes
    return 1, 1


def _legacy_endpoint(config: DistributedConfig) -> str | None:
    legacy = {"num_nodes", "master_addr", "master_port"} & set(config.deprecated_fields())
    if not legacy:
        return None
    host = f"[{config.master_addr}]" if ":" in config.master_addr else config.master_addr
    return f"{host}:{config.master_port}"


def resolve_rendezvous(config: DistributedConfig, run_id: str, job: SchedulerJob | None) -> Rendezvous | None:
    """The rendezvous of a run on several nodes; None for one node with no endpoint (``--standalone``).

    Raises :class:`ConfigError` when several nodes are asked for and nothing says where they meet.
    """
    low, high = resolve_nodes(config, job)
    if high == 1 and config.rdzv_endpoint is None:
        return None
    endpoint = config.rdzv_endpoint or _legacy_endpoint(config)
    if endpoint is None and job is not None and job.first_host:
        host = f"[{job.first_host}]" if ":" in job.first_host else job.first_host
        endpoint = f"{host}:{DEFAULT_RDZV_PORT}"
    if endpoint is None:
        raise ConfigError(
            f"distributed: {high} nodes need a meeting point: set distributed.rdzv_endpoint to host:port "
            "of a node every node can reach (under Slurm or SkyPilot it comes from the job)"
        )
    rdzv_id = config.rdzv_id or (job.job_id if job is not None else None) or f"provenir-{run_id}"
    return Rendezvous(
        backend=config.rdzv_backend,
        endpoint=endpoint,
        rdzv_id=rdzv_id,
        nnodes=str(low) if low == high else f"{low}:{high}",
        join_timeout_s=config.rdzv_join_timeout_s,
    )
