"""The command line: each command prints its result on its last line and fails with a message, not a traceback."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BackgroundJob, JobStatus, Membership, Organization, User
from tests.factories import OrganizationFactory

PASSWORD = "a long enough passphrase"


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.fixture
def acme() -> Organization:
    return OrganizationFactory(slug="acme", name="Acme")


def test_cli_orgs_create_names_the_new_org(runner):
    result = runner.invoke(args=["orgs", "create", "acme", "--name", "Acme"])
    assert result.exit_code == 0, result.output
    org = db.session.scalars(select(Organization)).one()
    assert (org.slug, org.name) == ("acme", "Acme")
    assert last_line(result.output) == f"created organisation acme (id {org.id})"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orgs", "create", "acme", "--name", "Again"], "slug: An organisation with the slug 'acme' already exists."),
        (["orgs", "create", "Not A Slug", "--name", "X"], "slug: Use lower-case letters, digits and dashes"),
        (["users", "create", "ada@example.com", "--org", "nope", "--role", "viewer"], "Organisation 'nope' not found."),
        (["users", "create", "ada@example.com", "--org", "acme", "--role", "viewer", "--password", "short"],
         "password: Use at least 12 characters."),
        (["users", "create", "not-an-email", "--org", "acme", "--role", "viewer"], "email: Enter a valid email"),
    ],
    ids=["duplicate-slug", "bad-slug", "unknown-org", "short-password", "bad-email"],
)
def test_cli_refuses_bad_input_with_a_clear_message(runner, acme, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    assert db.session.scalars(select(Organization.slug)).all() == ["acme"]
    assert db.session.scalars(select(User)).all() == []


def test_cli_users_create_with_password_can_sign_in(runner, client, acme):
    result = runner.invoke(
        args=["users", "create", "Ada@Example.com", "--org", "acme", "--role", "admin", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalars(select(User)).one()
    assert last_line(result.output) == f"created user ada@example.com as admin in acme (id {user.id})"
    assert db.session.scalars(select(Membership.role)).one() == "admin"
    response = client.post("/login", data={"email": "ada@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_cli_users_create_without_password_prints_a_working_invitation_path(runner, client, acme):
    result = runner.invoke(args=["users", "create", "ada@example.com", "--org", "acme", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    invitation, created = result.output.strip().splitlines()[-2:]
    assert created.startswith("created user ada@example.com as viewer in acme")
    path = invitation.removeprefix("invitation link path: ")
    assert path.startswith("/invitations/")
    assert db.session.scalars(select(User)).one().password_hash is None
    response = client.post(path, data={"password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    assert client.post("/login", data={"email": "ada@example.com", "password": PASSWORD}).status_code == 302


def test_cli_jobs_sweep_prints_its_counts_as_json(runner, acme):
    # A queued row whose queue entry never reached Redis: the sweep puts it back.
    job = BackgroundJob(organization_id=acme.id, kind="audit_retention", queue="default",
                        status=JobStatus.QUEUED.value, params={"days": 90})
    db.session.add(job)
    db.session.commit()
    result = runner.invoke(args=["jobs", "sweep"])
    assert result.exit_code == 0, result.output
    assert json.loads(last_line(result.output)) == {"requeued": 1, "recovered": 0, "abandoned": 0}
