"""Rendering and validation helpers shared by the chart and manifest tests.

Everything here runs offline: the chart is rendered by Helm's own Go SDK (helm-python-sdk),
built-in kinds are validated with kubernetes-validate's strict schemas for one Kubernetes
version, and our custom resources with the openAPIV3Schema of our own CRDs.
"""

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "portcullis"
CRDS = ROOT / "crds" / "portcullis.dev.yaml"
RELEASE = "portcullis"
NAMESPACE = "auth"
KUBERNETES_VERSION = "1.33.0"

# The value sets every chart test runs over: the defaults and the main variations.
VALUE_SETS = {
    "default": {},
    "external-redis": {
        "redis": {
            "external": {
                "url": "rediss://redis.example.com:6380/0",
                "existingSecret": "redis-credentials",
                "passwordKey": "password",
                "usernameKey": "username",
            }
        }
    },
    "external-redis-sentinel-no-password": {
        "redis": {
            "external": {
                "url": "redis-sentinel://sentinel-0.redis:26379/0?sentinelServiceName=mymaster&node=sentinel-1.redis:26379",
                "passwordKey": "",
            }
        }
    },
    "monitoring": {
        "monitoring": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
            "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Identity"}},
        }
    },
    "ingress": {
        "provider": {
            "ingress": {
                "enabled": True,
                "className": "nginx",
                "host": "auth.example.com",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
            },
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12},
        },
        "registration": {"mode": "token", "tokenSecret": {"name": "portcullis-registration", "key": "token"}},
    },
    "cluster-wide": {"controller": {"watchNamespaces": ["*"]}},
    "kubectl-client": {"kubectlClient": {"enabled": True, "clientId": "k8s-login", "refreshTokenReuseInterval": "5s"}},
    "namespace-list": {
        "controller": {"watchNamespaces": ["team-a", "team-b"]},
        "redis": {"bundled": {"persistence": {"enabled": False}, "existingSecret": "gitops-redis", "networkPolicy": {"enabled": False}}},
        "federation": {"credentialKeys": {"existingSecret": "gitops-credential-keys", "key": "sealing-keys"}},
        "otlpEndpoint": "http://otel-collector.observability:4317",
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "image": {"digest": "sha256:" + "ab" * 32},
    },
}


def render(values: dict, namespace: str = NAMESPACE) -> dict[str, list[dict]]:
    """Renders the chart as `helm install` would (offline: `lookup` finds nothing).

    Returns the objects of each template file, NOTES.txt excluded.
    """
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects = {}
    for template, text in rendered.items():
        if template.endswith("NOTES.txt"):
            continue
        objects[template] = [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def render_objects(values: dict, namespace: str = NAMESPACE) -> list[dict]:
    return [obj for docs in render(values, namespace).values() for obj in docs]


def render_notes(values: dict) -> str:
    import helm_python as helm

    with helm.Chart.load(str(CHART)) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next(text for template, text in rendered.items() if template.endswith("NOTES.txt"))


def load_yaml_documents(path: Path) -> list[dict]:
    with path.open() as file:
        return [doc for doc in yaml.safe_load_all(file) if doc]


def crds() -> dict[str, dict]:
    """Our CRDs by kind."""
    return {crd["spec"]["names"]["kind"]: crd for crd in load_yaml_documents(CRDS)}


def _structural_to_json_schema(node: dict) -> dict:
    """Turns a CRD structural schema into a JSON Schema that is as strict as the API server
    with strict field validation: unknown fields are errors, `nullable` allows null."""
    node = copy.deepcopy(node)
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    if "properties" in node:
        node["properties"] = {k: _structural_to_json_schema(v) for k, v in node["properties"].items()}
        if "additionalProperties" not in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural_to_json_schema(node["additionalProperties"])
    if isinstance(node.get("items"), dict):
        node["items"] = _structural_to_json_schema(node["items"])
    return node


def custom_resource_json_schema(crd: dict) -> dict:
    """A JSON Schema for one CRD's served version, with the object envelope added."""
    (version,) = [v for v in crd["spec"]["versions"] if v["served"]]
    schema = _structural_to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/{version['name']}"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = {
        "type": "object",
        "properties": {"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}},
        "required": ["name"],
    }
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return schema


def write_custom_resource_schemas(directory: Path) -> dict[str, Path]:
    """Writes one JSON Schema file per kind (for check-jsonschema) and returns them by kind."""
    paths = {}
    for kind, crd in crds().items():
        path = directory / f"{kind}.json"
        path.write_text(json.dumps(custom_resource_json_schema(crd), indent=1))
        paths[kind] = path
    return paths


# monitoring.coreos.com objects have no schema in kubernetes-validate; these hand-written
# schemas cover exactly the fields the chart uses (strictly), not the whole operator API.
MONITORING_SCHEMAS = ROOT / "tests" / "chart" / "schemas"


def validate_object(obj: dict) -> None:
    """Validates one object for Kubernetes 1.33; raises on any problem, never skips a kind."""
    group = obj["apiVersion"].rpartition("/")[0]
    if group == "portcullis.dev":
        jsonschema.validate(obj, custom_resource_json_schema(crds()[obj["kind"]]))
    elif group == "monitoring.coreos.com":
        schema = json.loads((MONITORING_SCHEMAS / f"{obj['kind']}.json").read_text())
        jsonschema.validate(obj, schema)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind, name):
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def pod_specs(objects):
    """(owner name, pod spec) of every workload and bare Pod."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], obj["spec"]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}
