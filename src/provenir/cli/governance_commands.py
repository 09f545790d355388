"""``provenir audit`` (list, ``verify``, ``repair``, ``prove``, ``consistency``, ``checkpoint``),
``provenir scan`` and ``provenir model-card``.

Each command parses, calls one governance function and prints; errors are Provenir errors that
:mod:`provenir.cli.main` turns into one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provenir.cli.options import ExecutorOption, OutputDir, RayAddress, RayWorkers

#: Deprecated spelling: the audit folder itself (``--output-dir`` names the artifacts root above it).
LegacyAuditDir = Annotated[
    Path | None,
    typer.Option("--dir", hidden=True, help="Deprecated: the audit folder itself; use --output-dir."),
]

AUDIT_HELP = (
    "List the audit log (newest first); `verify` checks its hash chain, Merkle root and "
    "every sealed tree head, `repair` fixes a torn last line, `prove` and `consistency` print "
    "RFC 9162 proofs, `checkpoint` the latest signed tree head."
)


def _audit_dir(output_dir: Path | None, legacy_dir: Path | None, ctx: typer.Context | None = None) -> Path:
    """:func:`~provenir.governance.audit_folder.find_audit_folder` of the options, counting those
    given before a sub-command (``provenir audit --output-dir X verify``)."""
    from provenir.governance.audit_folder import find_audit_folder

    if ctx is not None and isinstance(ctx.obj, tuple) and output_dir is None and legacy_dir is None:
        output_dir, legacy_dir = ctx.obj
    return find_audit_folder(output_dir, legacy_dir)


def audit_list(
    ctx: typer.Context,
    output_dir: OutputDir = None,
    directory: LegacyAuditDir = None,
    run_id: Annotated[str | None, typer.Option(help="Only this run.")] = None,
    event: Annotated[str | None, typer.Option(help="Only this event name.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
    since: Annotated[str | None, typer.Option(help="From this ISO-8601 time (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO-8601 time.")] = None,
    limit: Annotated[int, typer.Option(help="Records per page (1-10000).")] = 50,
    cursor: Annotated[int | None, typer.Option(help="Continue from a previous page's next cursor.")] = None,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Oldest records first.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """List audit events, filtered and paginated without reading the whole log."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = (output_dir, directory)  # for `provenir audit --output-dir X verify`
        return
    from provenir.governance.audit import AuditReader

    page = AuditReader(_audit_dir(output_dir, directory)).query(
        run_id=run_id,
        event=event,
        actor=actor,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
        order="asc" if oldest_first else "desc",
    )
    if as_json:
        typer.echo(json.dumps(page.to_dict(), sort_keys=True))
        return
    for r in page.records:
        fields = json.dumps(r.fields, sort_keys=True, ensure_ascii=False)
        typer.echo(f"{r.seq:>7}  {r.timestamp}  {r.event:<24} {r.actor:<16} {r.run_id or '-':<36}  {fields}")
    shown = f"{len(page.records)} record(s) of {page.total}"
    more = f"; next page: --cursor {page.next_cursor}" if page.next_cursor is not None else ""
    typer.echo(f"-- {shown}{more}", err=True)


def audit_verify(
    ctx: typer.Context,
    output_dir: OutputDir = None,
    directory: LegacyAuditDir = None,
    head: Annotated[
        str | None,
        typer.Option(help="Anchored head SEQ:HASH recorded elsewhere; detects cut-off records."),
    ] = None,
) -> None:
    """Check the hash chain, the Merkle root and every tree head sealed in the checkpoints file
    and in the store's manifests; exit 2 with the problems if records were edited, removed or
    rewritten, or the last line is torn."""
    from provenir.core.errors import AuditTamperedError
    from provenir.governance.audit import LOG_NAME
    from provenir.governance.audit_folder import check_audit_folder, parse_anchored_head

    expected = parse_anchored_head(head) if head is not None else None
    folder = _audit_dir(output_dir, directory, ctx)
    result = check_audit_folder(folder, expected_head=expected)
    for problem in result.problems:
        typer.echo(f"  - {problem}", err=True)
    if not result.ok:
        raise AuditTamperedError(f"{folder / LOG_NAME}: {result.summary()}")
    typer.echo(
        f"ok: {result.records} records, chain intact; head {result.head_seq}:{result.head_hash}; "
        f"Merkle root {result.tree_root}; {result.tree_heads_checked} sealed tree head(s) match"
    )


