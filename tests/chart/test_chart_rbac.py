"""The chart grants exactly the RBAC agreed with the code (the verbs tests/kubernetes.rs observes the controller using), and no wildcard."""


import pytest

from support import (
    NAMESPACE,
    VALUE_SETS,
    by_kind,
    one,
    render_objects,
)


CUSTOM_RESOURCES = ("oidcclients", "oidcusers", "signingkeys", "identityconnectors")


CONTROLLER_RULES = (
    {("portcullis.dev", r, v) for r in CUSTOM_RESOURCES for v in ("get", "list", "watch", "patch")}
    | {("portcullis.dev", f"{r}/status", v) for r in CUSTOM_RESOURCES for v in ("patch",)}
    | {("portcullis.dev", f"{r}/finalizers", "update") for r in CUSTOM_RESOURCES}
    | {("", "secrets", v) for v in ("get", "list", "watch", "create", "patch", "delete")}
    | {("events.k8s.io", "events", v) for v in ("create", "patch")}
)


LEASE_RULES = {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}


PROVIDER_RULES = {("", "secrets", v) for v in ("get", "list", "watch")}


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
