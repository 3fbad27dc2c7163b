"""The Helm chart, rendered offline by Helm's Go SDK: lint, Kubernetes 1.33 validity, the
agreed RBAC, pod hardening, the values schema, and the wiring of every value set."""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import time

import helm_python as helm
import jsonschema
import pytest
import yaml
from support import (
    CHART,
    CRDS,
    NAMESPACE,
    ROOT,
    VALUE_SETS,
    custom_resource_json_schema,
    crds,
    render,
    render_notes,
    render_objects,
    validate_object,
)

# The RBAC the code may use (CONTRACT.md, "RBAC the code may use"): (apiGroup, resource, verb).
CONTROLLER_RULES = (
    {("portcullis.dev", r, v) for r in ("oidcclients", "oidcusers", "signingkeys") for v in ("get", "list", "watch", "patch", "update")}
    | {("portcullis.dev", f"{r}/status", v) for r in ("oidcclients", "oidcusers", "signingkeys") for v in ("get", "patch", "update")}
    | {("portcullis.dev", f"{r}/finalizers", "update") for r in ("oidcclients", "oidcusers", "signingkeys")}
    | {("", "secrets", v) for v in ("get", "list", "watch", "create", "update", "patch", "delete")}
    | {("events.k8s.io", "events", v) for v in ("create", "patch")}
)
LEASE_RULES = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update", "patch")}
PROVIDER_RULES = {("", "secrets", v) for v in ("get", "list", "watch")}


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


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request):
    return request.param, VALUE_SETS[request.param]


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


# --- RBAC ---------------------------------------------------------------------------------


