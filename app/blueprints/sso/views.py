"""Public single sign-on routes (DESIGN §5): start a login, SAML metadata / ACS / SLS, the OIDC callback.

Thin: the protocol work is in app/services/sso. The ACS and SLS are the CSRF-exempt views: they take the IdP's
cross-site POSTs, protected instead by the signed messages, the request IDs we remember server-side and the replay
cache. The ACS signs nobody in: the same-site finish step does, only in the browser that started the login.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.blueprints.helpers import safe_next
from app.errors import NotFound
from app.extensions import csrf, db
from app.models import IdentityProvider, Organization, User
from app.security import public
from app.security.tenancy import SESSION_KEY, restrict_session
from app.services import accounts
from app.services.sso import config as sso_config
from app.services.sso import login as sso_login
from app.services.sso import saml, state
from app.services.sso.identity import SsoIdentity, SsoRefused

bp = Blueprint("sso", __name__, url_prefix="/sso")

FLOW_KEY = "sso_oidc_flow"
LOGIN_KEY = "sso_login"  # how the current session signed in, for single logout
SAML_REQUESTS_KEY = "sso_saml_requests"  # AuthnRequest IDs this browser started (binds the answer to it)
SAML_REQUESTS_KEPT = 5
SAML_FINISH_TTL_SECONDS = 120
NOT_BOUND = "This sign-in was not started in this browser. Please start again from the sign-in page."


def continue_to(url: str, message: str = "Continuing to your identity provider…"):
    """Answer a form POST that must lead off-site: CSP form-action 'self' blocks cross-origin redirects of a form
    submission in Chromium, so hand over with a meta refresh (and a plain link)."""
    return render_template("sso/continue.html", url=url, message=message)


def http_request() -> saml.HttpRequest:
    """The request as python3-saml needs it; scheme and host are the public ones (ProxyFix, PROXY_FIX_HOPS)."""
    return saml.HttpRequest(
        base_url=request.host_url.rstrip("/"), path=request.path, args=request.args.to_dict(),
        form=request.form.to_dict(), query_string=request.query_string.decode("latin-1"),
    )


def org_and_provider(slug: str) -> tuple[Organization, IdentityProvider | None]:
    try:
        org = accounts.get_org_by_slug(slug)
    except NotFound:
        abort(404)
    return org, sso_config.get_provider(org)


def refused(org: Organization | None, exc: SsoRefused, protocol: str, *, audited: bool = False):
    """Show the plain refusal; audit it unless ``complete_login`` already did."""
    if org is not None and not audited:
        db.session.rollback()
        sso_login.record_refusal(org, exc, protocol=protocol, ip_address=request.remote_addr)
    return render_template("sso/refused.html", message=exc.message), 403


def oidc_redirect_uri(org: Organization) -> str:
    return url_for("sso.oidc_callback", org=org.slug, _external=True)


def finish(org: Organization, provider: IdentityProvider, identity: SsoIdentity, *, protocol: str, purpose: str,
           next_path: str | None, logout_data: dict | None = None):
    """End of both protocols: show the test result, or sign the user in to ``org``."""
    if purpose == "test":
        try:
            email, role = sso_login.check_identity(org, provider, identity)
            outcome = {"email": email, "role": role.value, "refusal": None}
        except SsoRefused as exc:
            outcome = {"email": identity.email, "role": None, "refusal": exc.message}
        return render_template("sso/test_result.html", org=org, identity=identity, outcome=outcome,
                               protocol=protocol)
    try:
        user = sso_login.complete_login(org, provider, identity, protocol=protocol, ip_address=request.remote_addr)
    except SsoRefused as exc:
        return refused(org, exc, protocol, audited=True)
    if current_user.is_authenticated:
        logout_user()
    session.clear()
    login_user(user)
    # The IdP of ``org`` vouches for this user in ``org`` only: its admins must not reach the user's other
    # organisations (another organisation needs its own IdP or a password sign-in).
    restrict_session([org.id], sso_org_id=org.id)
    session[SESSION_KEY] = org.id
    session[LOGIN_KEY] = {"org": org.slug, "protocol": protocol, **(logout_data or {})}
    return redirect(safe_next(next_path))


@bp.get("/<org>/login")
@public
def login(org: str):
    """Start a login at the organisation's identity provider (home-realm discovery lands here too)."""
    organisation, provider = org_and_provider(org)
    next_path = safe_next(request.args.get("next"))
    protocol = provider.protocol if provider else "saml"
    try:
        return redirect(begin(organisation, provider, purpose="login", next_path=next_path))
    except SsoRefused as exc:
        return refused(organisation, exc, protocol)


def begin(org: Organization, provider: IdentityProvider | None, *, purpose: str, next_path: str | None,
          requested_by: int | None = None) -> str:
    """The URL that starts a login (or a Test connection) at the IdP, whichever protocol it speaks."""
    ttl = current_app.config["SSO_REQUEST_TTL_SECONDS"]
    if provider is not None and provider.enabled and provider.protocol == "oidc":
        from app.services.sso import oidc

        redirect_uri = oidc_redirect_uri(org)
        url, pending = oidc.begin_login(sso_config.oidc_settings(provider), redirect_uri)
        session[FLOW_KEY] = state.put_flow(
            {"org": org.slug, "pending": pending, "purpose": purpose, "next": next_path, "by": requested_by}, ttl
        )
        return url
    url, request_id = saml.begin_login(org, provider, http_request(), purpose=purpose, next_path=next_path,
                                       requested_by=requested_by, ttl_seconds=ttl)
    session[SAML_REQUESTS_KEY] = [*session.get(SAML_REQUESTS_KEY, []), request_id][-SAML_REQUESTS_KEPT:]
    return url


