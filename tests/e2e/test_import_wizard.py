"""The import wizard in a real browser: a file dropped with a DataTransfer drop event, mapped, reviewed, run and undone.

The live server enqueues the validation, the run and the undo on Redis; a real worker process
(``flask --app wsgi worker``, the production command) on the same database and Redis does the work, so the
page's polling sees the job move exactly as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.extensions import db
from app.importers.specs import ENTITY_SPECS
from app.models import ImportJob, Person, Role
from tests.e2e.test_console import assert_no_csp_violations, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STAFF_CSV = (
    "E-mail,Full name,Dept,Favourite colour\n"
    "ada@example.com,Ada Lovelace,Engineering,green\n"
    "grace@example.com,Grace Hopper,Navy,blue\n"
    "not-an-email,Broken Row,Nowhere,red\n"
)
WORK_TIMEOUT_MS = 30_000


@pytest.fixture
def worker(app: Flask) -> Iterator[subprocess.Popen]:
    """``flask --app wsgi worker`` on the test database and Redis, stopped (by its pid) after the test."""
    db.session.rollback()  # no read transaction of this process may block the worker's writes (SQLite)
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "INTERCHANGE_STORAGE": app.config["INTERCHANGE_STORAGE"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "INTERCHANGE_ENV": "test",
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "worker"], cwd=PROJECT_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
    print(f"\nworker output:\n{output}")  # shown by pytest when the test failed


def drop_file(page: Page, selector: str, name: str, content: str, mime: str = "text/csv") -> None:
    """Drop ``content`` as a file ``name`` on ``selector``: dragenter, dragover, then drop, one DataTransfer."""
    transfer = page.evaluate_handle(
        """([name, content, mime]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([content], name, {type: mime}));
            return transfer;
        }""",
        [name, content, mime],
    )
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})


def people_of(org_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Person.id)).where(Person.organization_id == org_id))


def test_import_wizard_drop_map_review_run_and_undo(page: Page, console_errors: list[str], make_member, worker):
    user = make_member(Role.EDITOR)
    org_id, email = user.memberships[0].organization_id, user.email
    db.session.rollback()

    sign_in(page, email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Imports", exact=True).click()
    expect(page.get_by_test_id("empty-state")).to_contain_text("No imports yet")
    page.get_by_role("link", name="Import a file").click()
    page.get_by_test_id("choose-people").click()
    expect(page.get_by_test_id("drop-zone")).to_contain_text("up to 200 MB")

    # Step 2: a file that is not what its name says is refused inline; then the real file, by drag and drop.
    drop_file(page, "[data-testid=drop-zone]", "staff.xlsx", "this is not a workbook", "application/octet-stream")
    expect(page.get_by_test_id("upload-errors")).to_be_visible()
    expect(page.get_by_test_id("upload-errors")).not_to_be_empty()
    expect(page).to_have_url(re.compile(r"/imports/new\?entity=people$"))
    drop_file(page, "[data-testid=drop-zone]", "staff.csv", STAFF_CSV)
    expect(page).to_have_url(re.compile(r"/imports/\d+/layout$"))
    expect(page.get_by_test_id("preview")).to_contain_text("Grace Hopper")

    # Step 3: the detected header row is right; step 4: the suggestions map all but the colour column.
    page.get_by_role("button", name="Use these columns").click()
    expect(page).to_have_url(re.compile(r"/imports/\d+/mapping$"))
    expect(page.get_by_label("E-mail")).to_have_value("email")
    expect(page.get_by_label("Full name")).to_have_value("name")
    expect(page.get_by_label("Favourite colour")).to_have_value("")
    expect(page.get_by_test_id("reason-3")).to_contain_text("ignored")
    expect(page.get_by_test_id("missing-required")).to_be_hidden()
    page.get_by_label("E-mail").select_option("")
    expect(page.get_by_test_id("missing-required")).to_contain_text("Required fields not mapped yet: email")
    expect(page.get_by_test_id("reason-0")).to_have_text("ignored")
    page.get_by_label("E-mail").select_option("email")
    expect(page.get_by_test_id("missing-required")).to_be_hidden()
    page.get_by_label("Dept").select_option("department")
    page.get_by_role("button", name="Validate the file").click()

    # Step 5: validation runs in the worker; the page polls, then shows the counts and the bad row.
    expect(page).to_have_url(re.compile(r"/imports/\d+/review$"))
    expect(page.get_by_test_id("count-created")).to_have_text("2", timeout=WORK_TIMEOUT_MS)
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    expect(page.get_by_test_id("row-errors")).to_contain_text("not-an-email")
    page.get_by_label("Create and update: add new records, change existing ones").check()
    page.get_by_label("Skip invalid rows and import the rest").check()
    page.get_by_role("button", name="Import", exact=True).click()

    # Step 6: the bar reaches 100% without a reload; step 7: the result with its counts.
    expect(page).to_have_url(re.compile(r"/imports/\d+/run$"))
    expect(page.get_by_test_id("run-progress-bar")).to_have_attribute("aria-valuenow", "100", timeout=WORK_TIMEOUT_MS)
    expect(page.get_by_test_id("run-progress")).to_contain_text("3 of 3 rows")
    expect(page).to_have_url(re.compile(r"/imports/\d+$"), timeout=WORK_TIMEOUT_MS)
    expect(page.get_by_test_id("count-created")).to_have_text("2")
    expect(page.get_by_test_id("count-failed")).to_have_text("1")
    assert people_of(org_id) == 2

    # Undo, confirmed in the browser's dialog: the records are gone from the data pages.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Undo this import").click()
    expect(page.get_by_text("The import was undone")).to_be_visible()
    job_id = int(re.search(r"/imports/(\d+)", page.url).group(1))
    for _ in range(60):
        db.session.rollback()
        if db.session.get(ImportJob, job_id).status == "undone":
            break
        page.wait_for_timeout(250)
    assert people_of(org_id) == 0
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_test_id("empty-state")).to_be_visible()
    assert_no_csp_violations(console_errors)


def test_import_wizard_file_picker_with_template_headers_skips_the_mapping(
    page: Page, console_errors: list[str], make_member, worker, tmp_path: Path
):
    user = make_member(Role.EDITOR)
    email = user.email
    db.session.rollback()
    fields = [f.name for f in ENTITY_SPECS["clients"].fields]
    path = tmp_path / "clients.csv"
    path.write_text(",".join(fields) + "\n" + ",".join({"name": "Acme", "active": "yes"}.get(f, "") for f in fields)
                    + "\n")

    sign_in(page, email)
    page.goto("/imports/new?entity=clients")
    page.set_input_files("input[type=file]", str(path))
    expect(page).to_have_url(re.compile(r"/imports/\d+/layout$"))
    page.get_by_role("button", name="Use these columns").click()
    expect(page).to_have_url(re.compile(r"/imports/\d+/review$"))
    expect(page.get_by_text("The columns match the import template")).to_be_visible()
    expect(page.get_by_test_id("count-created")).to_have_text("1", timeout=WORK_TIMEOUT_MS)
    assert_no_csp_violations(console_errors)
