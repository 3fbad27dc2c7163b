"""deploy/: the kustomize base renders the chart's default objects, and the example
manifests (and only the good ones) pass our CRDs' openAPIV3Schemas under check-jsonschema."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from copies import DEPLOY, expected_files, namespace_object, portcullis_objects
from support import ROOT, crds, load_yaml_documents, validate_object, write_custom_resource_schemas

EXAMPLES = ROOT / "deploy" / "examples"
BAD_EXAMPLES = Path(__file__).resolve().parent / "bad-examples"


def tool(name):
    path = shutil.which(name)
    assert path, f"{name} is not installed: run the tests through tests/chart/run, which installs it"
    return path


def check_jsonschema(schema: Path, instances: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--schemafile", str(schema), *map(str, instances)],
        capture_output=True,
        text=True,
        check=False,
    )


def write_instances(documents: list[dict], directory: Path) -> dict[str, list[Path]]:
    """One JSON file per document (check-jsonschema takes one instance per file), by kind."""
    by_kind = {}
    for index, document in enumerate(documents):
        path = directory / f"{index:02}-{document['kind']}-{document['metadata']['name']}.json"
        path.write_text(json.dumps(document))
        by_kind.setdefault(document["kind"], []).append(path)
    return by_kind


def example_documents() -> list[dict]:
    return [doc for path in sorted(EXAMPLES.glob("*.yaml")) for doc in load_yaml_documents(path)]


def test_examples_pass_the_crd_schemas(tmp_path):
    schemas = write_custom_resource_schemas(tmp_path)
    instances = write_instances(example_documents(), tmp_path)
    assert set(instances) == {"OidcClient", "OidcUser", "SigningKey", "IdentityConnector", "Secret"}
    for kind, schema in schemas.items():
        result = check_jsonschema(schema, instances[kind])
        assert result.returncode == 0, result.stdout + result.stderr
    for secret in instances["Secret"]:
        validate_object(json.loads(secret.read_text()))


def test_examples_show_every_kind_of_client_a_user_with_its_secret_and_a_key():
    documents = example_documents()
    clients = [d["spec"] for d in documents if d["kind"] == "OidcClient"]
    # No declared method: the client may use client_secret_basic or client_secret_post.
    methods = {c.get("tokenEndpointAuthMethod", "basic or post") for c in clients}
    assert methods == {"basic or post", "client_secret_post", "none"}
    assert any("client_credentials" in c.get("grantTypes", []) for c in clients)
    assert any("authorization_code" in c.get("grantTypes", ["authorization_code"]) for c in clients)
    secrets = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in documents if d["kind"] == "Secret"}
    users = [d for d in documents if d["kind"] == "OidcUser"]
    connectors = {d["metadata"]["name"] for d in documents if d["kind"] == "IdentityConnector"}
    claimed = [i["connector"] for u in users for i in u["spec"].get("federatedIdentities", [])]
    assert claimed and set(claimed) <= connectors, "a user claims an identity of an example connector"
    with_password = [u for u in users if "passwordSecretRef" in u["spec"]]
    assert with_password
    for user in with_password:
        reference = user["spec"]["passwordSecretRef"]
        secret = secrets[(user["metadata"]["namespace"], reference["name"])]
        assert secret["stringData"][reference["key"]].startswith("$argon2id$")
    assert any(d["kind"] == "SigningKey" for d in documents)


@pytest.mark.parametrize("example", sorted(BAD_EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_example_is_rejected_with_the_reason(example, tmp_path):
    (document,) = load_yaml_documents(example)
    expected = example.read_text().splitlines()[0].removeprefix("# expect: ")
    schemas = write_custom_resource_schemas(tmp_path)
    (instance,) = write_instances([document], tmp_path)[document["kind"]]
    result = check_jsonschema(schemas[document["kind"]], [instance])
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stdout, result.stdout


@pytest.mark.parametrize("example", sorted(BAD_EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_example_is_refused_by_portcullis_dev_too(example, tmp_path):
    """The CRD schema and the manifest loader of `portcullis dev` must agree on what is wrong."""
    binary = Path(os.environ.get("PORTCULLIS_BIN", ROOT / "target" / "debug" / "portcullis"))
    assert binary.exists(), f"{binary} is missing: build it first (scripts/test does)"
    shutil.copy(example, tmp_path)
    try:
        result = subprocess.run(
            [str(binary), "dev", "--listen", "127.0.0.1:0", "--manifests", str(tmp_path)],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"portcullis dev started on {example.name}")
    assert result.returncode != 0
    assert f"{example.name}, document 1" in result.stderr, result.stderr


def test_crds_cover_exactly_our_four_kinds():
    assert sorted(crds()) == ["IdentityConnector", "OidcClient", "OidcUser", "SigningKey"]


def test_every_copy_is_up_to_date():
    """Chart CRDs, deploy/base/ and the chart's dashboard are copies; none may drift."""
    stale = [str(path.relative_to(ROOT)) for path, text in expected_files().items() if path.read_text() != text]
    assert not stale, f"refresh with: target/chart-venv/bin/python tests/chart/copies.py --write ({stale})"


def test_kustomize_renders_the_chart_defaults():
    result = subprocess.run([tool("kubectl"), "kustomize", str(DEPLOY)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    expected = [namespace_object(), *crds().values(), *portcullis_objects()]

    def key(obj):
        return (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])

    assert sorted(map(key, rendered)) == sorted(map(key, expected))
    expected_by_key = {key(obj): obj for obj in expected}
    for obj in rendered:
        assert obj == expected_by_key[key(obj)], key(obj)
        validate_object(obj)
    kinds = {obj["kind"] for obj in rendered}
    assert {"Namespace", "CustomResourceDefinition", "Role", "RoleBinding", "Deployment", "Service", "StatefulSet"} <= kinds