@bp.get("/<org>/saml/metadata")
@public
def saml_metadata(org: str):
    organisation, provider = org_and_provider(org)
    if provider is None or not provider.sp_certificate:
        abort(404)
    xml = saml.sp_metadata(organisation, provider, request.host_url)
    return Response(xml, mimetype="application/samlmetadata+xml")


@bp.post("/<org>/saml/acs")
@csrf.exempt
@public
def saml_acs(org: str):
    """Verify the IdP's cross-site POST, then hand over to a same-site GET (``saml_finish``) that signs in.

    The POST arrives without our SameSite=Lax session cookie, so it cannot tell which browser started the login;
    signing in here would let an attacker post their own response from the victim's browser (login CSRF). The
    verified login waits server-side under a one-time token; the 303 GET carries the session cookie.
    """
    organisation, provider = org_and_provider(org)
    try:
        result = saml.finish_login(organisation, provider, http_request(),
                                   skew_seconds=current_app.config["SAML_CLOCK_SKEW_SECONDS"])
        if result.purpose == "test":  # signs nobody in: show what the IdP sent
            return finish(organisation, provider, result.identity, protocol="saml", purpose="test",
                          next_path=None)
        token = state.put_verified_login(organisation.id, result.to_json(), SAML_FINISH_TTL_SECONDS)
    except SsoRefused as exc:
        return refused(organisation, exc, "saml")
    return redirect(url_for("sso.saml_finish", org=organisation.slug, token=token), 303)


@bp.get("/<org>/saml/finish")
@public
def saml_finish(org: str):
    """Sign in with the login the ACS verified, only in the browser whose session started that AuthnRequest.

    An IdP-initiated login (when the organisation allows it) answers no request and cannot be bound to a browser.
    """
    organisation, provider = org_and_provider(org)
    try:
        data = state.take_verified_login(organisation.id, request.args.get("token"))
        if data is None:
            raise SsoRefused("no_pending_login", "This sign-in link has expired or was already used. "
                                                 "Please start again.")
        result = saml.SamlLogin.from_json(data)
        if provider is None or provider.protocol != "saml":
            raise SsoRefused("not_configured", saml.NOT_CONFIGURED)
        if result.request_id is not None:
            if result.request_id not in session.get(SAML_REQUESTS_KEY, []):
                raise SsoRefused("not_bound", NOT_BOUND, "the response answers a request of another browser")
        elif not provider.allow_idp_initiated:
            raise SsoRefused("unsolicited", saml.REFUSED, "IdP-initiated login is off for this organisation")
    except SsoRefused as exc:
        return refused(organisation, exc, "saml")
    return finish(organisation, provider, result.identity, protocol="saml", purpose="login",
                  next_path=result.next_path,
                  logout_data={"name_id": result.identity.subject, "name_id_format": result.name_id_format,
                               "session_index": result.session_index})


@bp.route("/<org>/saml/sls", methods=["GET", "POST"])
@csrf.exempt
@public
def saml_sls(org: str):
    """Single logout: the IdP's answer to our LogoutRequest, or its own LogoutRequest (signs out the session it
    names).

    Redirect binding (GET) and POST binding (the IdP's auto-submitted form, cross-site like the ACS, hence also
    CSRF-exempt: a LogoutResponse counts only as the answer to a LogoutRequest we sent and remember server-side).
    """
    organisation, provider = org_and_provider(org)
    http = http_request()
    if request.method == "POST":  # python3-saml reads logout messages from the query data
        http = saml.HttpRequest(base_url=http.base_url, path=http.path, args=http.form)
    try:
        logout = saml.process_logout(organisation, provider, http, post_binding=request.method == "POST")
    except SsoRefused as exc:
        return refused(organisation, exc, "saml")
    signed_in = session.get(LOGIN_KEY) or {}
    # The IdP's own LogoutRequest ends only the session it names (this org's IdP, this NameID).
    if logout.name_id is None or (signed_in.get("org") == organisation.slug
                                  and signed_in.get("name_id") == logout.name_id):
        if current_user.is_authenticated:
            accounts.record_logout(current_user._get_current_object(), organisation, request.remote_addr)
            logout_user()
        session.clear()
    if logout.url:
        return redirect(logout.url)
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/<org>/oidc/callback")
@public
def oidc_callback(org: str):
    organisation, provider = org_and_provider(org)
    flow = None
    try:
        flow = state.take_flow(session.pop(FLOW_KEY, None))
        if flow is None or flow.get("org") != organisation.slug:
            raise SsoRefused("no_pending_login", "This sign-in link has expired or was already used. "
                                                 "Please start again.")
        if provider is None or provider.protocol != "oidc":
            raise SsoRefused("not_configured", saml.NOT_CONFIGURED)
        from app.services.sso import oidc

        identity = oidc.finish_login(sso_config.oidc_settings(provider), flow["pending"], request.args.to_dict(),
                                     oidc_redirect_uri(organisation))
    except SsoRefused as exc:
        return refused(organisation, exc, "oidc")
    return finish(organisation, provider, identity, protocol="oidc", purpose=flow.get("purpose", "login"),
                  next_path=flow.get("next"))


def single_logout_url(user: User) -> str | None:
    """Where to send a SAML-signed-in user at sign-out so the IdP ends its session too (None: no SLO)."""
    data = session.get(LOGIN_KEY) or {}
    if data.get("protocol") != "saml" or not data.get("name_id"):
        return None
    try:
        organisation, provider = org_and_provider(data["org"])
    except Exception:  # noqa: BLE001 - the org is gone: a local sign-out is all we can do
        return None
    if provider is None:
        return None
    try:
        return saml.begin_logout(organisation, provider, http_request(), name_id=data["name_id"],
                                 name_id_format=data.get("name_id_format"), session_index=data.get("session_index"))
    except SsoRefused:
        return None
