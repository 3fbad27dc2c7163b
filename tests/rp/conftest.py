"""Starts `portcullis dev` on the fixture manifests for relying-party tests.

These tests drive Portcullis with independent, widely used client libraries (PyJWT,
Authlib, requests) instead of our own code, so they catch interoperability mistakes
that tests written against our own understanding of the RFCs would share.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("PORTCULLIS_BIN", ROOT / "target" / "debug" / "portcullis"))


def start_dev(manifests, *extra_args):
    """Runs `portcullis dev` on `manifests`; returns the process and what it printed: the
    issuer, the metrics base URL and the generated client secrets."""
    process = subprocess.Popen(
        [str(BINARY), "dev", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
         "--manifests", str(manifests), *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    generated = {}
    issuer = None
    metrics = None
    assert process.stdout is not None
    for line in process.stdout:
        scrape = re.match(r"Metrics on (\S+)/metrics$", line)
        if scrape:
            metrics = scrape.group(1)
        secret = re.match(r"Generated a secret for client `([^`]+)` .*: (\S+)$", line)
        if secret:
            generated[secret.group(1)] = secret.group(2)
        listening = re.match(r"Portcullis dev listening on \S+ \(issuer (\S+),", line)
        if listening:
            issuer = listening.group(1)
            break
    assert issuer and metrics, "portcullis dev did not start"
    return process, {"issuer": issuer, "metrics": metrics, "generated": generated}


def stop_dev(process):
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def provider():
    process, info = start_dev(ROOT / "tests/fixtures/manifests")
    yield info
    stop_dev(process)


@pytest.fixture(scope="session")
def metadata(provider):
    response = requests.get(provider["issuer"] + "/.well-known/openid-configuration", timeout=10)
    response.raise_for_status()
    return response.json()
