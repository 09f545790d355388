"""Calibrating a configured judge against human labels: build it, measure it, store and audit the report.

This lives in ``rlaif`` because it reads RLAIF's judge section (:class:`~provenir.rlaif.config.JudgeSection`,
whose ``max_concurrency`` and ``cache`` it honours) and builds it with the one
:func:`~provenir.eval.judge.config.build_judge`, so the judge measured is exactly the judge a
pipeline would use; the measuring itself is :mod:`provenir.eval.judge.calibration`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenir.core.config import read_yaml_mapping
from provenir.core.errors import ConfigError
from provenir.core.store import RunStore
from provenir.eval.judge.calibration import (
    CalibrationReport,
    JudgeSpec,
    LengthUnit,
    StoredCalibration,
    calibrate,
    load_labels,
    store_calibration,
)
from provenir.rlaif.config import JudgeSection

__all__ = ["CalibrationOutcome", "calibrate_judge", "judge_section"]

#: Judge fields that only the flywheel's rubric scoring uses; they do not change a pairwise verdict.
_RUBRIC_ONLY = ("criteria",)


def judge_section(name_or_config: str) -> JudgeSection:
    """A judge named on the command line: a registered name, or a YAML file holding a judge section.

    The file may be a judge section itself (``name: anthropic``, ``model: ...``), an RLAIF config
    (its ``judge:``) or a flywheel config (its ``filter.judge:``).
    """
    path = Path(name_or_config)
    if not (path.suffix.lower() in (".yaml", ".yml", ".json") or path.is_file()):
        return JudgeSection(name=name_or_config)
    data = read_yaml_mapping(path)
    section: Any = data
    if isinstance(data.get("judge"), dict):
        section = data["judge"]
    elif isinstance(data.get("filter"), dict) and isinstance(data["filter"].get("judge"), dict):
        section = {k: v for k, v in data["filter"]["judge"].items() if k not in _RUBRIC_ONLY}
    if "name" not in section:
        raise ConfigError(f"{path}: no judge section (a mapping with 'name', or a 'judge:' holding one)")
    try:
        return JudgeSection.from_dict(dict(section))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class CalibrationOutcome:
    """The report and where it was stored."""

    report: CalibrationReport
    stored: StoredCalibration


def calibrate_judge(
    labels_path: str | os.PathLike[str],
    judge: str | JudgeSection,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    length_unit: LengthUnit = "chars",
    alpha: float = 0.05,
    actor: str | None = None,
    progress: bool | None = None,
) -> CalibrationOutcome:
    """Measure a configured judge against human labels; store the report and log ``judge_calibrated``.

    ``judge``: a registered judge name, a judge config file (see :func:`judge_section`), or a
    :class:`JudgeSection`. The report lands in the run store of ``output_dir`` (see
    :func:`~provenir.eval.judge.calibration.store_calibration`), where RLAIF and the flywheel
    look it up when their ``judge.min_kappa`` is set.
    """
    from provenir.eval.judge.cached import default_cache_dir
    from provenir.governance.audit import AuditLogger

    section = judge if isinstance(judge, JudgeSection) else judge_section(judge)
    labels = load_labels(labels_path)
    store = RunStore(output_dir)
    built = section.build(labels.references(), default_cache_dir())
    report = calibrate(
        built,
        labels,
        JudgeSpec.of(section),
        alpha=alpha,
        length_unit=length_unit,
        max_concurrency=section.max_concurrency,
        progress=progress,
    )
    stored = store_calibration(report, store)
    AuditLogger(store.audit_dir).log(
        "judge_calibrated",
        actor=actor,
        judge=section.name,
        judge_spec=report.judge.to_dict(),
        judge_spec_sha256=report.judge.sha256,
        labels_sha256=labels.sha256,
        report=str(stored.path),
        report_sha256=stored.report_sha256,
        kappa=report.kappa,
        weighted_kappa=report.weighted_kappa,
    )
    return CalibrationOutcome(report, stored)
