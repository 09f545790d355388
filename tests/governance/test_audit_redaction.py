"""Audit redaction: metric names and config keys read back unchanged; every credential key and format is gone.

Every check reads the *parsed* record back: JSON escapes newlines, so a PEM block could never
be found in the file text, and a check on the text could not fail.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provenir.core.config import RunConfig
from provenir.core.redaction import REDACTED, redact_then_truncate
from provenir.eval.rag_metrics import RAG_METRICS
from provenir.governance.audit import AuditLogger
from provenir.plugins.registry import PluginRegistry
from provenir.rlaif import RLAIFConfig
from provenir.testing.secret_samples import SECRET_TYPES, labelled_samples

# What the trainer, TRL's log history and in-training evaluation report next to the registered
# metrics (the names a run's manifest, train_log.jsonl and audit events carry).
TRAINING_METRICS = (
    "loss", "train_loss", "final_loss", "first_loss", "global_step", "train_cpu_s", "train_runtime_s",
    "grad_norm", "learning_rate", "epoch", "num_tokens", "mean_token_accuracy", "entropy",
    "train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos",
    "train_tokens_per_second", "eval_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
    "rewards/margins", "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected",
    "completion_length", "completions/mean_length", "kl", "reward", "reward_std",
    "frac_reward_zero_std", "clip_ratio",
)  # fmt: skip


def _metric_names() -> list[str]:
    registered = PluginRegistry.list_names("metric")
    assert {"exact_match", "token_f1", "bleu4", "rouge_l"} <= set(registered)
    rag = [*RAG_METRICS, *(f"{name}_embedding" for name in RAG_METRICS)]
    names = [*registered, *rag, *TRAINING_METRICS]
    return sorted({*names, *(f"eval_{n}" for n in names), *(f"eval/{n}" for n in names)})


def _key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key path of a nested dict: ``data.train_path``, and the section names themselves."""
    out: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.append(path)
            out += _key_paths(inner, path)
    return out


def _config_key_paths() -> list[str]:
    paths = _key_paths(RunConfig().model_dump(mode="json"))
    paths += _key_paths(RLAIFConfig().model_dump(mode="json"), "rlaif")
    leaves = [p.rsplit(".", 1)[-1] for p in paths]  # as a field is usually named: max_new_tokens
    return sorted({*paths, *leaves})


