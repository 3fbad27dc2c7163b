"""Portcullis as the Kubernetes API server's OIDC issuer, and as the IdP of Argo CD, Grafana
and oauth2-proxy (docs/kubernetes-authentication.md): what each of them reads from a real
ID token of `portcullis dev`.

A Go API server cannot run here, so the sample AuthenticationConfiguration
(docs/examples/authentication-configuration.yaml) is decoded strictly against a schema
written from its published Go types plus the cross-field rules of the API server's
validation, and its CEL rules and claim mappings are evaluated with cel-python on a real
token, the way the API server's JWT authenticator applies them.
"""

import base64
import hashlib
import json
import re
import secrets
import shutil
from urllib.parse import parse_qs, urlparse

import celpy
from celpy import celtypes
import jmespath
import jsonschema
import jwt
import pytest
import requests
import yaml

from conftest import ROOT, start_dev, stop_dev

CONFIG = ROOT / "docs/examples/authentication-configuration.yaml"
KUBECTL_CLIENT = ROOT / "docs/examples/kubectl-oidcclient.yaml"
SCHEMA = ROOT / "tests/rp/schemas/authentication-configuration-v1.json"
# kubectl's loopback redirect, on a port picked at run time (RFC 8252 section 7.3).
KUBECTL_REDIRECT = "http://127.0.0.1:41873/callback"


class StrictLoader(yaml.SafeLoader):
    """YAML as the API server's strict decoder reads it: a repeated key is an error."""


def _no_duplicates(loader, node, deep=False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = {key for key in keys if keys.count(key) > 1}
    if repeated:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {repeated}", node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_config(text):
    return yaml.load(text, Loader=StrictLoader)


def semantic_errors(config):
    """The cross-field rules of the API server's validation of JWT authenticators that a
    JSON schema does not express."""
    errors = []
    urls = [entry["issuer"]["url"] for entry in config["jwt"]]
    if len(set(urls)) != len(urls):
        errors.append("issuer urls must be unique")
    for entry in config["jwt"]:
        for rule in entry.get("claimValidationRules", []):
            if bool(rule.get("claim")) == bool(rule.get("expression")):
                errors.append("claimValidationRules: exactly one of claim and expression")
            if rule.get("expression") and "requiredValue" in rule:
                errors.append("claimValidationRules: requiredValue goes with claim")
        mappings = entry["claimMappings"]
        for name in ("username", "groups", "uid"):
            mapping = mappings.get(name)
            if mapping is None:
                continue
            if mapping.get("claim") and mapping.get("expression"):
                errors.append(f"{name}: claim and expression are mutually exclusive")
            if name == "username" and not (mapping.get("claim") or mapping.get("expression")):
                errors.append("username: claim or expression is required")
            if mapping.get("claim") and name != "uid" and "prefix" not in mapping:
                errors.append(f"{name}: prefix is required when claim is set")
            if mapping.get("expression") and "prefix" in mapping:
                errors.append(f"{name}: prefix can't be set when expression is set")
        keys = [extra["key"] for extra in mappings.get("extra", [])]
        if len(set(keys)) != len(keys):
            errors.append("extra keys must be unique")
    return errors


def validate(config):
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(config)
    assert semantic_errors(config) == []


def cel(expression, **variables):
    environment = celpy.Environment()
    program = environment.program(environment.compile(expression))
    result = program.evaluate({name: celpy.json_to_cel(value) for name, value in variables.items()})
    if isinstance(result, celpy.CELEvalError):
        raise result
    return native(result)


def native(value):
    """A CEL value as the plain Python value it stands for."""
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.ListType):
        return [native(item) for item in value]
    if isinstance(value, celtypes.MapType):
        return {str(key): native(item) for key, item in value.items()}
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.IntType):
        return int(value)
    return value


def authenticate(config, id_token, jwks):
    """What the API server's JWT authenticator does with `id_token` under `config`: the
    signature, `iss` and `aud`, the claim validation rules, the claim mappings and the user
    validation rules. Returns the user info or raises."""
    entry = config["jwt"][0]
    issuer = entry["issuer"]
    header = jwt.get_unverified_header(id_token)
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"]))
    claims = jwt.decode(
        id_token, key, algorithms=["RS256"], audience=issuer["audiences"], issuer=issuer["url"],
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )
    for rule in entry.get("claimValidationRules", []):
        assert cel(rule["expression"], claims=claims) is True, rule["message"]
    mappings = entry["claimMappings"]
    username = str(cel(mappings["username"]["expression"], claims=claims))
    groups = [str(g) for g in cel(mappings["groups"]["expression"], claims=claims)]
    uid = claims[mappings["uid"]["claim"]]
    extra = {e["key"]: [str(cel(e["valueExpression"], claims=claims))] for e in mappings.get("extra", [])}
    user = {"username": username, "uid": uid, "groups": groups, "extra": extra}
    for rule in entry.get("userValidationRules", []):
        assert cel(rule["expression"], user=user) is True, rule["message"]
    return user


