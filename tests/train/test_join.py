"""Joining a run from another node: found by folder or rendezvous id, checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from provenir.core.config import RunConfig
from provenir.core.errors import BackendError, ManifestTamperedError, ReproducibilityError
from provenir.core.inputs import RowsPin, RunInputs
from provenir.core.manifest import RunManifest, new_run_id
from provenir.core.store import RunStore
from provenir.train.distributed import plan_launch, write_launch
from provenir.train.join import join_command, main, runs_with_rdzv_id, wait_for_run
from provenir.train.rendezvous import resolve_rendezvous

ROWS = RowsPin(path="data/train.jsonl", sha256="a" * 64, count=16)
EVAL_ROWS = RowsPin(path="data/eval.jsonl", sha256="b" * 64, count=4)


def started_run(
    root: Path, distributed: dict[str, object], status: str = "running"
) -> tuple[Path, RunConfig]:
    """What node 0 leaves in a shared artifacts folder before its torchrun starts."""
    config = RunConfig.from_dict(
        {
            "device": "cpu",
            "output_dir": str(root),
            "distributed": {"strategy": "ddp", "num_processes": 1, **distributed},
        }
    )
    store = RunStore(root)
    run_id = new_run_id()
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True)
    config.to_yaml(run_dir / "config.yaml")
    manifest = RunManifest(
        run_id=run_id,
        name=config.name,
        status=status,  # type: ignore[arg-type]
        backend=config.backend,
        algorithm=config.algorithm,
        config_hash=config.config_hash(),
        dataset_hash="d" * 64,
        seed=config.seed,
        config=config.model_dump(mode="json"),
        inputs=RunInputs(training_rows=ROWS, eval_rows=EVAL_ROWS),
    )
    manifest.seal().save(store.manifest_path(run_id))
    plan = plan_launch(config, gpus=0, environ={})
    write_launch(run_dir, config, plan, resolve_rendezvous(config.distributed, run_id, None))
    return run_dir, config


MULTI = {"nnodes": 2, "rdzv_endpoint": "head:29400", "max_restarts": 2}


def test_the_join_command_uses_the_runs_rendezvous_and_its_manifests_rows(tmp_path: Path) -> None:
    run_dir, _ = started_run(tmp_path, MULTI)
    cmd = join_command(run_dir, environ={})
    assert cmd[3:10] == [
        "--nproc-per-node=1",
        "--nnodes=2",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=head:29400",
        f"--rdzv-id=provenir-{run_dir.name}",
        "--rdzv-conf=join_timeout=600",
        "--max-restarts=2",
    ]
    assert cmd[cmd.index("--run-dir") + 1] == str(run_dir)
    assert cmd[cmd.index("--train-rows") + 1] == ROWS.model_dump_json()
    assert cmd[cmd.index("--eval-rows") + 1] == EVAL_ROWS.model_dump_json()


def test_a_run_is_found_by_its_rendezvous_id(tmp_path: Path) -> None:
    run_dir, _ = started_run(tmp_path, {**MULTI, "rdzv_id": "slurm-812"})
    started_run(tmp_path, {**MULTI, "rdzv_id": "slurm-812"}, status="completed")  # an earlier run of the job
    assert runs_with_rdzv_id(tmp_path, "slurm-812") == [run_dir]
    assert wait_for_run(output_dir=tmp_path, rdzv_id="slurm-812") == run_dir
    with pytest.raises(BackendError, match="no launched run found at .* with rendezvous id 'other' after 0s"):
        wait_for_run(output_dir=tmp_path, rdzv_id="other")
    started_run(tmp_path, {**MULTI, "rdzv_id": "slurm-812"})
    with pytest.raises(BackendError, match="several running runs use rendezvous id 'slurm-812'"):
        wait_for_run(output_dir=tmp_path, rdzv_id="slurm-812")


def test_nothing_starts_when_the_run_cannot_be_joined_or_trusted(tmp_path: Path) -> None:
    one_node, _ = started_run(tmp_path / "a", {})
    with pytest.raises(BackendError, match="trains on one node: there is nothing to join"):
        join_command(one_node, environ={})
    done, _ = started_run(tmp_path / "b", MULTI, status="completed")
    with pytest.raises(BackendError, match="is completed: there is nothing to join"):
        join_command(done, environ={})
    edited, config = started_run(tmp_path / "c", MULTI)
    config.with_overrides(["learning_rate=0.1"]).to_yaml(edited / "config.yaml")
    with pytest.raises(
        ReproducibilityError, match="config.yaml differs from the config its manifest records"
    ):
        join_command(edited, environ={})
    tampered, _ = started_run(tmp_path / "d", MULTI)
    manifest_path = RunStore(tmp_path / "d").manifest_path(tampered.name)
    text = manifest_path.read_text()
    manifest_path.write_text(text.replace('"seed": 42', '"seed": 43'))
    assert manifest_path.read_text() != text
    with pytest.raises(ManifestTamperedError):
        join_command(tampered, environ={})


def test_the_entry_point_reports_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--output-dir", str(tmp_path), "--rdzv-id", "nope", "--wait", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no launched run found") and err.count("\n") == 1
