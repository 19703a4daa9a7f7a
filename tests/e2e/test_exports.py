"""Browser journey: from a filtered list page to the Exports page, start an export, watch it finish, download it."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import Page, expect

from app.models import Role
from tests.e2e.test_console import assert_no_csp_violations, sign_in
from tests.factories import PersonFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]


def test_export_from_list_page_filters_runs_and_downloads(page: Page, console_errors: list[str], make_member,
                                                          rq_burst) -> None:
    user = make_member(Role.VIEWER, email="viewer@example.com")
    org = user.memberships[0].organization
    PersonFactory(organization=org, email="ada@example.com", name="Ada", department="Eng")
    PersonFactory(organization=org, email="bob@example.com", name="=Bob", department="Ops")

    sign_in(page, "viewer@example.com")
    page.goto("/people/?department=Ops")
    page.get_by_test_id("export-link").click()
    expect(page.get_by_role("textbox", name="Department")).to_have_value("Ops")
    page.get_by_label("CSV").check()
    page.get_by_test_id("export-form").get_by_role("button", name="Export").click()

    status = page.get_by_test_id("exports").get_by_test_id("export-status").first
    expect(status).to_contain_text("queued")
    rq_burst()  # a real worker, in this process; the page's poller sees it finish and reloads
    expect(status).to_contain_text("completed", timeout=15_000)
    with page.expect_download() as download_info:
        page.get_by_test_id("export-download").first.click()
    download = download_info.value

    assert download.suggested_filename.startswith("people-") and download.suggested_filename.endswith(".csv")
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["email"], r["name"]) for r in rows] == [("bob@example.com", "'=Bob")]
    assert_no_csp_violations(console_errors)
