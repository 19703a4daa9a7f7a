"""Browser journeys through the console: real Chromium, real HTTP server, CSRF on, CSP enforced."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from app.extensions import db
from app.models import Membership, Project, Role, User
from tests.factories import PASSWORD, ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("csrf_enabled")]


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()


def assert_no_csp_violations(console_errors: list[str]) -> None:
    violations = [text for text in console_errors if "content security policy" in text.lower()]
    assert violations == []


def test_console_admin_signs_in_creates_finds_project_and_signs_out(
    page: Page, console_errors: list[str], make_member
) -> None:
    user = make_member(Role.ADMIN)
    org = user.memberships[0].organization
    org_id, org_name, email = org.id, org.name, user.email
    ProjectFactory(organization=org, code="OLD-1", name="Older project")

    sign_in(page, email)
    expect(page.locator("nav.topbar").get_by_test_id("current-org")).to_have_text(org_name)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    page.get_by_role("link", name="New project").click()
    page.get_by_label("Code", exact=True).fill("WEB-2026")
    page.get_by_label("Name", exact=True).fill("Website relaunch")
    page.get_by_label("Status", exact=True).select_option("active")
    page.get_by_label("Priority", exact=True).select_option("high")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="WEB-2026 · Website relaunch")).to_be_visible()

    page.get_by_role("link", name="All projects").click()
    records = page.get_by_test_id("records")
    expect(records.get_by_role("row").filter(has_text="OLD-1")).to_have_count(1)
    page.get_by_role("searchbox", name="Search").fill("WEB-2026")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q=WEB-2026"))
    expect(records.get_by_role("row").filter(has_text="WEB-2026")).to_have_count(1)
    expect(records.get_by_role("row").filter(has_text="OLD-1")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/projects/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fprojects%2F$"))

    project = db.session.scalars(select(Project).where(Project.code == "WEB-2026")).one()
    assert (project.organization_id, project.name, project.status, project.priority) == (
        org_id, "Website relaunch", "active", "high"
    )
    assert_no_csp_violations(console_errors)


def test_console_first_run_setup_creates_admin_and_disappears(page: Page, console_errors: list[str]) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    page.get_by_label("Organisation name").fill("Acme Works")
    page.get_by_label("Organisation slug").fill("acme")
    page.get_by_label("Your name").fill("Ada Admin")
    page.get_by_label("Your email").fill("ada@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create organisation and admin").click()

    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    topbar = page.locator("nav.topbar")
    expect(topbar.get_by_test_id("current-org")).to_have_text("Acme Works")
    expect(topbar.get_by_text("Ada Admin · Admin")).to_be_visible()
    assert page.goto("/setup").status == 404

    membership = db.session.scalars(
        select(Membership).join(User).where(User.email == "ada@example.com")
    ).one()
    assert (membership.role, membership.organization.slug) == (Role.ADMIN.value, "acme")
    assert_no_csp_violations(console_errors)


def test_console_project_form_shows_duplicate_code_inline(page: Page, console_errors: list[str], make_member) -> None:
    user = make_member(Role.EDITOR)
    org = user.memberships[0].organization
    org_id, email = org.id, user.email
    ProjectFactory(organization=org, code="WEB-2026", name="The original")

    sign_in(page, email)
    page.goto("/projects/new")
    page.get_by_label("Code", exact=True).fill("WEB-2026")
    page.get_by_label("Name", exact=True).fill("A second one")
    page.get_by_role("button", name="Create project").click()

    code = page.get_by_label("Code", exact=True)
    expect(code).to_have_class(re.compile(r"\bis-invalid\b"))
    code_group = page.locator("div.mb-3", has=code)
    expect(code_group.locator(".invalid-feedback")).to_have_text("Another record already uses 'WEB-2026'.")
    expect(page.get_by_role("heading", name="New project")).to_be_visible()
    count = db.session.scalar(select(func.count()).select_from(Project).where(Project.organization_id == org_id))
    assert count == 1
    assert_no_csp_violations(console_errors)