def audit_repair(ctx: typer.Context, output_dir: OutputDir = None, directory: LegacyAuditDir = None) -> None:
    """Complete or cut off a torn last line (saved aside first); never touches good records."""
    from provenir.governance.audit import AuditLogger

    result = AuditLogger(_audit_dir(output_dir, directory, ctx)).repair()
    messages = {
        "none": "nothing to repair: the last line is complete",
        "completed_newline": "the last record was intact but lacked its newline: completed",
        "truncated": f"removed a torn last line ({result.removed_bytes} bytes, saved to {result.saved_to})",
    }
    typer.echo(messages[result.action])


def audit_prove(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The record's seq (1 is the first record).")],
    size: Annotated[
        int | None, typer.Option(help="Prove against the tree of the first SIZE records (default: all).")
    ] = None,
    output_dir: OutputDir = None,
    directory: LegacyAuditDir = None,
) -> None:
    """Print the RFC 9162 inclusion proof of record SEQ as JSON (hex hashes).

    Check its root against a tree head you trust (a manifest's audit_checkpoint).
    """
    from provenir.governance.audit import AuditReader

    proof = AuditReader(_audit_dir(output_dir, directory, ctx)).prove(seq, size)
    typer.echo(json.dumps(proof.to_dict(), sort_keys=True))


def audit_consistency(
    ctx: typer.Context,
    old: Annotated[int, typer.Argument(help="The earlier tree size.")],
    new: Annotated[int, typer.Argument(help="The later tree size.")],
    output_dir: OutputDir = None,
    directory: LegacyAuditDir = None,
) -> None:
    """Print the RFC 9162 consistency proof that the tree of NEW records extends that of OLD (JSON)."""
    from provenir.governance.audit import AuditReader

    proof = AuditReader(_audit_dir(output_dir, directory, ctx)).consistency(old, new)
    typer.echo(json.dumps(proof.to_dict(), sort_keys=True))


def audit_checkpoint(
    ctx: typer.Context,
    write: Annotated[
        bool, typer.Option("--write", help="First record a new tree head over the whole log.")
    ] = False,
    key: Annotated[
        Path | None,
        typer.Option(help="With --write: Ed25519 key to sign it (default $PROVENIR_SIGNING_KEY)."),
    ] = None,
    note: Annotated[
        bool, typer.Option("--note", help="Print the head as a C2SP signed note instead of JSON.")
    ] = False,
    output_dir: OutputDir = None,
    directory: LegacyAuditDir = None,
) -> None:
    """Print the latest tree head (size, Merkle root, time, signature) as JSON."""
    from provenir.governance.audit_folder import latest_tree_head

    latest = latest_tree_head(_audit_dir(output_dir, directory, ctx), write=write, key=key)
    if note:
        typer.echo(latest.head.to_note(), nl=False)
        return
    data = {**latest.head.model_dump(mode="json"), "signed": latest.head.signed, "run_id": latest.run_id}
    typer.echo(json.dumps(data, sort_keys=True))


