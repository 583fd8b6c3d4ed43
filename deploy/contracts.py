"""Writes the published contracts from the catalog: `python -m deploy.contracts` (`--check` only compares).

- docs/schemas/v1/<type>.json: the JSON Schema of each event type's data (shared/schemas.py), `$id`
  its `dataschema`. These are what v1 was published as: a type's file is written when the type is
  new or its change is compatible (deploy/compatibility.py), never for a change that would break a
  v1 consumer (then this exits 1 and names it: such a change is a new topic version, not an edit),
  and never deleted.
- docs/asyncapi.yaml: the whole platform's AsyncAPI document (shared/asyncapi.py), as every
  service serves it at `/asyncapi.yaml`.

Run it after changing the catalog and commit what it writes with the change: the tests fail while
the committed files differ from what the catalog generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.compatibility import breaking_changes
from shared.asyncapi import platform_yaml
from shared.schemas import Schema, data_schemas

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas" / "v1"
ASYNCAPI = ROOT / "docs" / "asyncapi.yaml"


def schema_text(schema: Schema) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def published_schemas(folder: Path | None = None) -> dict[str, Schema]:
    """The committed v1 schemas, by event type (the file's name)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted((folder or SCHEMAS).glob("*.json"))}


def generated() -> dict[Path, str]:
    """Every file the catalog generates, with its content."""
    files = {SCHEMAS / f"{event_type}.json": schema_text(schema) for event_type, schema in data_schemas().items()}
    files[ASYNCAPI] = platform_yaml()
    return files


def stale(files: dict[Path, str]) -> list[Path]:
    """The generated files whose committed copy is missing or different."""
    return [path for path, text in files.items() if not path.exists() or path.read_text() != text]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    breaks = breaking_changes(published_schemas(), data_schemas())
    if breaks:
        print("refusing: these changes would break a v1 consumer (see the README's compatibility promise):")
        print("\n".join(f"  {line}" for line in breaks))
        return 1
    files = generated()
    out_of_date = stale(files)
    if args.check:
        for path in out_of_date:
            print(f"out of date: {_shown(path)} (run: python -m deploy.contracts)")
        return 1 if out_of_date else 0
    for path in out_of_date:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path])
        print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
