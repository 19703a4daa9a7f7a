"""OIDC sign-in refusals, one per test, against a fake provider at the HTTP boundary (tests/integration/sso/oidc_fake).

Each test first lets the provider behave (begin_login -> the provider's authorize endpoint -> callback arguments),
then bends exactly one thing a hostile or broken provider or browser could bend, and checks that finish_login refuses
with that refusal's own reason code and a plain message that names no secret, token, key or URL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc.jwk import RSAKey

from app.services.sso import OidcSettings, SsoRefused
from app.services.sso.oidc import PENDING_MAX_AGE, begin_login, finish_login
from tests.integration.sso.oidc_fake import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    FakeProvider,
    fake_provider_server,
    new_key,
)


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return new_key("key-1")


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    """A key the provider never published: what a forger would sign with."""
    return new_key("key-rogue")


@pytest.fixture(scope="module")
def provider_server() -> Iterator[Callable[[RSAKey], FakeProvider]]:
    with fake_provider_server() as fresh:
        yield fresh


@pytest.fixture
def op(provider_server: Callable[[RSAKey], FakeProvider], signing_key: RSAKey) -> FakeProvider:
    """A fresh provider (own issuer, so none of the per-process caches carry over from another test)."""
    return provider_server(signing_key)


@pytest.fixture
def settings(op: FakeProvider) -> OidcSettings:
    return OidcSettings(issuer=op.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                        scopes=("openid", "email", "profile"))


def start(op: FakeProvider, settings: OidcSettings) -> tuple[dict, dict[str, str]]:
    """begin_login, then the provider's authorize step as a browser would follow it: (pending, callback args)."""
    url, pending = begin_login(settings, REDIRECT_URI)
    return pending, op.authorize(url)


def refused(reason: str, call: Callable[[], object], op: FakeProvider) -> SsoRefused:
    with pytest.raises(SsoRefused) as caught:
        call()
    error = caught.value
    assert error.reason == reason
    for secret in (CLIENT_SECRET, op.issuer, "Traceback", "eyJ"):
        assert secret not in error.message
    assert error.message.endswith(".")
    return error


def refused_login(reason: str, op: FakeProvider, settings: OidcSettings) -> SsoRefused:
    """A whole login against the provider as the test has bent it; it must end in this refusal."""
    pending, args = start(op, settings)
    return refused(reason, lambda: finish_login(settings, pending, args, REDIRECT_URI), op)


# --- the behaving provider, so that each refusal below is caused by its one change ----------------------------------


def test_a_behaving_provider_signs_the_user_in_with_pkce_state_and_nonce(op: FakeProvider, settings: OidcSettings):
    url, pending = begin_login(settings, REDIRECT_URI)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(f"{op.issuer}/authorize?")
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == pending["state"] and query["nonce"] == pending["nonce"]
    assert len(pending["state"]) >= 22 and len(pending["nonce"]) >= 22  # >= 128 bits, base64url
    assert pending["state"] != pending["nonce"]
    assert "code_verifier" not in query and query["code_challenge"] != pending["code_verifier"]
    assert set(query["scope"].split()) == {"openid", "email", "profile"}

    identity = finish_login(settings, pending, op.authorize(url), REDIRECT_URI)

    assert identity.subject == "user-42"
    assert identity.email == "ada@example.com"
    assert identity.name == "Ada Lovelace"
    assert identity.groups == ("interchange-editors",)
    assert identity.attributes["groups"] == ["interchange-editors"]
    assert "nonce" not in identity.attributes
    [token_request] = op.token_requests
    assert token_request["code_verifier"] == pending["code_verifier"]
    assert "client_secret" not in token_request  # client_secret_basic: the secret travels in the header only


def test_a_provider_that_only_takes_client_secret_post_gets_it(op: FakeProvider, settings: OidcSettings):
    op.auth_method = "client_secret_post"
    pending, args = start(op, settings)

    assert finish_login(settings, pending, args, REDIRECT_URI).email == "ada@example.com"
    assert op.token_requests[0]["client_secret"] == CLIENT_SECRET


