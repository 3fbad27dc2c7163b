"""The authorization code flow driven by Authlib, the client library of the seed's Flask
guide: discovery, PKCE, login and consent pages, ID token validation (CodeIDToken checks
iss, aud, exp, nonce and at_hash), UserInfo, refresh and RP-initiated logout."""

import re
import secrets
from urllib.parse import parse_qs, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken

REDIRECT_URI = "http://127.0.0.1:9000/callback"


def hidden(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


def browser_login(browser, authorization_url, username="alice", password="alice-password"):
    """Walks the login and consent pages like a person would; returns the final redirect."""
    page = browser.get(authorization_url, allow_redirects=False)
    assert page.status_code == 200, page.text
    base = authorization_url.split("/authorize")[0]
    response = browser.post(
        base + "/login",
        data={
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
            "username": username,
            "password": password,
        },
        allow_redirects=False,
    )
    if response.status_code == 200:
        response = browser.post(
            base + "/consent",
            data={
                "interaction": hidden(response.text, "interaction"),
                "csrf_token": hidden(response.text, "csrf_token"),
                "decision": "allow",
            },
            allow_redirects=False,
        )
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def new_client(metadata, scope="openid profile email roles offline_access"):
    return OAuth2Session(
        client_id="webapp",
        client_secret="webapp-secret",
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ), metadata


def test_authlib_code_flow_with_pkce_id_token_userinfo_refresh_and_logout(provider, metadata):
    client, _ = new_client(metadata)
    code_verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    authorization_url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    browser = requests.Session()
    callback = browser_login(browser, authorization_url)
    params = parse_qs(urlparse(callback).query)
    assert params["state"] == [state]
    assert params["iss"] == [provider["issuer"]], "RFC 9207"

    token = client.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=code_verifier
    )
    assert token["token_type"] == "Bearer"
    assert "refresh_token" in token

    jwks = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": provider["issuer"]}, "aud": {"essential": True, "value": "webapp"}},
        claims_params={"nonce": nonce, "access_token": token["access_token"]},
    )
    claims.validate()
    assert claims["resource_access"]["webapp"]["roles"] == ["admin", "viewer"]
    assert claims["preferred_username"] == "alice"

    userinfo = client.get(metadata["userinfo_endpoint"]).json()
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["email"] == "alice@example.com"

    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]

    logout = browser.get(
        metadata["end_session_endpoint"],
        params={"id_token_hint": token["id_token"], "post_logout_redirect_uri": "http://127.0.0.1:9000/", "state": "bye"},
        allow_redirects=False,
    )
    assert logout.status_code == 303
    assert logout.headers["Location"] == "http://127.0.0.1:9000/?state=bye"
    silent_url, _ = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48), prompt="none"
    )
    silent = browser.get(silent_url, allow_redirects=False)
    assert parse_qs(urlparse(silent.headers["Location"]).query)["error"] == ["login_required"]


def test_rfc6749_4_1_2_reused_code_is_refused_with_invalid_grant(provider, metadata):
    client, _ = new_client(metadata, scope="openid")
    code_verifier = secrets.token_urlsafe(48)
    authorization_url, _ = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=code_verifier)
    callback = browser_login(requests.Session(), authorization_url)
    code = parse_qs(urlparse(callback).query)["code"][0]
    first = requests.post(
        metadata["token_endpoint"],
        auth=("webapp", "webapp-secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": code_verifier},
        timeout=10,
    )
    assert first.status_code == 200
    second = requests.post(
        metadata["token_endpoint"],
        auth=("webapp", "webapp-secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "code_verifier": code_verifier},
        timeout=10,
    )
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
