"""The chart's workloads: hardening, tokens, probes, the agreed command lines, Ingress,
disruption budgets, monitoring, the default signing key, `helm test` and the notes."""

import os
import re
import shutil
import subprocess

import jsonschema
import pytest
import yaml

from support import (
    CHART,
    NAMESPACE,
    ROOT,
    VALUE_SETS,
    by_kind,
    crds,
    custom_resource_json_schema,
    env_of,
    one,
    pod_specs,
    render,
    render_notes,
    render_objects,
)


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
    assert "--metrics-on-main-port" not in provider["args"], "/metrics stays off the port users reach"
    (controller,) = one(objects, "Deployment", "portcullis-controller")["spec"]["template"]["spec"]["containers"]
    assert controller["args"][0] == "controller"
    for arg in ("--namespace=$(POD_NAMESPACE)", f"--watch-namespaces={NAMESPACE}", f"--issuer={issuer}",
                "--metrics-listen=0.0.0.0:9090", "--lease-name=portcullis-controller", "--resync-period=5m"):
        assert arg in controller["args"]
    for container in (provider, controller):
        env = env_of(container)
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        assert not any("redis-url" in a for a in container["args"]), "the Redis URL carries a password: env only"


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
        assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"], "scraped on --metrics-listen"
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


def test_upstream_credential_keys_are_generated_kept_and_mounted_only_into_the_provider():
    import base64

    objects = render_objects({})
    secret = one(objects, "Secret", "portcullis-upstream-credential-keys")
    key = base64.b64decode(secret["data"]["keys"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{64}", key), "one key of at least 32 bytes, as serve requires"
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert key not in yaml.safe_dump_all([o for o in objects if o["kind"] != "Secret"])
    pod = one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "--upstream-credential-key-file=/etc/portcullis/upstream-credential-keys/keys" in container["args"]
    (mount,) = container["volumeMounts"]
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/portcullis/upstream-credential-keys", True)
    (volume,) = pod["volumes"]
    assert volume["secret"]["secretName"] == "portcullis-upstream-credential-keys"
    assert volume["secret"]["items"] == [{"key": "keys", "path": "keys"}]
    controller = one(objects, "Deployment", "portcullis-controller")["spec"]["template"]["spec"]
    assert "upstream-credential-keys" not in yaml.safe_dump(controller), "the controller never opens them"


def test_upstream_credential_keys_can_come_from_an_existing_secret():
    objects = render_objects(VALUE_SETS["namespace-list"])
    assert not [o for o in objects if o["metadata"]["name"] == "portcullis-upstream-credential-keys"]
    (volume,) = one(objects, "Deployment", "portcullis-provider")["spec"]["template"]["spec"]["volumes"]
    assert volume["secret"]["secretName"] == "gitops-credential-keys"
    assert volume["secret"]["items"] == [{"key": "sealing-keys", "path": "keys"}]