def test_wrong_client_credentials_are_reported_plainly(op: FakeProvider, settings: OidcSettings):
    wrong = OidcSettings(issuer=op.issuer, client_id=CLIENT_ID, client_secret="not-the-secret", scopes=("openid",))
    pending, args = start(op, wrong)

    error = refused("token_exchange_failed", lambda: finish_login(wrong, pending, args, REDIRECT_URI), op)
    assert "not-the-secret" not in error.message and error.detail == "token endpoint: invalid_client"


def test_discovery_is_fetched_once_per_process_not_per_login(op: FakeProvider, settings: OidcSettings):
    for _ in range(3):
        begin_login(settings, REDIRECT_URI)
    assert op.discovery_hits == 1


def test_claims_missing_from_the_id_token_come_from_userinfo(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"email": None, "name": None, "groups": None}
    op.userinfo = {"email": "Grace@Example.com", "name": "Grace Hopper", "groups": ["admins", "ops"]}
    pending, args = start(op, settings)

    identity = finish_login(settings, pending, args, REDIRECT_URI)

    assert (identity.email, identity.name, identity.groups) == ("grace@example.com", "Grace Hopper", ("admins", "ops"))


def test_claim_names_come_from_the_organisation_settings(op: FakeProvider, signing_key: RSAKey):
    op.id_token_overrides = {"upn": "linus@example.com", "display": "Linus", "roles": "interchange-admins"}
    custom = OidcSettings(issuer=op.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scopes=("openid",),
                          email_claim="upn", name_claim="display", groups_claim="roles")
    pending, args = start(op, custom)

    identity = finish_login(custom, pending, args, REDIRECT_URI)

    assert (identity.email, identity.name, identity.groups) == ("linus@example.com", "Linus", ("interchange-admins",))


# --- refusals before the person leaves for the provider ---------------------------------------------------------------


def test_a_discovery_document_about_another_issuer_is_refused(op: FakeProvider, settings: OidcSettings):
    op.discovery_overrides = {"issuer": "https://idp.attacker.example"}

    error = refused("discovery_failed", lambda: begin_login(settings, REDIRECT_URI), op)
    assert "idp.attacker.example" in error.detail


def test_a_plain_http_issuer_off_loopback_is_refused_without_a_request(op: FakeProvider):
    remote = OidcSettings(issuer="http://idp.example.com", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                          scopes=("openid",))

    refused("insecure_issuer", lambda: begin_login(remote, REDIRECT_URI), op)


# --- refusals at the callback, before any request to the provider ---------------------------------------------------


def test_state_mismatch_is_refused(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)
    args["state"] = "an-attackers-state-" + args["state"][:10]

    refused("state_mismatch", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert op.token_requests == []  # the code was never redeemed


def test_a_callback_without_a_pending_login_is_refused(op: FakeProvider, settings: OidcSettings):
    _, args = start(op, settings)

    refused("no_pending_login", lambda: finish_login(settings, None, args, REDIRECT_URI), op)
    assert op.token_requests == []


def test_an_error_from_the_identity_provider_is_refused_without_echoing_its_text(
    op: FakeProvider, settings: OidcSettings
):
    pending, _ = start(op, settings)
    args = {"error": "access_denied", "error_description": "<b>user-42 is locked</b>", "state": pending["state"]}

    error = refused("idp_error", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert "access_denied" in error.message
    assert "locked" not in error.message and "<b>" not in error.message
    assert error.detail == "access_denied: <b>user-42 is locked</b>"  # for the audit log only
    assert op.token_requests == []


def test_a_login_older_than_ten_minutes_is_refused(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)
    pending["created_at"] = time.time() - PENDING_MAX_AGE - 1

    refused("login_expired", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert op.token_requests == []


def test_a_callback_naming_another_issuer_is_refused(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)
    args["iss"] = "https://idp.attacker.example"

    refused("issuer_mismatch", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert op.token_requests == []


def test_a_callback_without_the_issuer_the_provider_always_sends_is_refused(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)
    del args["iss"]

    refused("issuer_mismatch", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert op.token_requests == []


def test_a_callback_on_another_redirect_uri_is_refused(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)

    other = "http://127.0.0.1:5000/sso/other-org/oidc/callback"
    refused("redirect_mismatch", lambda: finish_login(settings, pending, args, other), op)


# --- refusals of the ID token ----------------------------------------------------------------------------------------


def test_nonce_mismatch_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"nonce": "a-nonce-from-another-login"}
    refused_login("nonce_mismatch", op, settings)


def test_an_id_token_without_a_nonce_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"nonce": None}
    refused_login("nonce_mismatch", op, settings)


def test_wrong_audience_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"aud": "another-client-of-the-same-provider"}
    refused_login("wrong_audience", op, settings)


def test_several_audiences_without_our_client_as_azp_are_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}
    refused_login("wrong_azp", op, settings)


def test_several_audiences_with_our_client_as_azp_are_accepted(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"aud": [CLIENT_ID, "another-client"], "azp": CLIENT_ID}
    pending, args = start(op, settings)

    assert finish_login(settings, pending, args, REDIRECT_URI).email == "ada@example.com"


def test_expired_id_token_is_refused(op: FakeProvider, settings: OidcSettings):
    now = int(time.time())
    op.id_token_overrides = {"iat": now - 3600, "exp": now - 600}
    refused_login("token_expired", op, settings)


def test_an_id_token_issued_in_the_future_is_refused(op: FakeProvider, settings: OidcSettings):
    now = int(time.time())
    op.id_token_overrides = {"iat": now + 3600, "exp": now + 7200}
    refused_login("token_not_yet_valid", op, settings)


def test_wrong_issuer_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"iss": op.issuer + "/"}  # exact match only: a trailing slash is another issuer
    refused_login("wrong_issuer", op, settings)


