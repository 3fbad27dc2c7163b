"""The Helm chart, rendered offline by Helm's Go SDK: strict lint, Kubernetes 1.33 validity,
the copies it carries, and the values schema."""

import json
import re
import shutil
import subprocess

import helm_python as helm
import pytest
import yaml

from support import (
    CHART,
    CRDS,
    NAMESPACE,
    ROOT,
    one,
    render,
    render_objects,
    validate_object,
)


def test_chart_lints_clean_in_strict_mode(value_set):
    name, values = value_set
    report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version="v1.33.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report.get("errors") or []]
    assert report["total_charts_linted"] == 1
    assert not problems, f"{name}: {problems}"


def test_every_rendered_object_is_valid_for_kubernetes_1_33(value_set):
    name, values = value_set
    objects = render_objects(values)
    assert len(objects) > 15, name
    for obj in objects:
        try:
            validate_object(obj)
        except Exception as error:  # noqa: BLE001 - report which object failed, whatever the validator
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {error}")


def test_kubernetes_validate_cli_agrees_and_catches_a_broken_object(tmp_path):
    """The same check through the kubernetes-validate command line, which must also fail on
    an unknown field (so the strict schemas are really in use)."""
    builtin = [o for o in render_objects({}) if o["apiVersion"].partition("/")[0] not in ("portcullis.dev",)]
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(builtin))
    command = [shutil.which("kubernetes-validate") or "kubernetes-validate", "--strict", "-k", "1.33.0", "--quiet"]
    result = subprocess.run([*command, str(good)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = one(builtin, "Deployment", "portcullis-provider")
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(broken))
    result = subprocess.run([*command, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "readOnlyRootFs" in result.stdout + result.stderr, result.stdout


def test_chart_crds_are_valid_and_identical_to_the_generated_ones():
    chart_crds = CHART / "crds" / CRDS.name
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [CRDS.name]
    assert chart_crds.read_bytes() == CRDS.read_bytes(), "copy crds/portcullis.dev.yaml to charts/portcullis/crds/"
    for crd in yaml.safe_load_all(chart_crds.read_text()):
        validate_object(crd)


def test_grafana_dashboard_matches_deploy_monitoring_when_that_exists():
    chart_dashboard = CHART / "files" / "grafana-dashboard.json"
    assert isinstance(json.loads(chart_dashboard.read_text()), dict), "a Grafana dashboard is one JSON object"
    published = ROOT / "deploy" / "monitoring" / "grafana-dashboard.json"
    if published.exists():
        assert chart_dashboard.read_bytes() == published.read_bytes(), (
            "copy deploy/monitoring/grafana-dashboard.json to charts/portcullis/files/"
        )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"external": {"url": "redis://user:pw@redis:6379", "existingSecret": "s"}}}, "must not contain credentials"),
        ({"redis": {"external": {"url": "redis://redis:6379"}}}, "existingSecret is required"),
        ({"registration": {"mode": "token"}}, "registration.tokenSecret.name"),
        ({"provider": {"ingress": {"enabled": True}}}, "needs provider.ingress.host"),
        ({"controller": {"watchNamespaces": ["*", "team-a"]}}, "cannot be combined"),
    ],
)
def test_inconsistent_values_are_refused_with_a_clear_message(values, message):
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render(values)


def test_schema_accepts_every_value_set(value_set):
    name, values = value_set
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)


@pytest.mark.parametrize(
    "values",
    [
        {"controler": {"replicas": 3}},
        {"provider": {"replica": 3}},
        {"redis": {"bundled": {"persistance": {"enabled": False}}}},
        {"monitoring": {"serviceMonitor": {"enable": True}}},
        {"provider": {"resources": {"limit": {"memory": "1Gi"}}}},
        {"provider": {"replicas": "two"}},
        {"logFormat": "xml"},
        {"controller": {"watchNamespaces": "*"}},
        {"signingKeys": [{"name": "main", "algorithm": "HS256"}]},
        {"tokens": {"accessTokenTtl": "one hour"}},
        {"issuer": "auth.example.com"},
    ],
    ids=lambda v: json.dumps(v, separators=(",", ":")),
)
def test_schema_rejects_typos_and_wrong_types(values):
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(values)


def test_schema_forbids_unknown_keys_in_every_fixed_object():
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node, path):
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, path
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")

    walk(schema, "values")


def test_readme_documents_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    whole_objects = {"resources", "podSecurityContext", "securityContext", "labels"}

    def leaves(node, path):
        if isinstance(node, dict) and node and path.rpartition(".")[2] not in whole_objects:
            for key, child in node.items():
                yield from leaves(child, f"{path}.{key}" if path else key)
        else:
            yield path

    documented = set(re.findall(r"^\| `([A-Za-z.]+)` \|", (CHART / "README.md").read_text(), re.MULTILINE))
    assert documented == set(leaves(values, ""))
