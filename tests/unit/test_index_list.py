"""The README's index table lists exactly the indexes the services declare: an index added to a
service's INDEXES and not to the README (or the other way round) fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("orders", "inventory", "fulfillment", "notifications")
ROW = re.compile(r"^\| (\w+) \| (\w+) \| \(([\w, ]+)\) \|", re.M)


def declared() -> set[tuple[str, str, tuple[str, ...]]]:
    found = set()
    for service in SERVICES:
        indexes = importlib.import_module(f"services.{service}.store").INDEXES
        for collection, models in indexes.items():
            for model in models:
                found.add((service, collection, tuple(model.document["key"])))
    return found


def listed() -> set[tuple[str, str, tuple[str, ...]]]:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Store queries and indexes") :]
    section = section[: section.index("\n## ", 1)]
    return {(s, c, tuple(k.strip() for k in keys.split(","))) for s, c, keys in ROW.findall(section)}


def test_the_readme_lists_every_declared_index_and_no_other() -> None:
    assert declared(), "the services declare indexes"
    assert listed() == declared(), (
        f"declared, not in the README: {sorted(declared() - listed())}; "
        f"in the README, not declared: {sorted(listed() - declared())}"
    )
