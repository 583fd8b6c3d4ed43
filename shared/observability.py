"""Logs as one JSON object per line, and the Prometheus registry every service exposes."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs carry paths with ids only; keep them at warning to keep the stream readable.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger(service).setLevel(level.upper())


class ServiceMetrics:
    """Metrics of our own delivery machinery, beside FastStream's message metrics."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.dead_lettered = Counter(
            "dead_lettered_messages",
            "Messages sent to a dead-letter topic, by source topic and reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.retried = Counter(
            "handler_retries", "Handler attempts that failed and were retried.", ["event_type"], registry=registry
        )
        self.outbox_published = Counter(
            "outbox_published_events", "Events relayed from the outbox to Kafka.", ["event_type"], registry=registry
        )
        self.offset_resets = Counter(
            "consumer_offset_resets",
            "Offset resets past unread messages (deleted by the broker before they were read), by partition.",
            ["topic", "partition"],
            registry=registry,
        )
