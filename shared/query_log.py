"""A record of the query shapes a service sends to the store, for the test that checks every one
of them is served by an index (`STORE_QUERY_LOG=<directory>`; off by default).

Each distinct shape (the filter with its values replaced by their types) is written once, as a
JSON line with the first filter of that shape as it was sent, so the test can ask the store for
the plan of a real query.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import monitoring

# Where each command keeps its filter(s).
_FILTERS = {"find": "filter", "count": "query", "findAndModify": "query", "distinct": "query"}


def filters_of(command_name: str, command: Any) -> list[Any]:
    if command_name in _FILTERS:
        return [command.get(_FILTERS[command_name]) or {}]
    if command_name == "update":
        return [update.get("q", {}) for update in command.get("updates", [])]
    if command_name == "delete":
        return [delete.get("q", {}) for delete in command.get("deletes", [])]
    if command_name == "aggregate":
        pipeline = command.get("pipeline") or [{}]
        return [pipeline[0].get("$match", {})] if "$match" in pipeline[0] else [{}]
    return []


def shape(value: Any) -> Any:
    """The filter with values replaced by their type: what decides the query plan."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


class QueryShapes(monitoring.CommandListener):
    def __init__(self, directory: Path, service: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{service}-{os.getpid()}.jsonl"
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        collection = event.command.get(event.command_name)
        if not isinstance(collection, str):
            return
        for query in filters_of(event.command_name, event.command):
            key = json.dumps([event.database_name, collection, event.command_name, shape(query)], sort_keys=True)
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
                line = {
                    "database": event.database_name,
                    "collection": collection,
                    "command": event.command_name,
                    "filter": json_util.dumps(query),
                    "limit": event.command.get("limit"),
                    "sort": json_util.dumps(event.command.get("sort")),
                }
                with self.path.open("a") as log:
                    log.write(json.dumps(line) + "\n")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass
