"""``provenir templates list|render`` and ``provenir data inspect|contamination``.

Each command parses, calls one library function and prints; bad input raises a
:class:`~provenir.core.errors.DataError` that ``provenir.cli.main`` turns into one line and exit 2.
Output is printed without Rich markup because data and templates contain ``[INST]``-style brackets.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from provenir.cli.console import make_console
from provenir.cli.options import ExecutorOption, JsonFlag, RayAddress, RayWorkers

# markup=False: a template's "[/INST]" or a dataset's "[1]" must print as written, not as Rich tags.
console = make_console(markup=False, highlight=False)

EXIT_CONTAMINATED = 1


def templates_list(as_json: JsonFlag = False) -> None:
    """Registered prompt templates, with what each is for."""
    from provenir.data.templates import TEMPLATE_REGISTRY

    rows = [(name, _first_doc_line(TEMPLATE_REGISTRY.get(name))) for name in TEMPLATE_REGISTRY.list_names()]
    rows.append(("tokenizer", "the model tokenizer's own chat_template (data.template: tokenizer)"))
    if as_json:
        typer.echo(json.dumps([{"name": n, "format": f} for n, f in rows], ensure_ascii=False))
        return
    table = Table("name", "format")
    for name, fmt in rows:
        table.add_row(name, fmt)
    console.print(table)


def templates_render(
    name: Annotated[str, typer.Argument(help="Template name (see `provenir templates list`).")],
    prompt: Annotated[str, typer.Option("--prompt", help="The user prompt.")],
    system: Annotated[str | None, typer.Option("--system", help="Optional system prompt.")] = None,
    response: Annotated[
        str | None,
        typer.Option("--response", help="Optional answer; without it the text ends where generation starts."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON string (shows newlines as \\n).")
    ] = False,
) -> None:
    """Render one record exactly as training would see it."""
    from provenir.data.templates import TEMPLATE_REGISTRY

    record: dict[str, Any] = {"prompt": prompt, "system": system, "response": response}
    text = TEMPLATE_REGISTRY.format(name, record)
    if as_json:
        typer.echo(json.dumps({"template": name, "text": text}, ensure_ascii=False))
    else:
        typer.echo(text, nl=not text.endswith("\n"))


def data_inspect(
    path: Annotated[str, typer.Argument(help="File, folder, hub id or builtin:<name>.")],
    sample: Annotated[int, typer.Option("--sample", min=0, help="Rows to show.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rows, columns, detected schema (validated row by row), dataset hash and a sample."""
    from provenir.data.loading import inspect_dataset

    info = inspect_dataset(path, sample=sample)
    if as_json:
        typer.echo(json.dumps(info, ensure_ascii=False, sort_keys=True))
        return
    console.print(f"path     {info['path']}")
    console.print(f"rows     {info['rows']}" + (f" in {info['files']} files" if info["files"] > 1 else ""))
    console.print(f"columns  {', '.join(info['columns'])}")
    console.print(f"schema   {info['schema']}")
    console.print(f"sha256   {info['dataset_hash']}")
    for i, row in enumerate(info["sample"], start=1):
        console.print(f"row {i}    {json.dumps(row, ensure_ascii=False)}")


def data_contamination(
    train: Annotated[str, typer.Argument(help="Training data (file, folder, hub id or builtin:<name>).")],
    eval_data: Annotated[str, typer.Argument(metavar="EVAL", help="Evaluation data.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Words per n-gram.")] = 13,
    fields: Annotated[
        str | None,
        typer.Option("--fields", help="Comma-separated columns to compare (default: all text columns)."),
    ] = None,
    near_dup: Annotated[
        float | None,
        typer.Option(
            "--near-dup",
            help="Also find near-duplicates: word-set Jaccard at least this (between 0 and 1, e.g. 0.8), "
            "by MinHash LSH; needs the dedup extra.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Contaminated eval rows to list.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 when any eval row is contaminated.")
    ] = False,
    executor: ExecutorOption = None,
    ray_address: RayAddress = None,
    ray_workers: RayWorkers = None,
) -> None:
    """Eval rows found in the training data: exact copies, same prompts, shared n-grams, near-duplicates."""
    from provenir.data.loading import read_rows
    from provenir.scale.contamination import find_contamination
    from provenir.scale.executor import executor_config, open_executor

    columns = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    config = executor_config(executor=executor, address=ray_address, workers=ray_workers)
    with open_executor(config) as runner:
        report = find_contamination(
            read_rows(train), read_rows(eval_data), executor=runner, n=n, fields=columns, near_dup=near_dup
        )
        record = runner.record()
    if as_json:
        body = report.to_dict()
        if record.executor != "local":
            body["executor"] = record.to_dict()
        typer.echo(json.dumps(body, sort_keys=True))
    else:
        console.print(report.summary())
        if report.items and limit:
            table = Table("eval row", "found by", "first train row", "shared n-grams", "similarity")
            for item in report.items[:limit]:
                table.add_row(
                    str(item.eval_row),
                    ", ".join(item.methods),
                    str(item.first_train_row),
                    f"{item.overlap} of {item.total}",
                    "" if item.similarity is None else f"{item.similarity:.2f}",
                )
            console.print(table)
            if len(report.items) > limit:
                console.print(f"... and {len(report.items) - limit} more (--limit, --json)")
    if strict and report.items:
        raise typer.Exit(EXIT_CONTAMINATED)


def register(app: typer.Typer) -> None:
    """Attach the ``templates`` and ``data`` command groups to ``app``."""
    templates_app = typer.Typer(help="Prompt templates: list and render.", no_args_is_help=True)
    data_app = typer.Typer(help="Datasets: inspect, check eval contamination.", no_args_is_help=True)
    app.add_typer(templates_app, name="templates")
    app.add_typer(data_app, name="data")
    templates_app.command("list")(templates_list)
    templates_app.command("render")(templates_render)
    data_app.command("inspect")(data_inspect)
    data_app.command("contamination")(data_contamination)


def _first_doc_line(obj: Any) -> str:
    if isinstance(getattr(obj, "description", None), str):
        return obj.description
    doc = (type(obj).__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(":") if doc else type(obj).__name__
