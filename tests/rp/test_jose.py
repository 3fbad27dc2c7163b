"""Tokens verify with independent JOSE implementations against the published JWKS."""

import jwt
import requests
from authlib.jose import JsonWebKey, JsonWebToken


def client_credentials_token(metadata, client_id="m2m", secret="m2m-secret"):
    response = requests.post(
        metadata["token_endpoint"],
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_rfc9068_access_token_verifies_with_pyjwt_against_the_jwks(provider, metadata):
    token = client_credentials_token(metadata)
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        audience="reports-api",
        issuer=provider["issuer"],
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
    )
    assert claims["client_id"] == "m2m"
    assert claims["sub"] == "m2m"
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


def test_rfc9068_access_token_verifies_with_authlib_against_the_jwks(provider, metadata):
    token = client_credentials_token(metadata)
    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    claims = JsonWebToken(["RS256"]).decode(token, JsonWebKey.import_key_set(jwks))
    claims.validate()
    assert claims["iss"] == provider["issuer"]


def test_rfc7517_every_published_key_imports_as_a_public_key(metadata):
    jwks = requests.get(metadata["jwks_uri"], timeout=10).json()
    assert {key["kty"] for key in jwks["keys"]} == {"RSA", "EC", "OKP"}
    for key in jwks["keys"]:
        imported = jwt.PyJWK(key)
        assert imported.key_id == key["kid"]
        assert "d" not in key


def test_tampered_token_fails_independent_verification(metadata):
    token = client_credentials_token(metadata)
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    signing_key = jwt.PyJWKClient(metadata["jwks_uri"]).get_signing_key_from_jwt(token)
    try:
        jwt.decode(tampered, signing_key.key, algorithms=["RS256"], audience="reports-api")
    except jwt.InvalidSignatureError:
        return
    raise AssertionError("a tampered token verified")


def test_generated_secret_printed_by_dev_works(provider, metadata):
    token = client_credentials_token(metadata, "generated", provider["generated"]["generated"])
    assert token.count(".") == 2
