"""Mutation bench: do the tests notice when an integrity check stops checking?

A small AST mutator makes one change at a time to a module of the trust code (a flipped
comparison, a negated condition, a deleted ``raise``, ``return X`` -> ``return None``, ``and`` <->
``or``, a changed number, ``True`` <-> ``False``, an entry dropped from a list of names or
patterns, a reported problem dropped) and runs that module's tests against it. A mutant the
tests pass with *survived*: a check could break that way unnoticed.

    python bench/mutation.py                       # every group (make mutation)
    python bench/mutation.py --module redaction    # a group, or modules whose path contains the text
    python bench/mutation.py --list --module core/dsse.py
    python bench/mutation.py --jobs 2 --report mutation.json

How a run works, and why it is quick enough to run by hand:

1. ``src`` is copied into one scratch folder per job, first on ``PYTHONPATH``: the worktree's
   files are never modified, and subprocesses the tests start import the mutated copy too.
2. The group's tests run once unmutated under a line tracer (this file is also the pytest
   plugin ``-p mutation``), giving which tests execute each line, each test's duration, and the
   lines that run while a module is imported. A failing test here stops the bench.
3. Each mutant rewrites one module in a scratch copy and runs
   ``pytest -x -q -p no:cacheprovider`` on the tests that executed the mutated lines (fastest
   first), with a timeout. A change to import-time code (constants, defaults, tables), or on a
   line no test executes in this process (a test may reach it through a subprocess), runs all of
   the module's tests instead, and so does a mutant the selected tests let through before it is
   called a survivor. Exit status 0: survived; a failing test: killed; past the timeout: killed
   by timeout (counted as detected).

Equivalent mutants (no test could tell them apart from the original: a buffer size, an fsync)
are listed, with the reason, in ``bench/mutation_allowlist.txt`` and left out of the score.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
ALLOWLIST = Path(__file__).resolve().parent / "mutation_allowlist.txt"

# -- what is mutated, and which tests judge it ---------------------------------------------------

#: group -> {module path under src: test files (relative to the repository root)}. A module
#: whose file does not exist is skipped, so the table can name modules a branch is adding.
GROUPS: dict[str, dict[str, list[str]]] = {
    "manifest": {
        "provenir/core/manifest.py": [
            "tests/core/test_manifest.py",
            "tests/core/test_manifest_verify.py",
            "tests/core/test_signers.py",
            "tests/core/test_store.py",
        ],
        "provenir/core/signers.py": [
            "tests/core/test_signers.py",
            "tests/core/test_manifest_verify.py",
            "tests/core/test_manifest.py",
            "tests/core/test_store.py",
        ],
        "provenir/core/confined.py": [
            "tests/core/test_confined.py",
            "tests/core/test_signers.py",
            "tests/core/test_store.py",
            "tests/core/test_manifest_verify.py",
        ],
        "provenir/core/hashing.py": ["tests/core/test_hashing.py"],
        "provenir/core/inputs.py": ["tests/core/test_inputs.py"],
        "provenir/core/store.py": [
            "tests/core/test_store.py",
            "tests/core/test_manifest_verify.py",
            "tests/core/test_signers.py",
        ],
    },
    "attestation": {
        "provenir/core/dsse.py": ["tests/core/test_dsse.py", "tests/governance/test_attestation.py"],
        "provenir/core/signing_keys.py": [
            "tests/core/test_signing_keys.py",
            "tests/core/test_dsse.py",
            "tests/governance/test_attestation.py",
            "tests/governance/test_model_signing.py",
        ],
        "provenir/governance/attestation.py": [
            "tests/governance/test_attestation.py",
            "tests/governance/test_attestation_checks.py",
        ],
        "provenir/governance/model_signing.py": [
            "tests/governance/test_model_signing.py",
            "tests/governance/test_model_signing_checks.py",
        ],
    },
    "audit": {
        module: [
            "tests/governance/test_audit.py",
            "tests/governance/test_audit_recovery.py",
            "tests/governance/test_audit_merkle.py",
            "tests/governance/test_merkle.py",
            "tests/governance/test_audit_proof_cli.py",
            "tests/governance/test_audit_contract.py",
            "tests/governance/test_audit_check.py",
            "tests/core/test_tree_head.py",
            "tests/governance/test_audit_index.py",
            # The reader's paging, filters and index, the CLI and the API over the log are the
            # audit module's users: their tests are its tests too.
            "tests/governance/test_audit_redaction.py",
            "tests/governance/test_cli.py",
            "tests/api/test_api_audit.py",
            "tests/api/test_api_audit_proofs.py",
            "tests/api/test_api_settings_index.py",
            "tests/train/test_runner_audit.py",
        ]
        for module in (
            "provenir/governance/audit.py",
            "provenir/governance/audit_check.py",
            "provenir/governance/audit_index.py",
            "provenir/governance/merkle.py",
            "provenir/core/tree_head.py",
        )
    },
    "redaction": {
        "provenir/core/redaction.py": [
            "tests/core/test_redaction.py",
            "tests/governance/test_audit_redaction.py",
        ],
        "provenir/core/credentials.py": [
            "tests/core/test_redaction.py",
            "tests/governance/test_credentials.py",
            "tests/governance/test_audit_redaction.py",
        ],
    },
    "gate": {
        "provenir/eval/regression.py": ["tests/eval/test_regression.py"],
        "provenir/eval/power.py": ["tests/eval/test_power.py", "tests/eval/test_regression.py"],
        "provenir/eval/clustered.py": ["tests/eval/test_clustered.py", "tests/eval/test_regression.py"],
    },
    "intervals": {
        "provenir/eval/wilson.py": ["tests/eval/test_intervals.py"],
        "provenir/eval/bootstrap.py": ["tests/eval/test_intervals.py"],
    },
}

#: Tests too slow to run for every mutant (each still runs in the full suite). Prefixes of node ids.
SLOW_TESTS = (
    "tests/governance/test_audit.py::test_eight_processes_two_thousand_appends_each_form_one_chain",
    "tests/governance/test_attestation.py::test_provenir_eval_and_its_gate_re_attest_a_real_run",
)

#: Plugins no test here needs; not loading them saves about a second per mutant.
PYTEST_ARGS = [
    "-x",
    "-q",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:schemathesis",
    "-p",
    "no:anyio",
    "--no-header",
]

# -- mutants ---------------------------------------------------------------------------------------

_FLIPPED_COMPARISON: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    """One change to one module: ``module`` (path under src), its ``index`` among the module's
    mutants (what :func:`mutate` takes), the original lines it touches, and a readable change."""

    module: str
    index: int
    line: int
    end_line: int
    operator: str
    change: str

    @property
    def where(self) -> str:
        return f"src/{self.module}:{self.line}"


@dataclass
class _Site:
    operator: str
    node: ast.AST
    replace: Callable[[ast.AST], ast.AST]  # returns the node to put in the original's place
    setter: Callable[[ast.AST], None]


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


class _SiteFinder:
    """Walks a module in a fixed order and lists every place a mutation applies."""

    def __init__(self) -> None:
        self.sites: list[_Site] = []

    def run(self, tree: ast.Module) -> list[_Site]:
        self._body(tree, "body", module_level=True)
        return self.sites

    # -- traversal ---------------------------------------------------------------------------

    def _set(self, parent: ast.AST, name: str, index: int | None) -> Callable[[ast.AST], None]:
        def setter(new: ast.AST) -> None:
            if index is None:
                setattr(parent, name, new)
            else:
                getattr(parent, name)[index] = new

        return setter

    def _body(self, parent: ast.AST, name: str, *, module_level: bool = False) -> None:
        for i, stmt in enumerate(getattr(parent, name)):
            self._stmt(stmt, parent, name, i, module_level)

    def _stmt(self, stmt: ast.stmt, parent: ast.AST, name: str, i: int, module_level: bool) -> None:
        setter = self._set(parent, name, i)
        if _is_docstring(stmt):
            return
        if isinstance(stmt, ast.If) and _is_type_checking(stmt):
            return  # imports for type checkers only: no behaviour to mutate
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets
        ):
            return
        if isinstance(stmt, ast.Raise):
            self.sites.append(_Site("raise->pass", stmt, lambda n: ast.Pass(), setter))
        elif (
            isinstance(stmt, ast.Return)
            and stmt.value is not None
            and not (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
        ):
            self.sites.append(
                _Site("return->None", stmt, lambda n: ast.Return(value=ast.Constant(None)), setter)
            )
        elif isinstance(stmt, ast.Expr) and _is_problem_report(stmt.value):
            self.sites.append(_Site("drop-problem", stmt, lambda n: ast.Pass(), setter))
        if isinstance(stmt, ast.If | ast.While) and _negatable(stmt.test):
            self.sites.append(_Site("negate-condition", stmt.test, _negate, self._set(stmt, "test", None)))
        self._children(stmt, module_level, skip=("returns", "annotation", "type_comment", "decorator_list"))

    def _children(self, node: ast.AST, module_level: bool, skip: tuple[str, ...] = ()) -> None:
        """Walk ``node``'s fields (but ``skip``): statements as statements of a body (never module
        level), expressions as mutable places, anything else (arguments, handlers...) as such."""
        for fld, value in ast.iter_fields(node):
            if fld in skip:
                continue
            items = value if isinstance(value, list) else [value]
            for j, item in enumerate(items):
                index = j if isinstance(value, list) else None
                if isinstance(item, ast.stmt):
                    self._stmt(item, node, fld, j, False)
                elif isinstance(item, ast.expr):
                    self._expr(item, self._set(node, fld, index), module_level)
                elif isinstance(item, ast.AST):
                    self._other(item, module_level)

    def _other(self, node: ast.AST, module_level: bool) -> None:
        """Non-expression children: arguments (defaults), handlers, keywords, comprehensions..."""
        if isinstance(node, ast.excepthandler):
            self._body(node, "body")
            return
        self._children(node, module_level, skip=("annotation", "returns", "type_comment"))
        if isinstance(node, ast.comprehension):
            for j, cond in enumerate(node.ifs):
                if _negatable(cond):
                    self.sites.append(_Site("negate-condition", cond, _negate, self._set(node, "ifs", j)))

    def _expr(self, node: ast.expr, setter: Callable[[ast.AST], None], module_level: bool) -> None:
        if isinstance(node, ast.Subscript) and _is_typing_subscript(node):
            return  # Literal[...], dict[str, Any]: types, not values
        if isinstance(node, ast.JoinedStr):
            return  # message text: numbers in it only format
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                flipped = _FLIPPED_COMPARISON.get(type(op))
                if flipped is not None:
                    self.sites.append(_Site("flip-comparison", node, _flip(k, flipped), setter))
        elif isinstance(node, ast.BoolOp):
            self.sites.append(_Site("swap-and-or", node, _swap_boolop, setter))
        elif isinstance(node, ast.IfExp) and _negatable(node.test):
            self.sites.append(_Site("negate-condition", node.test, _negate, self._set(node, "test", None)))
        elif isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                self.sites.append(_Site("swap-bool", node, lambda n: ast.Constant(not n.value), setter))  # type: ignore[attr-defined]
            elif isinstance(value, int | float) and not isinstance(value, complex):
                self.sites.append(_Site("change-number", node, _change_number, setter))
        elif isinstance(node, ast.Set) or (
            isinstance(node, ast.Tuple | ast.List) and isinstance(node.ctx, ast.Load)
        ):
            elts = node.elts  # type: ignore[attr-defined]
            strings = all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in elts)
            table = module_level and all(isinstance(e, ast.Call) for e in elts)
            if len(elts) >= 2 and (strings or table):
                for k in range(len(elts)):
                    self.sites.append(_Site("drop-entry", node, _drop(k), setter))
        self._children(node, module_level)


def _is_typing_subscript(node: ast.Subscript) -> bool:
    base = node.value
    name = base.id if isinstance(base, ast.Name) else base.attr if isinstance(base, ast.Attribute) else ""
    return name in {"Literal", "dict", "list", "tuple", "set", "frozenset", "Mapping", "Sequence", "Callable",
                    "Iterable", "Iterator", "type", "Optional", "Union", "Any"}  # fmt: skip


def _is_problem_report(node: ast.expr) -> bool:
    """``problems.append(...)`` / ``result.problems.append(...)`` / ``problem(...)``: a finding reported."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "problem"
    if isinstance(func, ast.Attribute) and func.attr == "append":
        target = func.value
        name = (
            target.id
            if isinstance(target, ast.Name)
            else target.attr
            if isinstance(target, ast.Attribute)
            else ""
        )
        return "problem" in name
    return False


