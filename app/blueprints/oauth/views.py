"""OAuth 2.0 endpoints: the consent page, token, revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414).

The consent page needs a console session. Requests that cannot be trusted to
redirect (unknown app, unregistered redirect URI) are answered on our own page,
never sent back to the given URI (RFC 6749 §4.1.2.1); the others get their error
at the app's redirect URI, with ``iss`` (RFC 9207). The machine endpoints
authenticate the app themselves, so they are public and exempt from CSRF.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user

from app.blueprints.oauth.forms import ConsentForm
from app.errors import Forbidden
from app.extensions import csrf, db
from app.models import Organization
from app.security import login_only, oauth_server, public, rate_limits
from app.security.oauth_server import consent_page_policy, server, with_issuer
from app.security.scopes import SCOPES
from app.services import oauth

bp = Blueprint("oauth", __name__)


@bp.record_once
def _bind_server(state) -> None:
    oauth_server.init_app(state.app)


def _error_page(status: int, title: str, detail: str):
    return render_template("oauth/error.html", title=title, detail=detail), status


def _refused(error: OAuth2Error):
    if error.redirect_uri:  # the app and its redirect URI are verified: the error goes back to the app
        return with_issuer(server.handle_error_response(None, error))
    return _error_page(400, "This app's request cannot be accepted", error.description or error.error)


def _consent_page(grant, form: ConsentForm):
    client = grant.client.row
    try:
        oauth.approving_membership(client, current_user, grant.request.scope)
    except Forbidden as exc:
        return _error_page(403, f"You cannot approve {client.name}", exc.message)
    page = render_template(
        "oauth/consent.html", client=client, org=db.session.get(Organization, client.organization_id),
        scopes=[(s, SCOPES[s]) for s in grant.request.scope.split()], redirect_uri=grant.redirect_uri, form=form,
    )
    return page, 200, {"Content-Security-Policy": consent_page_policy(grant.redirect_uri)}


@bp.get("/oauth/authorize")
@login_only
def authorize():
    if not request.args:
        return render_template("oauth/about.html")
    try:
        grant = server.get_consent_grant(end_user=current_user._get_current_object())
    except OAuth2Error as error:
        return _refused(error)
    return _consent_page(grant, ConsentForm())


@bp.post("/oauth/authorize")
@login_only
def decide():
    form = ConsentForm()
    user = current_user._get_current_object()
    try:
        grant = server.get_consent_grant(end_user=user)
    except OAuth2Error as error:
        return _refused(error)
    if not form.validate_on_submit() or not (form.approve.data or form.deny.data):
        return _consent_page(grant, form)
    if form.approve.data:
        try:
            oauth.approving_membership(grant.client.row, user, grant.request.scope)
        except Forbidden as exc:
            return _error_page(403, f"You cannot approve {grant.client.row.name}", exc.message)
    grant_user = user if form.approve.data else None  # None: denied, answered with access_denied
    return with_issuer(server.create_authorization_response(grant=grant, grant_user=grant_user))


def _protocol_error(error: OAuth2Error):
    status, body, headers = error()
    return jsonify(dict(body)), status, dict(headers)


def _rate_limit_token_requests():
    """Count the request per address and per app (before authenticating it, so secret guessing is limited).

    These limits cover the token endpoint only; API calls count against the app's own API rate limit.
    """
    client_id, _ = extract_basic_authorization(request.headers)
    client_id = (client_id or request.form.get("client_id") or "-")[:80]
    config = current_app.config
    try:
        rate_limits.enforce(f"oauth-token-addr:{request.remote_addr}", config["OAUTH_TOKEN_ADDRESS_RATE_LIMIT"])
        rate_limits.enforce(f"oauth-token:{client_id}", config["OAUTH_TOKEN_RATE_LIMIT"])
    except rate_limits.RateLimited as exc:
        body = {"error": "slow_down", "error_description": exc.message}
        return jsonify(body), 429, {"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"}
    return None


@bp.post("/oauth/token")
@public
def token():
    if (limited := _rate_limit_token_requests()) is not None:
        return limited
    try:
        return server.create_token_response()
    except OAuth2Error as error:  # raised before authlib's own handling, e.g. plain http from outside
        return _protocol_error(error)


@bp.post("/oauth/revoke")
@public
def revoke():
    try:
        return server.create_endpoint_response("revocation")
    except OAuth2Error as error:
        return _protocol_error(error)


@bp.post("/oauth/introspect")
@public
def introspect():
    try:
        return server.create_endpoint_response("introspection")
    except OAuth2Error as error:
        return _protocol_error(error)


@bp.get("/.well-known/oauth-authorization-server")
@public
def metadata():
    return jsonify(oauth_server.metadata())


for _view in (token, revoke, introspect):
    csrf.exempt(_view)
