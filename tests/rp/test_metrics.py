"""`/metrics` (on `--metrics-listen`) parsed by the Prometheus Python client's own exposition-format parser."""

import requests
from prometheus_client.parser import text_string_to_metric_families


def test_metrics_page_parses_as_prometheus_text_format(provider):
    requests.get(provider["issuer"] + "/register/some-client", timeout=10)
    requests.get(provider["issuer"] + "/no/such/path", timeout=10)
    assert requests.get(provider["issuer"] + "/metrics", timeout=10).status_code == 404, "not on the main port"
    response = requests.get(provider["metrics"] + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert families["portcullis_http_requests"].type == "counter"
    assert families["portcullis_http_request_duration_seconds"].type == "histogram"
    assert families["portcullis_active_sessions"].type == "gauge"
    assert "process_resident_memory_bytes" in families
    endpoints = {s.labels["endpoint"] for s in families["portcullis_http_requests"].samples}
    assert {"/register/{client_id}", "unmatched"} <= endpoints
    results = {s.labels["result"] for s in families["portcullis_logins"].samples}
    assert results == {"success", "failure", "throttled"}, "no result tells whether a username exists"
    # Series with known labels exist from the start (at 0 until they move).
    grants = {s.labels["grant_type"] for s in families["portcullis_token_errors"].samples}
    assert grants == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "unsupported",
        "none",
    }
    issued = {(s.labels["grant_type"], s.labels["client_id"]) for s in families["portcullis_tokens_issued"].samples}
    assert {(grant, "dynamic") for grant in ("authorization_code", "refresh_token", "client_credentials")} <= issued
    assert {"/token", "/userinfo", "/authorize"} <= endpoints