def _negatable(test: ast.expr) -> bool:
    """False for a single comparison: negating it is the flipped comparison, already a mutant."""
    return not (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _FLIPPED_COMPARISON
    )


def _negate(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return node.operand
    return ast.UnaryOp(op=ast.Not(), operand=node)


def _flip(k: int, flipped: type[ast.cmpop]) -> Callable[[ast.AST], ast.AST]:
    def replace(node: ast.AST) -> ast.AST:
        assert isinstance(node, ast.Compare)
        ops = list(node.ops)
        ops[k] = flipped()
        return ast.Compare(left=node.left, ops=ops, comparators=node.comparators)

    return replace


def _swap_boolop(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.BoolOp)
    return ast.BoolOp(op=ast.Or() if isinstance(node.op, ast.And) else ast.And(), values=node.values)


def _change_number(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.Constant)
    value = node.value
    if value == 0:
        return ast.Constant(type(value)(1))
    if value == 1:
        return ast.Constant(type(value)(0))
    return ast.Constant(value + 1)


def _drop(k: int) -> Callable[[ast.AST], ast.AST]:
    def replace(node: ast.AST) -> ast.AST:
        elts = list(node.elts)  # type: ignore[attr-defined]
        del elts[k]
        return type(node)(elts=elts, **({"ctx": ast.Load()} if not isinstance(node, ast.Set) else {}))

    return replace


def _describe(site: _Site) -> str:
    before = site.node
    after = site.replace(copy.deepcopy(before))
    if site.operator == "drop-entry":
        dropped = [
            ast.unparse(e) for e in before.elts if not any(ast.dump(e) == ast.dump(x) for x in after.elts)
        ]  # type: ignore[attr-defined]
        return f"drop {_short(dropped[0] if dropped else '?', 70)} from `{_short(ast.unparse(before), 40)}`"
    if site.operator in ("raise->pass", "drop-problem"):
        return f"`{_short(ast.unparse(before))}` -> `pass`"
    return f"`{_short(ast.unparse(before))}` -> `{_short(ast.unparse(after))}`"


def mutants(module: str) -> list[Mutant]:
    """Every mutant of ``module`` (a path under src), in a fixed order."""
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    out: list[Mutant] = []
    seen: dict[tuple[int, str], int] = {}
    for index, site in enumerate(_SiteFinder().run(tree)):
        line = getattr(site.node, "lineno", 0)
        end = getattr(site.node, "end_lineno", line) or line
        change = f"{site.operator}: {_describe(site)}"
        n = seen.get((line, change), 0) + 1
        seen[(line, change)] = n
        if n > 1:
            change += f" (#{n})"
        out.append(Mutant(module, index, line, end, site.operator, change))
    return out


def mutate(source: str, index: int) -> str:
    """``source`` with its ``index``-th mutation applied (same order as :func:`mutants`)."""
    tree = ast.parse(source)
    site = _SiteFinder().run(tree)[index]
    site.setter(site.replace(site.node))
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


# -- the allow-list of equivalent mutants -----------------------------------------------------------


@dataclass
class AllowEntry:
    module: str
    line: int
    change: str
    reason: str
    used: bool = False


def read_allowlist(path: Path = ALLOWLIST) -> list[AllowEntry]:
    """Entries of the allow-list: ``src/<module>:<line>`` then ``change:`` and ``reason:`` lines."""
    entries: list[AllowEntry] = []
    if not path.is_file():
        return entries
    current: dict[str, str] = {}
    last = "reason"

    def flush() -> None:
        if current:
            missing = {"where", "change", "reason"} - current.keys()
            if missing:
                raise SystemExit(f"{path}: entry {current} lacks {', '.join(sorted(missing))}")
            where = current["where"].removeprefix("src/")
            module, _, line = where.rpartition(":")
            entries.append(AllowEntry(module, int(line), current["change"], current["reason"]))
            current.clear()

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if not line or line.lstrip().startswith("#"):
            continue
        if not raw[0].isspace():
            flush()
            current["where"] = line.strip()
        else:
            key, sep, value = line.strip().partition(":")
            if sep and key.strip() in ("change", "reason"):
                last = key.strip()
                current[last] = value.strip()
            else:  # a continuation of the reason
                current[last] += " " + line.strip()
    flush()
    return entries


def match_allowlist(
    mutant: Mutant, entries: list[AllowEntry], all_mutants: list[Mutant]
) -> AllowEntry | None:
    """The entry for ``mutant``: same module, change and line; or same module and change when the
    line moved and that change occurs once in the module."""
    for entry in entries:
        if entry.module == mutant.module and entry.change == mutant.change and entry.line == mutant.line:
            return entry
    for entry in entries:
        if entry.module == mutant.module and entry.change == mutant.change:
            same = [m for m in all_mutants if m.module == mutant.module and m.change == mutant.change]
            if len(same) == 1 and not any(
                e.module == mutant.module and e.change == mutant.change and e.line == m.line
                for e in entries
                for m in same
            ):
                return entry
    return None


# -- coverage: which tests execute which line (the pytest plugin side) ----------------------------

_TRACE_ENV = "PROVENIR_MUTATION_TRACE"


class _Tracer:
    """Records, per test, the lines it executes in the target files; and import-time lines."""

    def __init__(self, out: str, targets: list[str]) -> None:
        self.out = out
        self.targets = set(targets)
        self.current: str | None = None
        self.importing = 0
        self.hits: dict[str, set[tuple[str, int]]] = {}
        self.durations: dict[str, float] = {}
        self.failed: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        sys.settrace(self._global)
        threading.settrace(self._global)

    def _owner(self) -> str:
        return "<import>" if self.importing or self.current is None else self.current

    def _global(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        filename = code.co_filename
        if filename not in self.targets:
            return None
        module_code = code.co_name == "<module>"
        if module_code:
            self.importing += 1
        hits = self.hits.setdefault(self._owner(), set())
        hits.add((filename, frame.f_lineno))

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "line":
                self.hits.setdefault(self._owner(), set()).add((filename, frame.f_lineno))
            elif event == "return" and module_code:
                self.importing -= 1
            return local

        return local

    def write(self) -> None:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]
        lines: dict[str, dict[str, list[str]]] = {}
        for owner, hits in self.hits.items():
            for filename, line in hits:
                lines.setdefault(filename, {}).setdefault(str(line), []).append(owner)
        Path(self.out).write_text(
            json.dumps({"lines": lines, "durations": self.durations, "failed": self.failed}), encoding="utf-8"
        )


_TRACER: _Tracer | None = None
if os.environ.get(_TRACE_ENV):
    _spec = json.loads(os.environ[_TRACE_ENV])
    _TRACER = _Tracer(_spec["out"], _spec["targets"])
    _TRACER.start()


def _hookwrapper(fn: Callable[..., Any]) -> Callable[..., Any]:
    try:
        import pytest
    except ImportError:  # running as the bench script, not as the plugin
        return fn
    return pytest.hookimpl(wrapper=True)(fn)


@_hookwrapper
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Generator[None, Any, Any]:  # pragma: no cover
    if _TRACER is None:
        return (yield)
    _TRACER.current = item.nodeid
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        _TRACER.durations[item.nodeid] = time.perf_counter() - started
        _TRACER.current = None


def pytest_runtest_logreport(report: Any) -> None:  # pragma: no cover - plugin
    if _TRACER is not None and report.failed:
        _TRACER.failed.append(report.nodeid)


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:  # pragma: no cover - plugin
    if _TRACER is not None:
        _TRACER.write()


# -- running ---------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """From the traced run: tests per (module, line), lines run at import, durations."""

    tests: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    imported: dict[str, set[int]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # killed, timeout, survived, error, equivalent
    seconds: float
    tests: int
    detail: str = ""
    reason: str = ""


def _env(scratch: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch / "src"), str(Path(__file__).resolve().parent)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a stale .pyc must never stand in for a mutated file
    env.pop(_TRACE_ENV, None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env.update(extra or {})
    return env


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run in its own process group; on timeout kill the whole group. (exit status or None, output)."""
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out


def _existing(tests: list[str]) -> list[str]:
    return [t for t in tests if (ROOT / t).is_file()]


def trace(modules: dict[str, list[str]], scratch: Path) -> Coverage:
    """Run the modules' tests once, unmutated, under the line tracer."""
    test_files = sorted({t for tests in modules.values() for t in _existing(tests)})
    targets = {str((scratch / "src" / m).resolve()): m for m in modules}
    out = scratch / "trace.json"
    spec = json.dumps({"out": str(out), "targets": list(targets)})
    cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS[1:], "-p", "mutation"]
    cmd += [arg for slow in SLOW_TESTS for arg in ("--deselect", slow)] + test_files
    code, output = _run(cmd, _env(scratch, {_TRACE_ENV: spec}), timeout=1800)
    if code != 0 or not out.is_file():
        sys.exit(f"the unmutated tests do not pass (exit {code}); fix them first:\n{output[-4000:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    if data["failed"]:
        sys.exit(f"the unmutated tests fail: {', '.join(data['failed'])}")
    cov = Coverage(durations=data["durations"])
    for filename, lines in data["lines"].items():
        module = targets[filename]
        for line, owners in lines.items():
            for owner in owners:
                if owner == "<import>":
                    cov.imported.setdefault(module, set()).add(int(line))
                else:
                    cov.tests.setdefault(module, {}).setdefault(int(line), set()).add(owner)
    return cov


def select(
    mutant: Mutant, tests: list[str], cov: Coverage, *, everything: bool = False
) -> tuple[list[str], bool]:
    """Node ids to run for ``mutant`` (fastest first), and whether that is the module's whole set."""
    lines = range(mutant.line, mutant.end_line + 1)
    if not everything and not any(line in cov.imported.get(mutant.module, ()) for line in lines):
        chosen = {t for line in lines for t in cov.tests.get(mutant.module, {}).get(line, ())}
        if chosen:
            return sorted(chosen, key=lambda t: (cov.durations.get(t, 0.0), t)), False
    files = tuple(_existing(tests))
    whole = [t for t in cov.durations if t.split("::", 1)[0] in files]
    return sorted(whole, key=lambda t: (cov.durations.get(t, 0.0), t)), True


def run_mutant(mutant: Mutant, tests: list[str], scratch: Path, timeout_scale: float) -> tuple[str, str]:
    """Apply ``mutant`` in ``scratch``, run ``tests``, restore. (status, detail)."""
    target = scratch / "src" / mutant.module
    original = (SRC / mutant.module).read_text(encoding="utf-8")
    try:
        mutated = mutate(original, mutant.index)
        compile(mutated, str(target), "exec")
    except (SyntaxError, ValueError) as exc:
        return "error", f"mutant does not compile: {exc}"
    target.write_text(mutated, encoding="utf-8")
    try:
        cmd = [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests]
        code, output = _run(cmd, _env(scratch), timeout=timeout_scale)
    finally:
        target.write_text(original, encoding="utf-8")
    if code is None:
        return "timeout", ""
    if code == 0:
        return "survived", ""
    broken = code == 4 and "found no collectors" in output  # the test file no longer imports
    if code in (1, 2, 3) or broken:  # failed; interrupted or internal error: a collection error
        failed = next((ln for ln in output.splitlines() if ln.startswith(("FAILED", "ERROR"))), "")
        return "killed", _short(failed, 160)
    return "error", f"pytest exit {code}: {_short(output[-300:], 300)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", default=[], help="group name or module path substring")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (at most 2)")
    parser.add_argument("--report", type=Path, help="write every outcome as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no line per mutant")
    args = parser.parse_args(argv)
    jobs = max(1, min(2, args.jobs))

    chosen: dict[str, dict[str, list[str]]] = {}
    for group, modules in GROUPS.items():
        for module, tests in modules.items():
            if not (SRC / module).is_file():
                continue
            # A path as the shell completes it (src/provenir/...) names the same module.
            if not args.module or any(sel == group or sel in f"src/{module}" for sel in args.module):
                chosen.setdefault(group, {})[module] = tests
    if not chosen:
        parser.error(f"nothing matches {args.module}; groups: {', '.join(GROUPS)}")

    all_mutants = {group: [m for module in mods for m in mutants(module)] for group, mods in chosen.items()}
    allow = read_allowlist()
    if args.list:
        for group, ms in all_mutants.items():
            print(f"== {group}: {len(ms)} mutants")
            for m in ms:
                entry = match_allowlist(m, allow, ms)
                print(f"{m.where}: {m.change}" + ("   [allow-listed]" if entry else ""))
        return 0

    started = time.perf_counter()
    scratches: Queue[Path] = Queue()
    workdirs = [Path(tempfile.mkdtemp(prefix="provenir-mutation-")) for _ in range(jobs)]
    for w in workdirs:
        shutil.copytree(SRC, w / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        scratches.put(w)
    outcomes: list[Outcome] = []
    try:
        for group, modules in chosen.items():
            t0 = time.perf_counter()
            cov = trace(modules, workdirs[0])
            print(
                f"== {group}: traced {len(cov.durations)} tests in {time.perf_counter() - t0:.0f}s",
                flush=True,
            )
            ms = all_mutants[group]
            todo = []
            for m in ms:
                entry = match_allowlist(m, allow, ms)
                if entry is not None:
                    entry.used = True
                    outcomes.append(Outcome(m, "equivalent", 0.0, 0, reason=entry.reason))
                else:
                    todo.append(m)

            def one(m: Mutant, modules: dict[str, list[str]] = modules, cov: Coverage = cov) -> Outcome:
                tests, whole = select(m, modules[m.module], cov)
                budget = 30 + 4 * sum(cov.durations.get(t, 1.0) for t in tests)
                scratch = scratches.get()
                t1 = time.perf_counter()
                try:
                    status, detail = run_mutant(m, tests, scratch, budget)
                    if status == "survived" and not whole:
                        # Tests that reach the line only through a subprocess were not selected:
                        # a survivor must also pass every test of its module.
                        tests, whole = select(m, modules[m.module], cov, everything=True)
                        budget = 30 + 4 * sum(cov.durations.get(t, 1.0) for t in tests)
                        status, detail = run_mutant(m, tests, scratch, budget)
                finally:
                    scratches.put(scratch)
                outcome = Outcome(m, status, time.perf_counter() - t1, len(tests), detail)
                if not args.quiet:
                    scope = "all" if whole else len(tests)
                    print(
                        f"  {status:9} {outcome.seconds:5.1f}s [{scope} tests] {m.where}: {m.change}",
                        flush=True,
                    )
                return outcome

            with ThreadPoolExecutor(jobs) as pool:
                outcomes += list(pool.map(one, todo))
    finally:
        for w in workdirs:
            shutil.rmtree(w, ignore_errors=True)
    elapsed = time.perf_counter() - started
    report(outcomes, chosen, allow, elapsed)
    if args.report:
        args.report.write_text(
            json.dumps([{**asdict(o), "mutant": asdict(o.mutant)} for o in outcomes], indent=1),
            encoding="utf-8",
        )
    return 0


def report(
    outcomes: list[Outcome], chosen: dict[str, dict[str, list[str]]], allow: list[AllowEntry], elapsed: float
) -> None:
    print()
    header = f"{'group':12} {'mutants':>7} {'killed':>7} {'timeout':>7} {'survived':>8} {'errors':>6} {'equiv.':>6} {'score':>7}"
    print(header)
    print("-" * len(header))
    for group, modules in chosen.items():
        rows = [o for o in outcomes if o.mutant.module in modules]
        count = {
            s: sum(o.status == s for o in rows)
            for s in ("killed", "timeout", "survived", "error", "equivalent")
        }
        judged = len(rows) - count["equivalent"]
        score = (count["killed"] + count["timeout"]) / judged if judged else 1.0
        print(
            f"{group:12} {len(rows):7} {count['killed']:7} {count['timeout']:7} {count['survived']:8} "
            f"{count['error']:6} {count['equivalent']:6} {score:7.1%}"
        )
        for module in modules:
            mrows = [o for o in rows if o.mutant.module == module]
            mj = [o for o in mrows if o.status != "equivalent"]
            ms = sum(o.status in ("killed", "timeout") for o in mj) / len(mj) if mj else 1.0
            surv = sum(o.status == "survived" for o in mrows)
            print(f"  {module:44} {len(mrows):5} mutants, {surv:3} survived, {ms:6.1%}")
    survivors = [o for o in outcomes if o.status in ("survived", "error")]
    if survivors:
        print("\nsurvivors:")
        for o in sorted(survivors, key=lambda o: (o.mutant.module, o.mutant.line, o.mutant.index)):
            extra = f"  ({o.detail})" if o.status == "error" else ""
            print(f"  {o.mutant.where}: {o.mutant.change}{extra}")
    stale = [e for e in allow if not e.used and any(e.module in mods for mods in chosen.values())]
    for e in stale:
        print(f"allow-list entry matches no mutant (stale?): src/{e.module}:{e.line} {e.change}")
    print(f"\n{len(outcomes)} mutants in {elapsed:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
