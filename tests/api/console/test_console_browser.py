"""The console in a real browser: headless Chromium (Debian's, driven by Playwright's Python
client; no browser download) against a real uvicorn server on loopback, with the strict CSP in
force. Each page is also checked by axe-core (tests/api/console/vendor) for serious or
critical accessibility violations.

Skipped when Chromium or Playwright is missing, except under ``make test``
(``PROVENIR_REQUIRE_BROWSER=1``), where that is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_support import TOKEN, ConsoleStore

from provenir.api.app import create_app
from provenir.api.server import BackgroundServer
from provenir.api.settings import ApiSettings

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("PROVENIR_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).with_name("vendor") / "axe.min.js"


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PROVENIR_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    reason = _missing_browser()
    if reason is not None:
        if os.environ.get("PROVENIR_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required here: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def console_url(console_store: ConsoleStore) -> Iterator[str]:
    """The console of ``console_store`` on a real server, behind a token."""
    with BackgroundServer(create_app(ApiSettings(output_dir=console_store.root, token=TOKEN))) as server:
        yield server.url


@pytest.fixture()
def page(browser: Any, console_url: str) -> Iterator[Any]:
    """A fresh browser context (no cookies); fails the test on any script error or CSP report."""
    context = browser.new_context(base_url=console_url)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    tab.on(
        "console",
        lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    yield tab
    context.close()
    assert problems == []


def _axe(tab: Any) -> None:
    """No serious or critical axe-core violation on the current page."""
    if not tab.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's CSP does not govern.
        tab.evaluate(AXE.read_text(encoding="utf-8"))
    violations = tab.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html).slice(0, 3)}))"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{tab.url}: {bad}"


def _log_in(tab: Any) -> None:
    tab.goto("/ui")
    assert tab.url.endswith("/ui/login")
    _axe(tab)
    tab.fill("#token", TOKEN)
    tab.click("form.login button[type=submit]")
    tab.wait_for_url("**/ui")


def _row(tab: Any, run_id: str) -> Any:
    return tab.locator(f'tr[data-run-id="{run_id}"]')


def test_log_in_and_list_runs(page: Any, console_store: ConsoleStore) -> None:
    _log_in(page)
    assert page.locator("table.runs tbody tr").count() == len(console_store.store.run_ids())
    base = _row(page, console_store.base.run_id)
    assert base.locator('[data-field="verification"]').inner_text() == "verified"
    assert "exact_match 1.0000" in base.locator('[data-field="metrics"]').inner_text()
    cookies = page.context.cookies()
    assert [(c["httpOnly"], c["sameSite"]) for c in cookies] == [(True, "Strict")]
    assert TOKEN not in cookies[0]["value"]
    _axe(page)


def test_filter_and_sort_replace_the_table_in_place(page: Any, console_store: ConsoleStore) -> None:
    from playwright.sync_api import expect

    _log_in(page)
    page.fill("#f-name", "candidate-sft")
    page.press("#f-name", "Enter")
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    assert _row(page, console_store.candidate.run_id).count() == 1
    assert "name=candidate-sft" in page.url  # htmx pushed the filtered URL
    page.fill("#f-name", "")
    page.select_option("#f-order", "asc")
    first = console_store.base.run_id
    expect(page.locator("table.runs tbody tr").first).to_have_attribute("data-run-id", first)
    _axe(page)
    # Column headers sort: a click sorts by name A to Z, Enter on the focused header reverses it.
    runs = [console_store.base, console_store.candidate, console_store.child, console_store.tampered]
    by_name = [m.run_id for m in sorted(runs, key=lambda m: (m.name, m.timestamp, m.run_id))]
    name_header = page.locator('th[data-sort="name"]')
    name_header.locator("a").click()
    page.wait_for_url(re.compile(r"sort=name&order=asc"))
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("table.runs tbody tr").first).to_have_attribute("data-run-id", by_name[0])
    name_header.locator("a").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=name&order=desc"))
    expect(name_header).to_have_attribute("aria-sort", "descending")
    expect(page.locator("table.runs tbody tr").first).to_have_attribute("data-run-id", by_name[-1])
    _axe(page)


def test_open_a_run_and_follow_its_lineage(page: Any, console_store: ConsoleStore) -> None:
    base, child = console_store.base, console_store.child
    _log_in(page)
    _row(page, base.run_id).locator('[data-field="name"] a').click()
    page.wait_for_url(f"**/ui/runs/{base.run_id}")
    assert page.locator("h1").inner_text() == base.name
    assert page.locator(".report").get_attribute("data-verified") == "true"
    assert page.locator("#downloads + ul a").first.inner_text() == "manifest"
    _axe(page)
    page.click("text=Lineage of this run")
    page.wait_for_url(f"**/ui/runs/{base.run_id}/lineage")
    _axe(page)
    # Follow the graph: the child's box is a link to its own lineage.
    page.locator(f'figure.lineage svg a[href="/ui/runs/{child.run_id}/lineage"]').click()
    page.wait_for_url(f"**/ui/runs/{child.run_id}/lineage")
    parents = page.locator("ol.chain li")
    assert parents.count() == 1 and base.run_id[:8] in parents.inner_text()
    assert "reproduce" in page.locator("ol.chain + p").inner_text()


def test_compare_two_runs(page: Any, console_store: ConsoleStore) -> None:
    _log_in(page)
    page.check(f'input[value="{console_store.base.run_id}"]')
    page.check(f'input[value="{console_store.candidate.run_id}"]')
    page.click("text=Compare selected runs")
    page.wait_for_url("**/ui/compare?**")
    section = page.locator("section.comparison")
    assert section.count() == 1
    exact = section.locator('tr[data-metric="exact_match"]').inner_text()
    assert "mcnemar" in exact and "regression" in exact
    assert page.locator("p.verdict .badge").inner_text() == "TRIPPED"
    assert section.locator('tr[data-key="peft.rank"]').count() == 1
    _axe(page)


def test_a_tampered_manifest_shows_as_failing_verification(page: Any, console_store: ConsoleStore) -> None:
    run_id = console_store.tampered.run_id
    _log_in(page)
    cell = _row(page, run_id).locator('[data-field="verification"]')
    assert cell.inner_text().startswith("FAILED") and "hash" in cell.inner_text()
    _row(page, run_id).locator('[data-field="name"] a').click()
    page.wait_for_url(f"**/ui/runs/{run_id}")
    assert page.locator(".report").get_attribute("data-verified") == "false"
    assert page.locator("text=This run does not verify").count() == 1
    _axe(page)


def test_audit_log_with_its_chain_verification(page: Any, console_store: ConsoleStore) -> None:
    _log_in(page)
    page.click("header nav >> text=Audit log")
    page.wait_for_selector("[data-chain-ok]")  # loaded by htmx after the page
    assert page.locator("[data-chain-ok]").get_attribute("data-chain-ok") == "true"
    assert page.locator("table.audit tbody tr[data-seq]").count() > 0
    _axe(page)


def test_log_out_ends_the_session(page: Any) -> None:
    _log_in(page)
    page.click("text=Log out")
    page.wait_for_url("**/ui/login")
    page.goto("/ui")
    assert page.url.endswith("/ui/login")
