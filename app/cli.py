"""Command line (``flask --app wsgi ...``). Each command prints its result on its last line."""

from __future__ import annotations

import json
import os

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.errors import DomainError, ValidationFailed
from app.extensions import db
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
sso_cli = AppGroup("sso", help="Single sign-on: configure an organisation's identity provider.")
import_cli = AppGroup("import", help="Import records from CSV, TSV, XLSX, ODS, JSON or XML files.")


def _fail(exc: DomainError) -> None:
    db.session.rollback()  # whatever the failed command had staged is not written
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
            if token is not None:
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


def _sso_policy(domains: tuple[str, ...], default_role: str | None, groups: tuple[str, ...],
                email_attribute: str | None, name_attribute: str | None, groups_attribute: str | None,
                idp_initiated: bool | None = None):
    from app.services.sso.config import SsoPolicy

    rows = []
    for item in groups:
        group, sep, role = item.rpartition("=")
        if not sep or not group.strip():
            raise click.BadParameter(f"{item!r}: use GROUP=ROLE", param_hint="--group")
        rows.append((group, role.strip()))
    return SsoPolicy(
        email_domains=[d for value in domains for d in value.split(",")] if domains else None,
        default_role=default_role, group_roles=rows if groups else None, email_attribute=email_attribute,
        name_attribute=name_attribute, groups_attribute=groups_attribute, allow_idp_initiated=idp_initiated,
    )


def _sso_options(command):
    """The sign-in policy options both ``sso saml`` and ``sso oidc`` take; omitted ones keep their value."""
    options = [
        click.option("--domain", "domains", multiple=True, help="Email domain the organisation claims; repeatable."),
        click.option("--default-role", type=click.Choice(["viewer", "editor", "operator", "admin", "deny"]),
                     default=None, help="Role for users in no mapped group, or deny."),
        click.option("--group", "groups", multiple=True, help="GROUP=ROLE mapping; repeatable (replaces the table)."),
        click.option("--email-attribute", default=None, help="Attribute/claim with the email (SAML: empty = NameID)."),
        click.option("--name-attribute", default=None, help="Attribute/claim with the display name."),
        click.option("--groups-attribute", default=None, help="Attribute/claim with the groups."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _sso_result(org, provider) -> None:
    if provider.protocol == "saml":
        click.echo(f"SP entity ID and metadata: <console URL>/sso/{org.slug}/saml/metadata")
        click.echo(f"ACS URL: <console URL>/sso/{org.slug}/saml/acs")
    else:
        click.echo(f"redirect URI: <console URL>/sso/{org.slug}/oidc/callback")
    click.echo(f"configured {provider.protocol} single sign-on for {org.slug} "
               f"(idp {provider.saml_entity_id or provider.oidc_issuer})")


@sso_cli.command("saml")
@click.option("--org", "org_slug", required=True, help="Slug of the organisation.")
@click.option("--metadata-url", default=None, help="The IdP's metadata URL.")
@click.option("--metadata-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The IdP's metadata file.")
@click.option("--idp-initiated/--no-idp-initiated", default=None,
              help="Accept responses we did not ask for (off by default).")
@_sso_options
def sso_saml(org_slug: str, metadata_url: str | None, metadata_file: str | None, idp_initiated: bool | None,
             domains, default_role, groups, email_attribute, name_attribute, groups_attribute) -> None:
    """Configure SAML 2.0 single sign-on from the IdP's metadata."""
    from app.services.sso import config as sso_config

    if bool(metadata_url) == bool(metadata_file):
        raise click.UsageError("Give exactly one of --metadata-url or --metadata-file.")
    try:
        org = accounts.get_org_by_slug(org_slug)
        if metadata_url:
            idp = sso_config.parse_metadata(sso_config.fetch_metadata(metadata_url), "metadata_url")
        else:
            with open(metadata_file, "rb") as handle:
                idp = sso_config.parse_metadata(handle.read(), "metadata_file")
        policy = _sso_policy(domains, default_role, groups, email_attribute, name_attribute, groups_attribute,
                             idp_initiated)
        provider = sso_config.configure_saml(org, CLI_ACTOR, idp, policy)
    except DomainError as exc:
        _fail(exc)
    _sso_result(org, provider)


@sso_cli.command("oidc")
@click.option("--org", "org_slug", required=True, help="Slug of the organisation.")
@click.option("--issuer", required=True, help="Issuer URL (discovery at /.well-known/openid-configuration).")
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, help="Stored encrypted; never shown again.")
@click.option("--scopes", default=None, help='Space-separated, default "openid email profile".')
@_sso_options
def sso_oidc(org_slug: str, issuer: str, client_id: str, client_secret: str, scopes: str | None,
             domains, default_role, groups, email_attribute, name_attribute, groups_attribute) -> None:
    """Configure OpenID Connect single sign-on."""
    from app.services.sso import config as sso_config

    try:
        org = accounts.get_org_by_slug(org_slug)
        policy = _sso_policy(domains, default_role, groups, email_attribute, name_attribute, groups_attribute)
        provider = sso_config.configure_oidc(
            org, CLI_ACTOR, sso_config.OidcIdp(issuer=issuer, client_id=client_id, client_secret=client_secret,
                                               scopes=scopes), policy)
    except DomainError as exc:
        _fail(exc)
    _sso_result(org, provider)


def init_app(app: Flask) -> None:
    for command in (orgs_cli, users_cli, jobs_cli, api_keys_cli, sso_cli, import_cli, worker):
        app.cli.add_command(command)
