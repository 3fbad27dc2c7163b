"""Redis in the chart: the bundled StatefulSet (checked on a real redis-server) and an
external Redis whose credentials come from a Secret."""

import base64
import os
import re
import shutil
import socket
import subprocess
import time

import yaml

from support import (
    VALUE_SETS,
    by_kind,
    env_of,
    one,
    render_objects,
)


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
    memory ceiling at which it refuses writes rather than evict keys, and its readiness
    probe passes with the password and fails without."""
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

        def cli(*command):
            env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": password}
            return subprocess.run([redis_cli, "-p", str(port), *command], env=env,
                                  capture_output=True, text=True, check=True, timeout=10).stdout.strip()

        # At the ceiling writes are refused and nothing is evicted: an evicted deny-list
        # entry or data epoch would fail open.
        cli("config", "set", "maxmemory", "2mb")
        cli("set", "revoked", "1")
        payload = "x" * 65536
        refusals = [cli("set", f"filler-{i}", payload) for i in range(100)]
        assert any(reply.startswith("OOM") for reply in refusals), refusals[-1]
        assert cli("get", "revoked") == "1"
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
