"""Command line (``flask --app wsgi ...``). Each command prints its result on its last line."""

from __future__ import annotations

import json
import os

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.errors import DomainError, ValidationFailed
from app.importers import ENTITY_SPECS
from app.services import accounts, api_keys
from app.services import imports as import_service
from app.services import jobs as job_service
from app.services.audit import Actor

CLI_ACTOR = Actor(user=None, label_override="cli")

orgs_cli = AppGroup("orgs", help="Organisations.")
users_cli = AppGroup("users", help="Users and memberships.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
api_keys_cli = AppGroup("api-keys", help="API keys for the REST API.")
import_cli = AppGroup("import", help="Import records from CSV, TSV, XLSX, ODS, JSON or XML files.")


def _fail(exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed):
        for field, messages in exc.errors.items():
            for message in messages:
                click.echo(f"{field}: {message}", err=True)
    raise click.ClickException(exc.message)


@orgs_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name of the organisation.")
def create_org(slug: str, name: str) -> None:
    """Create an organisation."""
    try:
        org = accounts.create_org(slug, name, CLI_ACTOR)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created organisation {org.slug} (id {org.id})")


@users_cli.command("create")
@click.argument("email")
@click.option("--org", "org_slug", required=True, help="Slug of the organisation to join.")
@click.option("--role", required=True, type=click.Choice(["viewer", "editor", "operator", "admin"]))
@click.option("--password", default=None, help="Set a password; without it the user signs in by invitation or SSO.")
@click.option("--name", default="", help="Display name.")
def create_user(email: str, org_slug: str, role: str, password: str | None, name: str) -> None:
    """Create a user (or add an existing one) as a member of an organisation."""
    try:
        org = accounts.get_org_by_slug(org_slug)
        if password is None:
            user, token = accounts.invite_member(org, CLI_ACTOR, email, role, name)
            click.echo(f"invitation link path: /invitations/{token}")
        else:
            user, _ = accounts.create_user(email, org, role, CLI_ACTOR, password=password, name=name)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created user {user.email} as {role} in {org.slug} (id {user.id})")


@jobs_cli.command("sweep")
def sweep() -> None:
    """Re-enqueue jobs whose queue entry was lost (for example after a Redis restart)."""
    click.echo(json.dumps(job_service.sweep_lost_jobs()))


@api_keys_cli.command("create")
@click.option("--org", "org_slug", required=True, help="Slug of the organisation the key belongs to.")
@click.option("--name", required=True, help="Who or what uses the key.")
@click.option("--scopes", required=True, help='Space-separated scopes, e.g. "data.read data.write".')
@click.option("--rate-limit", default=None, help="Its own limit, e.g. 120/minute (default: the organisation's).")
@click.option("--expires-in", "expires_in", type=int, default=None, help="Days until the key expires (1 to 3650).")
@click.option("--ip", "ip_allowlist", multiple=True, help="Allowed address or CIDR range; repeat for several.")
def create_api_key(org_slug: str, name: str, scopes: str, rate_limit: str | None, expires_in: int | None,
                   ip_allowlist: tuple[str, ...]) -> None:
    """Create an API key. The last line printed is the key itself: it is shown only this once."""
    try:
        org = accounts.get_org_by_slug(org_slug)
        key, secret = api_keys.create_key(org, CLI_ACTOR, name, scopes.split(), expires_in, ip_allowlist, rate_limit)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created API key {key.name!r} (id {key.id}, prefix {key.prefix}) in {org.slug} "
               f"with scopes {' '.join(key.scopes)}; store the key below now, it is not shown again", err=True)
    click.echo(secret)


@api_keys_cli.command("revoke")
@click.argument("key_id", type=int)
@click.option("--org", "org_slug", required=True, help="Slug of the organisation the key belongs to.")
def revoke_api_key(key_id: int, org_slug: str) -> None:
    """Revoke an API key at once."""
    try:
        key = api_keys.revoke_key(accounts.get_org_by_slug(org_slug), CLI_ACTOR, key_id)
    except DomainError as exc:
        _fail(exc)
    click.echo(f"revoked API key {key.name!r} (id {key.id}, prefix {key.prefix})")


@import_cli.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--org", "org_slug", required=True, help="Slug of the organisation to import into.")
@click.option("--entity", required=True, type=click.Choice(sorted(ENTITY_SPECS)), help="What the rows are.")
@click.option("--mapping", "mapping_json", default=None,
              help='Column mapping as JSON, {"File column": "field"}; without it the suggested mapping is used.')
@click.option("--mode", default="upsert", type=click.Choice(["upsert", "create", "update"]))
@click.option("--on-error", "on_error", default="skip", type=click.Choice(["skip", "abort"]),
              help="skip: load the valid rows; abort: write nothing if any row fails.")
@click.option("--sheet", default=None, help="Workbook sheet (default: the first).")
def import_run(file: str, org_slug: str, entity: str, mapping_json: str | None, mode: str, on_error: str,
               sheet: str | None) -> None:
    """Import a file synchronously. Row errors are listed first; the last line is a JSON summary."""
    try:
        mapping = json.loads(mapping_json) if mapping_json else None
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--mapping is not valid JSON: {exc}") from None
    if mapping is not None and not isinstance(mapping, dict):
        raise click.ClickException('--mapping must be a JSON object such as {"E-mail": "email"}')
    try:
        org = accounts.get_org_by_slug(org_slug)
        summary = import_service.run_import_file(org, CLI_ACTOR, file, os.path.basename(file), entity, mapping,
                                                 mode, on_error, sheet=sheet)
    except DomainError as exc:
        _fail(exc)
    for error in summary.errors[:20]:
        column = f", column {error.column!r}" if error.column else ""
        click.echo(f"row {error.row}{column}: {error.message}", err=True)
    if summary.errors_total > 20:
        click.echo(f"... and {summary.errors_total - 20} more errors", err=True)
    click.echo(json.dumps(summary.as_dict()))


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
def worker(burst: bool) -> None:
    """Start an RQ worker on all queues."""
    from workers.main import run_worker

    run_worker(current_app._get_current_object(), burst=burst)
    click.echo("worker stopped")


def init_app(app: Flask) -> None:
    for command in (orgs_cli, users_cli, jobs_cli, api_keys_cli, import_cli, worker):
        app.cli.add_command(command)
