"""Composition root of the notifications service: what buyers are told, and when."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifications.api import build_router
from services.notifications.handlers import build_subscriptions
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8004


def build(settings: NotificationsSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(
        settings,
        collections=["notifications"],
        description="Notifications: emails to buyers about their orders, and download links.",
    )
    notifications = runtime.store("notifications")
    runtime.subscribe(build_subscriptions(notifications))
    return runtime, runtime.http_app(build_router(notifications))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
