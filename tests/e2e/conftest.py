"""Browser fixtures: the app on a real HTTP port, headless Chromium through Playwright, screenshots on failure.

Chromium is the Debian build (``INTERCHANGE_CHROMIUM``, default /usr/bin/chromium); Playwright's own browser
download is never used. Without a usable Chromium the browser tests skip with the reason, unless
``INTERCHANGE_REQUIRE_BROWSER`` is set (CI sets it): then they fail, so CI cannot go green by skipping them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def browser_unavailable(reason: str) -> None:
    """Skip (locally) or fail (when INTERCHANGE_REQUIRE_BROWSER is set) because Chromium cannot run."""
    message = f"browser tests need Chromium: {reason}"
    if os.environ.get("INTERCHANGE_REQUIRE_BROWSER"):
        pytest.fail(f"{message} (INTERCHANGE_REQUIRE_BROWSER is set)", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep the call-phase report on the item so the ``page`` fixture knows, at teardown, whether the test failed."""
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium for the whole session."""
    executable = os.environ.get("INTERCHANGE_CHROMIUM", "/usr/bin/chromium")
    if not Path(executable).is_file():
        browser_unavailable(f"no executable at {executable} (set INTERCHANGE_CHROMIUM)")
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            browser_unavailable(f"launching {executable} failed: {exc.message.splitlines()[0]}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server: str, request: pytest.FixtureRequest):
    """A fresh browser context (no cookies) on the live server; saves a screenshot if the test fails."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    report = request.node.stash.get(CALL_REPORT, None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"\nscreenshot of the failed page: {path}")
    context.close()


@pytest.fixture
def console_errors(page) -> list[str]:
    """The text of every console message of type ``error`` the page logs (CSP violations land here)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


@pytest.fixture
def csrf_enabled(app: Flask) -> Iterator[None]:
    """Turn CSRF protection on, as in production, so the journey proves every real form carries its token."""
    previous = app.config["WTF_CSRF_ENABLED"]
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = previous