def granted(objects, service_account):
    """Every (namespace or '*', apiGroup, resource, verb) the ServiceAccount is bound to."""
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    grants = set()
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account and s["namespace"] == NAMESPACE for s in binding["subjects"]):
            continue
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else "*"
        role = roles[(ref["kind"], binding["metadata"].get("namespace") if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role["rules"]:
            assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        assert "*" not in (group, resource, verb), rule
                        grants.add((namespace, group, resource, verb))
    return grants


@pytest.mark.parametrize(
    ("value_set_name", "watch_argument", "watched"),
    [
        ("default", NAMESPACE, [NAMESPACE]),
        # Its own namespace holds the SigningKeys, OidcUsers and key Secrets, so it is always granted.
        ("namespace-list", "team-a,team-b", [NAMESPACE, "team-a", "team-b"]),
        ("cluster-wide", "*", ["*"]),
    ],
)
def test_rbac_is_exactly_the_agreed_list(value_set_name, watch_argument, watched):
    objects = render_objects(VALUE_SETS[value_set_name])
    controller = granted(objects, "portcullis-controller")
    expected = {(ns, *rule) for ns in watched for rule in CONTROLLER_RULES} | {(NAMESPACE, *rule) for rule in LEASE_RULES}
    assert controller == expected
    assert granted(objects, "portcullis-provider") == {(NAMESPACE, *rule) for rule in PROVIDER_RULES}
    assert bool(by_kind(objects, "ClusterRole")) == (watched == ["*"])
    args = one(objects, "Deployment", "portcullis-controller")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--watch-namespaces={watch_argument}" in args


# --- pods -----------------------------------------------------------------------------------


def test_every_pod_is_hardened(value_set):
    name, values = value_set
    for owner, spec in pod_specs(render_objects(values)):
        assert spec["securityContext"]["runAsNonRoot"] is True, owner
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", owner
        assert spec["enableServiceLinks"] is False, owner
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context["readOnlyRootFilesystem"] is True, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
            assert context["seccompProfile"]["type"] == "RuntimeDefault", owner
            assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"], owner


def test_only_the_pods_that_call_the_api_get_a_token(value_set):
    name, values = value_set
    objects = render_objects(values)
    mounts = {owner: spec.get("automountServiceAccountToken") for owner, spec in pod_specs(objects)}
    expected = {"portcullis-controller": True, "portcullis-provider": True, "portcullis-test-discovery": False}
    if "redis" not in values or not values["redis"].get("external", {}).get("url"):
        expected["portcullis-redis"] = False
    assert mounts == expected
    for account in by_kind(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_probes_use_health_and_ready_on_the_agreed_ports():
    objects = render_objects({})
    for deployment, port in (("portcullis-provider", 8080), ("portcullis-controller", 9090)):
        (container,) = one(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports[container["livenessProbe"]["httpGet"]["port"]] == port
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert ports[container["readinessProbe"]["httpGet"]["port"]] == port
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert ports["metrics"] == 9090
    (provider,) = one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]["containers"]
    assert provider["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}, "rollouts must not drop requests"


def test_commands_follow_the_agreed_cli():
    objects = render_objects({})
    issuer = f"http://portcullis.{NAMESPACE}.svc.cluster.local:8080"
    (provider,) = one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]["containers"]
    assert provider["args"][:2] == ["serve", "--kubernetes"]
    for arg in ("--listen=0.0.0.0:8080", "--metrics-listen=0.0.0.0:9090", f"--issuer={issuer}", "--log-format=json", "--registration=disabled"):
        assert arg in provider["args"]
    (controller,) = one(objects, "Deployment", "portcullis-controller")["spec"]["template"]["spec"]["containers"]
    assert controller["args"][0] == "controller"
    for arg in ("--namespace=$(POD_NAMESPACE)", f"--watch-namespaces={NAMESPACE}", f"--issuer={issuer}",
                "--metrics-listen=0.0.0.0:9090", "--lease-name=portcullis-controller", "--resync-period=5m"):
        assert arg in controller["args"]
    for container in (provider, controller):
        env = env_of(container)
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        assert not any("redis-url" in a for a in container["args"]), "the Redis URL carries a password: env only"


def test_bundled_redis_password_is_generated_and_only_referenced():
    objects = render_objects({})
    secret = one(objects, "Secret", "portcullis-redis")
    password = base64.b64decode(secret["data"]["redis-password"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{40}", password)
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert password not in yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    for deployment in ("portcullis-provider", "portcullis-controller"):
        env = env_of(one(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0])
        assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "portcullis-redis", "key": "redis-password"}
        assert env["PORTCULLIS_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@portcullis-redis:6379/0"
    redis = one(objects, "StatefulSet", "portcullis-redis")
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("redis:")
    assert ["--appendonly", "yes"] == container["args"][3:5]
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    policy = one(objects, "NetworkPolicy", "portcullis-redis")
    assert policy["spec"]["podSelector"]["matchLabels"] == redis["spec"]["selector"]["matchLabels"]
    allowed = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in policy["spec"]["ingress"][0]["from"]]
    assert allowed == ["provider", "controller"]


def test_bundled_redis_arguments_and_readiness_probe_work_on_a_real_redis(tmp_path):
    """The StatefulSet's arguments start a real redis-server with a password, AOF and a
    memory ceiling, and its readiness probe passes with the password and fails without."""
    redis_server, redis_cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert redis_server and redis_cli, "redis-server and redis-cli are missing (scripts/test installs them)"
    objects = render_objects({})
    password = base64.b64decode(one(objects, "Secret", "portcullis-redis")["data"]["redis-password"]).decode()
    (container,) = one(objects, "StatefulSet", "portcullis-redis")["spec"]["template"]["spec"]["containers"]
    args = [password if a == "$(REDIS_PASSWORD)" else str(tmp_path) if a == "/data" else a for a in container["args"]]
    assert args[0] == "redis-server"
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    server = subprocess.Popen([redis_server, *args[1:], "--port", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = container["readinessProbe"]["exec"]["command"]
    probe = [part.replace("redis-cli", f"redis-cli -p {port}") for part in probe]

    def probe_passes(secret):
        env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": secret}
        return subprocess.run(probe, env=env, capture_output=True, check=False, timeout=10).returncode == 0

    try:
        deadline = time.monotonic() + 10
        while not probe_passes(password):
            assert time.monotonic() < deadline, "the readiness probe never passed"
            time.sleep(0.1)
        assert not probe_passes("wrong-password")

        def config(name):
            env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": password}
            out = subprocess.run([redis_cli, "-p", str(port), "config", "get", name], env=env,
                                 capture_output=True, text=True, check=True, timeout=10).stdout.split()
            return out[1]

        assert config("appendonly") == "yes"
        assert config("maxmemory-policy") == "noeviction"
        assert config("maxmemory") == str(128 * 1024 * 1024)
        assert config("dir") == str(tmp_path)
        anonymous = subprocess.run([redis_cli, "-p", str(port), "ping"], capture_output=True, text=True,
                                   env={"PATH": os.environ["PATH"]}, check=False, timeout=10)
        assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_bundled_redis_can_use_an_existing_password_secret():
    objects = render_objects(VALUE_SETS["namespace-list"])
    assert not by_kind(objects, "Secret") and not by_kind(objects, "NetworkPolicy")
    redis = one(objects, "StatefulSet", "portcullis-redis")
    assert "volumeClaimTemplates" not in redis["spec"]
    for container in (redis["spec"]["template"]["spec"]["containers"][0],
                      one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]["containers"][0]):
        assert env_of(container)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "gitops-redis", "key": "redis-password"}


def test_external_redis_url_gets_its_credentials_from_the_secret():
    objects = render_objects(VALUE_SETS["external-redis"])
    assert not [o for o in objects if o["metadata"]["name"].startswith("portcullis-redis")]
    env = env_of(one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]["containers"][0])
    assert env["PORTCULLIS_REDIS_URL"]["value"] == "rediss://$(REDIS_USERNAME):$(REDIS_PASSWORD)@redis.example.com:6380/0"
    assert env["REDIS_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "redis-credentials", "key": "username"}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis-credentials", "key": "password"}
    names = list(env)
    assert names.index("REDIS_PASSWORD") < names.index("PORTCULLIS_REDIS_URL"), "$(VAR) expands only earlier variables"
    sentinel_values = VALUE_SETS["external-redis-sentinel-no-password"]
    controller = one(render_objects(sentinel_values), "Deployment", "portcullis-controller")
    sentinel = env_of(controller["spec"]["template"]["spec"]["containers"][0])
    assert sentinel["PORTCULLIS_REDIS_URL"]["value"] == sentinel_values["redis"]["external"]["url"]
    assert "REDIS_PASSWORD" not in sentinel


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


def test_ingress_sets_the_issuer_and_tls():
    objects = render_objects(VALUE_SETS["ingress"])
    ingress = one(objects, "Ingress", "portcullis")
    assert ingress["spec"]["tls"] == [{"hosts": ["auth.example.com"], "secretName": "portcullis-tls"}]
    paths = ingress["spec"]["rules"][0]["http"]["paths"]
    assert {p["pathType"] for p in paths} == {"Prefix"}
    assert all(p["backend"]["service"] == {"name": "portcullis", "port": {"name": "http"}} for p in paths)

    def routed(path):
        """Kubernetes Prefix matching: element-wise on '/'-separated segments."""
        for prefix in (p["path"] for p in paths):
            segments = prefix.rstrip("/").split("/")
            if path.split("/")[: len(segments)] == segments:
                return True
        return False

    endpoints = dict(re.findall(r'pub const (\w+): &str = "([^"]+)";', (ROOT / "src/protocol/endpoints.rs").read_text()))
    internal = {"/health", "/ready", "/metrics"}
    assert len(set(endpoints.values()) - internal) >= 14, "the endpoint constants were not found"
    for name, path in endpoints.items():
        assert routed(path) == (path not in internal), f"{name} {path}"
    assert not any(routed(path) for path in internal)
    provider = one(objects, "Deployment", "portcullis-provider")
    assert "--issuer=https://auth.example.com" in provider["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "replicas" not in provider["spec"], "the HPA owns the replica count"
    hpa = one(objects, "HorizontalPodAutoscaler", "portcullis-provider")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    env = env_of(provider["spec"]["template"]["spec"]["containers"][0])
    assert env["PORTCULLIS_REGISTRATION_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "portcullis-registration", "key": "token"}


def test_disruption_budgets_and_spread_across_nodes():
    objects = render_objects({})
    for component in ("provider", "controller"):
        deployment = one(objects, "Deployment", f"portcullis-{component}")
        assert deployment["spec"]["replicas"] == 2
        pdb = one(objects, "PodDisruptionBudget", f"portcullis-{component}")
        assert pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "9090"


def test_monitoring_objects_only_when_enabled():
    assert not [o for o in render_objects({}) if o["apiVersion"].startswith("monitoring.coreos.com") or o["kind"] == "ConfigMap"]
    objects = render_objects(VALUE_SETS["monitoring"])
    monitors = by_kind(objects, "ServiceMonitor")
    assert sorted(m["metadata"]["name"] for m in monitors) == ["portcullis-controller", "portcullis-provider"]
    services = by_kind(objects, "Service")
    for monitor in monitors:
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        selected = [s for s in services if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
        assert selected and all("metrics" in [p["name"] for p in s["spec"]["ports"]] for s in selected)
    rules = one(objects, "PrometheusRule", "portcullis")["spec"]["groups"][0]["rules"]
    agreed_metrics = {"portcullis_http_requests_total", "portcullis_store_errors_total", "portcullis_leader",
                      "portcullis_reconcile_total", "portcullis_http_request_duration_seconds_bucket"}
    used = set(re.findall(r"\b(portcullis_[a-z_]+)", " ".join(r["expr"] for r in rules)))
    assert used <= agreed_metrics, used - agreed_metrics
    dashboard = one(objects, "ConfigMap", "portcullis-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["portcullis.json"] == (CHART / "files" / "grafana-dashboard.json").read_text().rstrip("\n")


def test_default_signing_key_is_created_with_the_release():
    (key,) = by_kind(render_objects({}), "SigningKey")
    assert key["spec"] == {"algorithm": "RS256", "rotationPeriod": "720h"}
    assert not by_kind(render_objects({"signingKeys": []}), "SigningKey")


def test_helm_test_fetches_discovery_and_jwks_through_the_service():
    (pod,) = by_kind(render({})["portcullis/templates/tests/test-discovery.yaml"], "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "http://portcullis:8080/.well-known/openid-configuration" in script
    assert "http://portcullis:8080/jwks.json" in script
    assert '"issuer":"http://portcullis.auth.svc.cluster.local:8080"' in script


def run_portcullis_dev(issuer):
    """Starts `portcullis dev` on a free loopback port; returns (process, base URL)."""
    binary = os.environ.get("PORTCULLIS_BIN", str(ROOT / "target" / "debug" / "portcullis"))
    assert os.path.exists(binary), f"{binary} is missing: build it first (scripts/test does)"
    process = subprocess.Popen([binary, "dev", "--listen", "127.0.0.1:0", "--issuer", issuer],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("Portcullis dev listening on"):
            return process, line.split()[4]
    process.kill()
    pytest.fail("portcullis dev did not start")


@pytest.mark.parametrize(("issuer", "passes"), [("http://portcullis.auth.svc.cluster.local:8080", True),
                                                ("https://somewhere.else", False)])
def test_helm_test_script_passes_against_a_real_provider_with_the_right_issuer(issuer, passes):
    assert shutil.which("curl"), "curl is missing"
    (pod,) = by_kind(render({})["portcullis/templates/tests/test-discovery.yaml"], "Pod")
    shell, flags, script = pod["spec"]["containers"][0]["command"]
    process, base = run_portcullis_dev(issuer)
    try:
        result = subprocess.run([shell, flags, script.replace("http://portcullis:8080", base)],
                                capture_output=True, text=True, timeout=60, check=False)
    finally:
        process.kill()
        process.wait()
    assert (result.returncode == 0) == passes, result.stdout + result.stderr
    if passes:
        assert "discovery and JWKS OK" in result.stdout


def test_notes_print_the_discovery_url_and_a_valid_example_client():
    notes = render_notes(VALUE_SETS["ingress"])
    assert "Discovery URL: https://auth.example.com/.well-known/openid-configuration" in notes
    example = notes.split("<<'YAML'\n", 1)[1].split("  YAML\n", 1)[0]
    client = yaml.safe_load("\n".join(line[2:] for line in example.splitlines()))
    jsonschema.validate(client, custom_resource_json_schema(crds()["OidcClient"]))


# --- values schema -------------------------------------------------------------------------


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