def _last_record(directory: Path) -> dict[str, Any]:
    lines = (directory / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_metric_name_and_config_key_reads_back_unchanged(tmp_path: Path) -> None:
    metrics = _metric_names()
    keys = _config_key_paths()
    # The lists are the real ones, with the names that a substring rule used to redact.
    assert {"token_f1", "num_tokens", "eval_token_f1", "mean_token_accuracy"} <= set(metrics)
    assert {"eval.max_new_tokens", "max_new_tokens", "manifest.signing_key_path", "data.path"} <= set(keys)
    audit = AuditLogger(tmp_path)
    config = RunConfig().model_dump(mode="json")
    numeric = {name: 0.25 + i for i, name in enumerate(metrics + keys)}
    text = {name: f"value of {name}" for name in metrics + keys}
    names = {name: name for name in metrics + keys}

    # Free-form (namespaced) events: Provenir's own events only take their schema's fields.
    audit.log("acme.evaluation_completed", **numeric)
    assert _last_record(tmp_path)["fields"] == numeric
    audit.log("acme.evaluation_completed", **text)
    assert _last_record(tmp_path)["fields"] == text
    audit.log("acme.evaluation_completed", **names)
    assert _last_record(tmp_path)["fields"] == names
    nested = {"means": {m: 0.5 for m in metrics}, "config": config, "labels": [{m: m} for m in metrics]}
    audit.log("acme.training_started", **nested)
    assert _last_record(tmp_path)["fields"] == nested
    typed = {"rows": 3, "means": {m: 0.5 for m in metrics}}
    audit.log("evaluation_completed", run_id="r", **typed)
    assert _last_record(tmp_path)["fields"] == typed
    assert AuditLogger(tmp_path).verify().ok


CREDENTIAL_KEY_FORMS = (
    "api_key", "apiKey", "api-key", "API_KEY", "ApiKey", "apikey", "x-api-key", "OPENAI_API_KEY",
    "access_key", "secret_access_key", "AWS_SECRET_ACCESS_KEY", "client_secret", "clientSecret",
    "password", "passwd", "db_password", "dbPassword", "auth_token", "X-Auth-Token", "access_token",
    "accessToken", "refresh_token", "Authorization", "private_key", "privateKey", "hf_token",
    "HF_TOKEN", "token", "secret", "github_token", "session_token", "credentials",
)  # fmt: skip


@pytest.mark.parametrize("key", CREDENTIAL_KEY_FORMS)
def test_each_credential_key_form_is_redacted(tmp_path: Path, key: str) -> None:
    # Values that match no credential format: only the key name can redact them.
    audit = AuditLogger(tmp_path)
    audit.log("config_loaded", **{key: "plain-looking-value", "note": "kept"})
    fields = _last_record(tmp_path)["fields"]
    assert fields == {key: REDACTED, "note": "kept"}
    audit.log("config_loaded", headers={key: 12345}, items=[{key: "x-value"}])
    fields = _last_record(tmp_path)["fields"]
    assert fields == {"headers": {key: REDACTED}, "items": [{key: REDACTED}]}


@pytest.mark.parametrize("secret_type", SECRET_TYPES)
def test_each_credential_format_is_redacted_in_the_parsed_record(tmp_path: Path, secret_type: str) -> None:
    samples = [s for s in labelled_samples(12, seed=7) if s.type == secret_type]
    audit = AuditLogger(tmp_path)
    for sample in samples:
        audit.log(
            "judge_failed",
            actor=f"bot {sample.text}",
            error=f"upstream said: {sample.text}",
            nested={"attempts": [{"message": sample.text}]},
            **{sample.text: 1},
        )
        record = _last_record(tmp_path)
        stored = _strings(record)
        secret = sample.secret
        windows = {secret[i : i + 8] for i in range(len(secret) - 7)}
        leaked = sorted(w for w in windows for s in stored if w in s)
        assert not leaked, (sample.text, leaked[:3])
        assert "[REDACTED:" in record["fields"]["error"]
    assert AuditLogger(tmp_path).verify().ok


def test_redaction_comes_before_truncation() -> None:
    key = "sk-ant-api03-" + "Zq7" * 31 + "xAA"
    for cut in range(len("error: ") + 1, len("error: ") + len(key)):
        text = "error: " + key + " (retry later)"
        kept = redact_then_truncate(text, cut)
        assert len(kept) <= cut
        assert not any(key[i : i + 8] in kept for i in range(len(key) - 7)), (cut, kept)


class _FailingBackend:
    """A backend whose failure text quotes a key right across the manifest's 2000-character cut."""

    loads_model = False

    def __init__(self, key: str) -> None:
        self.key = key

    def fit(self, config: Any, dataset: Any, run_dir: Path) -> Any:
        raise RuntimeError("upstream said: " + "x" * 1940 + f" key={self.key} rejected")


def test_a_failed_runs_error_is_redacted_before_it_is_cut(tmp_path: Path) -> None:
    from provenir.core.errors import BackendError
    from provenir.core.store import RunStore
    from provenir.train.runner import RunOptions, train

    key = "sk-proj-" + "Tq4_Wz8-" * 12 + "T3BlbkFJ" + "Hc2Vd5Nf9Kg3" * 3
    root = tmp_path / "artifacts"
    config = RunConfig.from_dict({"backend": "stub", "output_dir": str(root)})
    start = len("RuntimeError: upstream said: ") + 1940 + len(" key=")
    assert start < 2000 < start + len(key)  # the old cut went through the key
    with pytest.raises(BackendError):
        train(config, RunOptions(backend=_FailingBackend(key)))
    store = RunStore(root)
    (run_id,) = store.run_ids()
    manifest = store.load(run_id)
    failed = _last_record(store.audit_dir)
    assert manifest.status == "failed" and failed["event"] == "training_failed"
    stored = [manifest.error or "", *_strings(failed)]
    assert "[REDACTED:openai_key]" in stored[0] and len(stored[0]) <= 2000
    assert not any(key[i : i + 8] in s for s in stored for i in range(len(key) - 7))
