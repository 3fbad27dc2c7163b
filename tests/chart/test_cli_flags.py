"""The arguments the chart passes exist in the binary: catches a misspelled flag before a
pod crash-loops on it. Runs `portcullis <command> --help` of the binary that scripts/test built."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from support import ROOT, render_objects

def help_flags(command: str) -> set[str]:
    binary = Path(os.environ.get("PORTCULLIS_BIN", ROOT / "target" / "debug" / "portcullis"))
    assert binary.exists(), f"{binary} is missing: build it first (scripts/test does)"
    result = subprocess.run([str(binary), command, "--help"], capture_output=True, text=True, timeout=30, check=True)
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z-]*)", result.stdout, re.MULTILINE))


@pytest.mark.parametrize(("deployment", "command"), [("portcullis-provider", "serve"), ("portcullis-controller", "controller")])
def test_chart_passes_only_flags_the_binary_knows(deployment, command):
    objects = render_objects({"registration": {"mode": "token", "tokenSecret": {"name": "t", "key": "k"}}})
    (container,) = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment)[
        "spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == command
    passed = {arg.split("=", 1)[0] for arg in container["args"][1:] if arg.startswith("--")}
    known = help_flags(command)
    assert passed <= known, f"flags the binary does not know: {sorted(passed - known)}"
