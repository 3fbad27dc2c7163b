"""The chart's optional example kubectl client (`kubectlClient`) and the kubeconfig user
NOTES.txt prints for it (docs/kubernetes-authentication.md)."""

import jsonschema
import yaml

from support import ROOT, by_kind, crds, custom_resource_json_schema, load_yaml_documents, render_notes, render_objects

DOCUMENTED_CLIENT = ROOT / "docs" / "examples" / "kubectl-oidcclient.yaml"
ON = {"issuer": "https://id.example.com", "kubectlClient": {"enabled": True}}


def kubeconfig_user(notes):
    """The kubeconfig `users:` snippet of NOTES.txt, parsed."""
    lines = notes.split("\n  users:\n", 1)[1].splitlines()
    snippet = ["users:"] + [line[2:] for line in lines if line.startswith("    ")]
    return yaml.safe_load("\n".join(snippet))["users"][0]


def test_no_kubectl_client_or_kubeconfig_snippet_by_default():
    assert by_kind(render_objects({"issuer": "https://id.example.com"}), "OidcClient") == []
    notes = render_notes({"issuer": "https://id.example.com"})
    assert "oidc-login" not in notes and "users:" not in notes


def test_enabled_kubectl_client_is_the_documented_native_public_client():
    (client,) = by_kind(render_objects(ON), "OidcClient")
    jsonschema.validate(client, custom_resource_json_schema(crds()["OidcClient"]))
    spec = client["spec"]
    assert spec["clientId"] == "kubectl"
    assert spec["applicationType"] == "native" and spec["tokenEndpointAuthMethod"] == "none"
    assert "http://127.0.0.1/callback" in spec["redirectUris"]
    assert "groups" in spec["scopes"] and "offline_access" in spec["scopes"]
    device_grant = "urn:ietf:params:oauth:grant-type:device_code"
    assert spec["grantTypes"] == ["authorization_code", "refresh_token", device_grant], "kubelogin's device-code too"
    assert spec["refreshTokenReuseInterval"] == "10s"
    (documented,) = load_yaml_documents(DOCUMENTED_CLIENT)
    jsonschema.validate(documented, custom_resource_json_schema(crds()["OidcClient"]))
    assert {k: v for k, v in spec.items() if k != "clientId"} == documented["spec"]


def test_client_id_and_reuse_interval_follow_the_values():
    values = {"kubectlClient": {"enabled": True, "clientId": "k8s-login", "refreshTokenReuseInterval": "3s"}}
    (client,) = by_kind(render_objects(values), "OidcClient")
    assert client["spec"]["clientId"] == "k8s-login" and client["spec"]["refreshTokenReuseInterval"] == "3s"


def test_notes_print_a_kubeconfig_exec_user_for_the_issuer_and_client():
    user = kubeconfig_user(render_notes(ON))
    assert user["name"] == "portcullis"
    exec_plugin = user["user"]["exec"]
    assert exec_plugin["apiVersion"] == "client.authentication.k8s.io/v1"
    assert exec_plugin["command"] == "kubectl" and exec_plugin["interactiveMode"] == "IfAvailable"
    args = exec_plugin["args"]
    assert args[:2] == ["oidc-login", "get-token"]
    assert "--oidc-issuer-url=https://id.example.com" in args
    assert "--oidc-client-id=kubectl" in args
    assert "--oidc-extra-scope=groups" in args
    assert "--oidc-redirect-url-hostname=127.0.0.1" in args, "the any-port loopback redirect"
