"""Rendering the Kustomize overlays and validating what they render, for the deploy tests.

Built-in kinds are checked by kubernetes-validate (the Kubernetes OpenAPI schemas, strict: unknown
fields fail); custom resources against the CRD their operator publishes (deploy/k8s/crds/, copied
from the operators' repositories), made strict the same way.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
Manifest = dict[str, Any]


def kustomize_command() -> list[str] | None:
    """`kubectl kustomize` (the machine's or the virtualenv's, see deploy/test-tools.sh), or a
    standalone `kustomize build`; None when neither is installed."""
    venv = str(Path(sys.executable).parent)
    kubectl = shutil.which("kubectl") or shutil.which("kubectl", path=venv)
    if kubectl:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    return [kustomize, "build"] if kustomize else None


@cache
def render(overlay: str) -> tuple[Manifest, ...]:
    command = kustomize_command()
    assert command is not None
    done = subprocess.run([*command, str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def _strict(node: Any) -> Any:
    """An OpenAPI v3 structural schema as a JSON Schema that refuses unknown fields, as the API
    server does with strict field validation (x-kubernetes-preserve-unknown-fields keeps them)."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _strict(value) for key, value in node.items()}
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.pop("nullable", False) and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        schema["additionalProperties"] = False
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], Manifest]:
    """(apiVersion, kind) -> the strict JSON Schema of each served version of the vendored CRDs."""
    schemas = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schemas[(f"{group}/{version['name']}", kind)] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


def validate_custom(resource: Manifest) -> list[str]:
    """What is wrong with a custom resource, by its CRD's schema; raises KeyError for an unknown kind."""
    import jsonschema

    schema = crd_schemas()[(resource["apiVersion"], resource["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    errors = validator.iter_errors(resource)
    return [f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}" for error in errors]
