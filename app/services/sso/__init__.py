"""Single sign-on per organisation: SAML 2.0 (saml.py) and OpenID Connect (oidc.py).

Both protocols end in an ``SsoIdentity`` that the shared sign-in completion turns into a user and a membership,
so JIT provisioning, role mapping, refusals and the audit trail behave the same whichever protocol an IdP speaks.
"""

from app.services.sso.identity import OidcSettings, SsoIdentity, SsoRefused

__all__ = ["OidcSettings", "SsoIdentity", "SsoRefused"]
