"""The v1 compatibility guard: would a schema change break someone who built on the published one?

A registry's BACKWARD check, made to fit the platform's promise ("changes are additive only"):
a change passes when every message valid under the published schema is still valid under the new
one, and every field a v1 consumer reads is still there with the same type. So these fail:

- a field removed (a rename is a removal plus an addition), or a type removed from the catalog;
- a field retyped: its `type`, its alternatives (`anyOf`: made nullable or not), a format, a bound
  or a pattern changed, or a scalar default changed (what an old event without it means);
- a field made required, or a new field that is required (earlier events lack it);
- an enum value (or a `const`) removed.

And these pass: a new type, a new optional field, a new enum value, a field no longer required
(producers still write every field), and text (titles, descriptions, examples).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Schema = dict[str, Any]

ANNOTATIONS = frozenset(
    {"title", "description", "examples", "$comment", "$id", "$schema", "deprecated", "readOnly", "writeOnly"}
)
"""Keywords that say something to people and constrain nothing."""
_STRUCTURE = frozenset({"properties", "required", "enum", "const", "anyOf", "oneOf", "allOf", "items", "$defs", "$ref"})


def breaking_changes(published: Mapping[str, Schema], current: Mapping[str, Schema]) -> list[str]:
    """What in `current` (event type -> data schema) breaks a consumer of `published`, one line each;
    types only in `current` are new, which is fine."""
    problems: list[str] = []
    for event_type, old in sorted(published.items()):
        new = current.get(event_type)
        if new is None:
            problems.append(f"{event_type}: type removed (a v1 type is never removed)")
            continue
        problems.extend(f"{event_type}: {problem}" for problem in _Comparison(old, new).compare(old, new, "data"))
    return problems


class _Comparison:
    """One type's published and current schemas, each resolving its own local `$ref`s."""

    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.seen: set[tuple[str, str]] = set()

    def compare(self, old: Schema, new: Schema, path: str) -> list[str]:
        refs = (old.get("$ref", ""), new.get("$ref", ""))
        if refs != ("", ""):
            if refs in self.seen:  # a recursive model: this pair is being compared already
                return []
            self.seen.add(refs)
        old, new = _resolve(old, self.old_root), _resolve(new, self.new_root)
        problems = self._values(old, new, path)
        problems += self._fields(old, new, path)
        for keyword in ("anyOf", "oneOf", "allOf"):
            before, after = old.get(keyword), new.get(keyword)
            if before is None and after is None:
                continue
            if before is None or after is None or len(before) != len(after):
                problems.append(f"{path}: retyped ({keyword} {_brief(before)} -> {_brief(after)})")
                continue
            for old_branch, new_branch in zip(before, after, strict=True):
                problems += self.compare(old_branch, new_branch, path)
        if "items" in old or "items" in new:
            if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
                problems += self.compare(old["items"], new["items"], f"{path}[]")
            else:
                problems.append(f"{path}: retyped (items {old.get('items')!r} -> {new.get('items')!r})")
        for keyword in sorted((old.keys() | new.keys()) - ANNOTATIONS - _STRUCTURE):
            before, after = old.get(keyword), new.get(keyword)
            if keyword == "default" and (isinstance(before, dict) or isinstance(after, dict)):
                continue  # an object's default grows with its optional fields
            if before != after:
                what = "retyped" if keyword == "type" else f"{keyword} changed"
                problems.append(f"{path}: {what} ({before!r} -> {after!r})")
        return problems

    def _values(self, old: Schema, new: Schema, path: str) -> list[str]:
        """Every value that was allowed still is (values may be added)."""
        before, after = _allowed_values(old), _allowed_values(new)
        if before is None:
            return []
        if after is None:
            return []  # no longer restricted to a list: every value passes
        removed = [value for value in before if value not in after]
        return [f"{path}: enum value(s) removed: {removed!r}"] if removed else []

    def _fields(self, old: Schema, new: Schema, path: str) -> list[str]:
        problems: list[str] = []
        old_fields: dict[str, Schema] = old.get("properties", {})
        new_fields: dict[str, Schema] = new.get("properties", {})
        for name, schema in old_fields.items():
            if name not in new_fields:
                problems.append(f"{path}.{name}: field removed (or renamed)")
            else:
                problems += self.compare(schema, new_fields[name], f"{path}.{name}")
        required_before, required_after = set(old.get("required", ())), set(new.get("required", ()))
        for name in sorted(required_after - required_before):
            if name in old_fields:
                problems.append(f"{path}.{name}: made required")
            else:
                problems.append(f"{path}.{name}: new field is required (events written before it lack it)")
        return problems


def _resolve(schema: Schema, root: Schema) -> Schema:
    """The schema a local `$ref` points at, with the referring schema's own keywords (a default)."""
    while "$ref" in schema:
        pointer = schema["$ref"]
        if not pointer.startswith("#/"):
            raise ValueError(f"only local references are compared, not {pointer!r}")
        target: Any = root
        for part in pointer[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**target, **siblings}
    return schema


def _allowed_values(schema: Schema) -> list[Any] | None:
    if "enum" in schema:
        return list(schema["enum"])
    if "const" in schema:
        return [schema["const"]]
    return None


def _brief(branches: list[Schema] | None) -> str:
    if branches is None:
        return "none"
    return "[" + ", ".join(str(b.get("type") or b.get("$ref", "...")) for b in branches) + "]"