def test_bad_signature_is_refused(op: FakeProvider, settings: OidcSettings, signing_key: RSAKey, other_key: RSAKey):
    op.sign_with, op.kid = other_key, signing_key.kid  # claims to be the provider's key, signed by another
    refused_login("bad_signature", op, settings)


def test_a_token_signed_by_an_unknown_key_is_refused(op: FakeProvider, settings: OidcSettings, other_key: RSAKey):
    op.sign_with = other_key
    refused_login("unknown_key", op, settings)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_unsigned_and_symmetric_tokens_are_refused(op: FakeProvider, settings: OidcSettings, alg: str):
    op.alg = alg  # HS256 is signed with the provider's public key as the HMAC secret (key confusion)
    refused_login("bad_algorithm", op, settings)


def test_userinfo_about_another_subject_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"email": None}
    op.userinfo = {"sub": "someone-else", "email": "mallory@example.com"}
    refused_login("userinfo_subject_mismatch", op, settings)


def test_an_identity_without_email_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"email": None}
    refused_login("no_email", op, settings)


def test_an_unverified_email_is_refused(op: FakeProvider, settings: OidcSettings):
    op.id_token_overrides = {"email_verified": False}
    refused_login("email_not_verified", op, settings)


def test_a_replayed_code_is_refused_by_the_provider_and_reported_plainly(op: FakeProvider, settings: OidcSettings):
    pending, args = start(op, settings)
    finish_login(settings, pending, args, REDIRECT_URI)

    refused("token_exchange_failed", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)


# --- signing keys: re-fetched on an unknown key id, at most once a minute ---------------------------------------------


def test_jwks_is_refetched_on_an_unknown_kid_at_most_once_a_minute(
    op: FakeProvider, settings: OidcSettings, other_key: RSAKey
):
    pending, args = start(op, settings)
    finish_login(settings, pending, args, REDIRECT_URI)
    assert op.jwks_hits == 1

    # The provider rotates its keys: the first token with the new key id makes us re-fetch the JWKS, and it verifies.
    rotated = new_key("key-2")
    op.published, op.sign_with = [*op.published, rotated], rotated
    pending, args = start(op, settings)
    assert finish_login(settings, pending, args, REDIRECT_URI).email == "ada@example.com"
    assert op.jwks_hits == 2

    # Known key ids cost no fetch.
    pending, args = start(op, settings)
    finish_login(settings, pending, args, REDIRECT_URI)
    assert op.jwks_hits == 2

    # Within the same minute, another unknown key id is refused without asking the provider again, even though the
    # provider now publishes it: a flood of made-up key ids cannot make us hammer the provider.
    op.published, op.sign_with = [*op.published, other_key], other_key
    pending, args = start(op, settings)
    refused("unknown_key", lambda: finish_login(settings, pending, args, REDIRECT_URI), op)
    assert op.jwks_hits == 2
