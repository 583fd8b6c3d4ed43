"""Checking AsyncAPI documents as a subscriber would: the official parser (@asyncapi/parser, installed
into .tools/ by deploy/test-tools.sh) and JSON Schema validation of messages against a document."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / ".tools" / "node_modules"
PARSE = ROOT / "deploy" / "asyncapi" / "parse.cjs"
ERROR = 0  # a diagnostic's severity: 0 error, 1 warning, 2 information, 3 hint


def official_parser_diagnostics(*documents: Path) -> dict[str, list[dict[str, Any]]]:
    """Each document's diagnostics from @asyncapi/parser (skips the test, saying why, without it)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the official AsyncAPI parser cannot run here")
    if not (NODE_MODULES / "@asyncapi" / "parser").is_dir():
        pytest.skip("@asyncapi/parser is not installed: run `bash deploy/test-tools.sh` (needs npm)")
    done = subprocess.run(
        [node, str(PARSE), str(NODE_MODULES), *map(str, documents)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return found


def errors(diagnostics: list[dict[str, Any]]) -> list[str]:
    return [f"{'/'.join(map(str, d['path']))}: {d['message']}" for d in diagnostics if d["severity"] == ERROR]


class Messages:
    """Validates messages against the schemas of a document's components (headers and payload)."""

    URI = "urn:test:asyncapi"

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry: Registry[Any] = Registry().with_resource(
            self.URI, Resource.from_contents(document, default_specification=DRAFT7)
        )

    def validator(self, message: str, part: str) -> Draft7Validator:
        reference = f"{self.URI}#/components/messages/{message}/{part}"
        return Draft7Validator(
            {"$ref": reference}, registry=self.registry, format_checker=Draft7Validator.FORMAT_CHECKER
        )

    def problems(self, message: str, part: str, value: Any) -> list[str]:
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in self.validator(message, part).iter_errors(value)
        ]