def scan_command(
    dataset: Annotated[str, typer.Argument(help="Dataset file (.jsonl, .json or .csv).")],
    mask: Annotated[
        Path | None, typer.Option(help="Write a masked copy (PII and secrets -> <TYPE_n>) to this file.")
    ] = None,
    pii: Annotated[bool, typer.Option(help="Scan for PII.")] = True,
    secrets: Annotated[bool, typer.Option(help="Scan for secrets.")] = True,
    region: Annotated[str, typer.Option(help="Country for phone numbers written without +.")] = "US",
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON summary.")] = False,
    audit_dir: Annotated[Path | None, typer.Option(help="Also record the scan in this audit folder.")] = None,
    findings: Annotated[
        Path | None, typer.Option(help="Write every finding (no matched text) to this JSONL file.")
    ] = None,
    executor: ExecutorOption = None,
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
) -> None:
    """Scan DATASET for PII and secrets; optionally write a masked copy."""
    from provenir.core.extras import check_extras
    from provenir.governance.scanners import SCAN_FILE_FINDINGS
    from provenir.scale.executor import executor_config, open_executor
    from provenir.scale.scan import scan_file

    check_extras("governance")
    config = executor_config(executor=executor, address=ray_address, workers=ray_workers)
    with open_executor(config) as runner:
        summary = scan_file(
            dataset,
            executor=runner,
            mask=mask,
            pii=pii,
            secrets=secrets,
            default_region=region,
            audit_dir=audit_dir,
            findings=findings,
        )
        record = runner.record()
    if as_json:
        body = summary.to_dict(max_findings=SCAN_FILE_FINDINGS)
        if record.executor != "local":
            body["executor"] = record.to_dict()
        typer.echo(json.dumps(body, sort_keys=True))
        return
    typer.echo(f"rows scanned: {summary.rows_scanned}")
    if summary.pii is not None:
        found = {k: v for k, v in summary.pii.counts.items() if v}
        typer.echo(f"PII: {', '.join(f'{k}={v}' for k, v in found.items()) or 'none found'}")
    if summary.secrets is not None:
        found = summary.secrets.counts
        typer.echo(f"secrets: {', '.join(f'{k}={v}' for k, v in found.items()) or 'none found'}")
    if mask is not None:
        typer.echo(f"masked copy written to {mask}")
    if findings is not None:
        typer.echo(f"findings written to {findings}")
    if record.executor != "local":
        typer.echo(
            f"executor: ray {record.ray_version}, {record.workers} workers, retries {record.retries or 0}"
        )


def model_card_command(
    manifest: Annotated[
        str,
        typer.Option(help="Run: an id, a unique prefix of one, 'latest', or a manifest JSON file."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Card file (.md) or folder; default <output_dir>/runs/<run_id>/MODEL_CARD.md."),
    ] = None,
    eval_file: Annotated[
        Path | None,
        typer.Option(
            "--eval", help="eval.json to report (default: the run's eval.json, else the manifest's eval)."
        ),
    ] = None,
    license: Annotated[str | None, typer.Option(help="License id for the card metadata.")] = None,
    allow_failed: Annotated[
        bool,
        typer.Option("--allow-failed", help="Write a card for a run that did not complete (it says so)."),
    ] = False,
    no_audit: Annotated[
        bool, typer.Option("--no-audit", help="Do not record the event in <output_dir>/audit.")
    ] = False,
    output_dir: OutputDir = None,
) -> None:
    """Generate a Hugging Face model card from a run manifest."""
    from provenir.core.extras import check_extras

    check_extras("governance")
    from provenir.governance.model_card import write_model_card

    written = write_model_card(
        manifest,
        output_dir=output_dir,
        out=out,
        eval_file=eval_file,
        license=license,
        allow_failed=allow_failed,
        audit=not no_audit,
    )
    typer.echo(f"model card written to {written}")


def register(app: typer.Typer) -> None:
    """Attach ``audit``, ``scan`` and ``model-card`` to ``app``."""
    audit_app = typer.Typer(help=AUDIT_HELP, no_args_is_help=False)
    audit_app.callback(invoke_without_command=True)(audit_list)
    audit_app.command("verify")(audit_verify)
    audit_app.command("repair")(audit_repair)
    audit_app.command("prove")(audit_prove)
    audit_app.command("consistency")(audit_consistency)
    audit_app.command("checkpoint")(audit_checkpoint)
    app.add_typer(audit_app, name="audit")
    app.command("scan")(scan_command)
    app.command("model-card")(model_card_command)
