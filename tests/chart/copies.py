"""The files that are copies of others, and how to bring them up to date:

- charts/portcullis/crds/portcullis.dev.yaml and deploy/base/crds.yaml: crds/portcullis.dev.yaml
- charts/portcullis/files/grafana-dashboard.json: deploy/monitoring/grafana-dashboard.json (when it exists)
- deploy/base/namespace.yaml and deploy/base/portcullis.yaml: the chart's default rendering

The tests fail when any copy is stale. Refresh them all with:
    target/chart-venv/bin/python tests/chart/copies.py --write
"""

import argparse
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from support import CHART, CRDS, ROOT, render  # noqa: E402

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "monitoring" / "grafana-dashboard.json"
NAMESPACE = "portcullis"
HEADER = (
    "# Generated from charts/portcullis (default values, release `portcullis`, namespace `portcullis`)\n"
    "# by tests/chart/copies.py --write. Do not edit by hand: change the chart.\n"
)


def _relabel(node):
    """Helm's own labels become kustomize's: no chart label, managed-by kustomize."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "labels" and isinstance(value, dict):
                value.pop("helm.sh/chart", None)
                if value.get("app.kubernetes.io/managed-by") == "Helm":
                    value["app.kubernetes.io/managed-by"] = "kustomize"
            _relabel(value)
    elif isinstance(node, list):
        for item in node:
            _relabel(item)
    return node


def namespace_object() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {
                "app.kubernetes.io/part-of": "portcullis",
                # Every Portcullis pod meets the restricted Pod Security Standard.
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    }


def portcullis_objects() -> list[dict]:
    """The chart's default objects, minus the two a kustomize base cannot carry: the `helm
    test` hook Pod, and the Redis password Secret (Helm generates it; with kustomize the
    operator creates it, so no password is ever committed)."""
    objects = []
    for template, docs in sorted(render({}, namespace=NAMESPACE).items()):
        for obj in docs:
            if "helm.sh/hook" in obj["metadata"].get("annotations", {}):
                continue
            if obj["kind"] == "Secret":
                continue
            objects.append(_relabel(obj))
    return objects


def expected_files() -> dict[Path, str]:
    """Every copy, by path, with the content it must have."""
    dump = lambda docs: HEADER + yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)  # noqa: E731
    files = {
        CHART / "crds" / CRDS.name: CRDS.read_text(),
        DEPLOY / "base" / "crds.yaml": CRDS.read_text(),
        DEPLOY / "base" / "namespace.yaml": dump([namespace_object()]),
        DEPLOY / "base" / "portcullis.yaml": dump(portcullis_objects()),
    }
    if DASHBOARD.exists():
        files[CHART / "files" / "grafana-dashboard.json"] = DASHBOARD.read_text()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite stale copies (default: only list them)")
    stale = []
    args = parser.parse_args()
    for path, text in expected_files().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale and not args.write:
        print("stale: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