def hidden(page, name):
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


def sign_in(metadata, params):
    """Alice signs in and consents in a cookie-keeping session; returns the callback URL."""
    browser = requests.Session()
    page = browser.get(metadata["authorization_endpoint"], params=params, allow_redirects=False)
    assert page.status_code == 200, page.text
    base = metadata["issuer"]
    response = browser.post(base + "/login", allow_redirects=False, data={
        "interaction": hidden(page.text, "interaction"), "csrf_token": hidden(page.text, "csrf_token"),
        "username": "alice", "password": "alice-password",
    })
    if response.status_code == 200:
        response = browser.post(base + "/consent", allow_redirects=False, data={
            "interaction": hidden(response.text, "interaction"), "csrf_token": hidden(response.text, "csrf_token"),
            "decision": "allow",
        })
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def tokens_for(metadata, client_id, redirect_uri, scope, secret=None):
    verifier, challenge = pkce()
    callback = sign_in(metadata, {
        "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
        "state": "st", "nonce": "n", "code_challenge": challenge, "code_challenge_method": "S256",
    })
    assert callback.startswith(redirect_uri + "?"), callback
    code = parse_qs(urlparse(callback).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    if secret is None:
        form["client_id"] = client_id
    response = requests.post(metadata["token_endpoint"], data=form, auth=(client_id, secret) if secret else None, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def cluster_idp(tmp_path_factory):
    """`portcullis dev` on the test fixtures plus the documented kubectl client."""
    manifests = tmp_path_factory.mktemp("manifests")
    for source in (ROOT / "tests/fixtures/manifests").iterdir():
        shutil.copy(source, manifests / source.name)
    shutil.copy(KUBECTL_CLIENT, manifests / "kubectl.yaml")
    process, info = start_dev(manifests)
    discovery_url = info["issuer"] + "/.well-known/openid-configuration"
    metadata = requests.get(discovery_url, timeout=10).json()
    yield {**info, "metadata": metadata, "discovery_url": discovery_url}
    stop_dev(process)


@pytest.fixture(scope="module")
def kubectl_tokens(cluster_idp):
    return tokens_for(cluster_idp["metadata"], "kubectl", KUBECTL_REDIRECT, "openid profile email groups offline_access")


def test_sample_authentication_configuration_decodes_strictly_and_validates():
    validate(load_config(CONFIG.read_text()))


@pytest.mark.parametrize("mutation, why", [
    ("audiences:\n        - kubectl", "audiences: []"),
    ("url: https://id.example.com", "url: http://id.example.com"),
    ("uid:\n        claim: sub", "uid:\n        claim: sub\n        prefix: x"),
    ("groups:\n        expression: \"claims.groups.map(g, 'portcullis:' + g)\"", "groups:\n        claim: groups"),
    ("username:\n        expression: \"'portcullis:' + claims.preferred_username\"",
     "username:\n        claim: preferred_username"),
    ("username:\n        expression: \"'portcullis:' + claims.preferred_username\"",
     "username:\n        expression: \"'portcullis:' + claims.preferred_username\"\n        prefix: x"),
    ("audienceMatchPolicy: MatchAny", "audienceMatchPolicy: MatchAll"),
    ("claimMappings:", "claimMapping:"),
    ("audienceMatchPolicy: MatchAny", "audienceMatchPolicy: MatchAny\n      audienceMatchPolicy: MatchAny"),
])
def test_validation_refuses_what_the_api_server_refuses(mutation, why):
    text = CONFIG.read_text()
    assert mutation in text
    with pytest.raises((jsonschema.ValidationError, AssertionError, yaml.YAMLError)):
        validate(load_config(text.replace(mutation, why, 1)))


def test_oidc_discovery_issuer_is_the_fetch_url_and_jwks_is_reachable(cluster_idp):
    metadata = cluster_idp["metadata"]
    assert cluster_idp["discovery_url"] == metadata["issuer"] + "/.well-known/openid-configuration"
    assert metadata["issuer"] == cluster_idp["issuer"], "no trailing-slash drift"
    assert not metadata["issuer"].endswith("/")
    assert "RS256" in metadata["id_token_signing_alg_values_supported"]
    jwks = requests.get(metadata["jwks_uri"], timeout=10)
    assert jwks.status_code == 200
    assert any(key["kty"] == "RSA" and key.get("use", "sig") == "sig" for key in jwks.json()["keys"])


def test_api_server_token_shape_rs256_iss_aud_exp_username_groups_email_verified(cluster_idp, kubectl_tokens):
    id_token = kubectl_tokens["id_token"]
    assert jwt.get_unverified_header(id_token)["alg"] == "RS256", "RS256 by default (OIDC Core 3.1.3.7)"
    claims = jwt.decode(id_token, options={"verify_signature": False})
    assert claims["iss"] == cluster_idp["issuer"]
    assert claims["aud"] in ("kubectl", ["kubectl"])
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int) and claims["exp"] > claims["iat"]
    assert claims["sub"] and claims["preferred_username"] == "alice" and claims["email"] == "alice@example.com"
    assert claims["groups"] == ["engineering"], "a JSON array of strings"
    assert claims["email_verified"] is True, "a JSON boolean, not a string"


def test_sample_configuration_authenticates_a_real_portcullis_id_token(cluster_idp, kubectl_tokens):
    config = load_config(CONFIG.read_text().replace("https://id.example.com", cluster_idp["issuer"]))
    jwks = requests.get(cluster_idp["metadata"]["jwks_uri"], timeout=10).json()
    user = authenticate(config, kubectl_tokens["id_token"], jwks)
    claims = jwt.decode(kubectl_tokens["id_token"], options={"verify_signature": False})
    assert user == {
        "username": "portcullis:alice",
        "uid": claims["sub"],
        "groups": ["portcullis:engineering"],
        "extra": {"portcullis.dev/email": ["alice@example.com"]},
    }


def test_sample_claim_validation_rule_rejects_an_unverified_email(kubectl_tokens):
    config = load_config(CONFIG.read_text())
    claims = jwt.decode(kubectl_tokens["id_token"], options={"verify_signature": False})
    rule = config["jwt"][0]["claimValidationRules"][0]["expression"]
    assert cel(rule, claims=claims) is True
    assert cel(rule, claims={**claims, "email_verified": False}) is False
    without = {name: value for name, value in claims.items() if name != "email_verified"}
    assert cel(rule, claims=without) is False


def test_sample_user_validation_rules_reject_system_names(kubectl_tokens):
    config = load_config(CONFIG.read_text())
    rules = [rule["expression"] for rule in config["jwt"][0]["userValidationRules"]]
    forged = {"username": "system:admin", "uid": "x", "groups": ["system:masters"], "extra": {}}
    assert all(cel(rule, user=forged) is False for rule in rules)


def test_argo_cd_reads_groups_from_the_id_token(cluster_idp):
    """Argo CD (`oidc.config` with `requestedScopes: [openid, profile, email, groups]`)
    maps RBAC from the ID token's `groups` array; it verifies iss and aud = its client id."""
    tokens = tokens_for(cluster_idp["metadata"], "webapp", "http://127.0.0.1:9000/callback",
                        "openid profile email groups", secret="webapp-secret")
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["aud"] in ("webapp", ["webapp"]) and claims["iss"] == cluster_idp["issuer"]
    assert claims["groups"] == ["engineering"] and claims["email"] == "alice@example.com"


def test_grafana_role_attribute_path_over_resource_access_and_groups(cluster_idp):
    """Grafana generic OAuth evaluates `role_attribute_path` (JMESPath) over the ID token's
    claims; the documented expression gives Admin from the client role, Editor from a group."""
    tokens = tokens_for(cluster_idp["metadata"], "webapp", "http://127.0.0.1:9000/callback",
                        "openid profile email roles", secret="webapp-secret")
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    path = ("contains(resource_access.webapp.roles[*] || `[]`, 'admin') && 'Admin' "
            "|| contains(groups[*], 'engineering') && 'Editor' || 'Viewer'")
    assert (ROOT / "docs/kubernetes-authentication.md").read_text().count(path.replace("webapp", "grafana")) == 1
    assert jmespath.search(path, claims) == "Admin"
    assert jmespath.search(path, {**claims, "resource_access": {"webapp": {"roles": ["viewer"]}}}) == "Editor"
    without_roles = {name: value for name, value in claims.items() if name != "resource_access"}
    assert jmespath.search(path, {**without_roles, "groups": []}) == "Viewer", "no client roles: no resource_access"


def test_oauth2_proxy_reads_verified_email_groups_and_uses_pkce(cluster_idp):
    """oauth2-proxy's OIDC provider refuses an unverified email by default, reads `groups`
    for `--allowed-group`, and uses S256 PKCE with `--code-challenge-method=S256`."""
    metadata = cluster_idp["metadata"]
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert {"email", "email_verified", "groups"} <= set(metadata["claims_supported"])
    tokens = tokens_for(metadata, "webapp", "http://127.0.0.1:9000/callback",
                        "openid email profile groups", secret="webapp-secret")
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["email_verified"] is True and claims["email"] == "alice@example.com"
    assert "engineering" in claims["groups"]
