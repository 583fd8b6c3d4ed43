"""Composition root of the notifications service: what buyers are told, and when."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Self

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import Field, SecretStr, field_validator, model_validator

from services.notifications import store
from services.notifications.api import build_router
from services.notifications.application import Delivery, DeliveryMetrics
from services.notifications.domain.download_link import DownloadLink
from services.notifications.domain.emails import LinkPolicy
from services.notifications.domain.notification import Notification, RetryPolicy
from services.notifications.handlers import build_subscriptions
from services.notifications.mailer import Mailer, SmtpConfig
from services.notifications.templates import EmailTemplates
from services.notifications.tokens import MIN_SECRET_BYTES, DownloadTokens
from shared.runtime import ServiceRuntime
from shared.settings import Port, ServiceSettings, load_settings, seconds
from shared.store import AggregateStore

log = logging.getLogger(__name__)


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: Port = 8004

    # SMTP: `make run` starts a local sink and points these at it when SMTP_HOST is unset.
    smtp_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    smtp_port: Port = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool | None = None  # unset: upgrade when the server offers STARTTLS
    smtp_timeout_seconds: Annotated[float, seconds(0.1, 600)] = 10.0
    mail_from: Annotated[str, Field(min_length=3)] = "The Shop <orders@shop.example>"
    shop_name: Annotated[str, Field(min_length=1, max_length=255)] = "The Shop"
    notification_templates_dir: Path | None = None  # a shop's own versions of the email templates

    # Download links. The secret is required: a random one would die with the process, and
    # every link sent before a restart would stop working (`make run` keeps one under .local/).
    public_base_url: str | None = None  # unset: http://127.0.0.1:<HTTP_PORT>
    download_link_secret: SecretStr | None = Field(None, validate_default=True)
    download_link_ttl_seconds: Annotated[int, Field(ge=60, le=366 * 24 * 3600)] = 7 * 24 * 3600
    download_link_max_downloads: Annotated[int, Field(ge=0, le=1_000_000)] = 10  # 0: no cap

    # Sending: bounded attempts with exponential backoff, run apart from the Kafka consumer.
    notify_max_attempts: Annotated[int, Field(ge=1, le=1_000)] = 10
    notify_retry_backoff_seconds: Annotated[float, seconds(0.01, 86_400)] = 2.0
    notify_retry_max_backoff_seconds: Annotated[float, seconds(0.01, 7 * 86_400)] = 300.0
    notify_claim_seconds: Annotated[float, seconds(1, 3_600)] = 60.0  # longer than one SMTP exchange can take
    notify_sweep_seconds: Annotated[float, seconds(0.05, 3_600)] = 5.0
    notify_send_concurrency: Annotated[int, Field(ge=1, le=100)] = 4

    @field_validator("download_link_secret")
    @classmethod
    def _link_secret_kept(cls, secret: SecretStr | None) -> SecretStr:
        if secret is None or not secret.get_secret_value().strip():
            raise ValueError(
                "not set: links are signed with it, so it must outlive the process and be the same on every "
                "replica (generate one: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return secret

    @model_validator(mode="after")
    def _backoff_within_its_cap(self) -> Self:
        if self.notify_retry_max_backoff_seconds < self.notify_retry_backoff_seconds:
            raise ValueError(
                f"NOTIFY_RETRY_MAX_BACKOFF_SECONDS ({self.notify_retry_max_backoff_seconds}) must not be below "
                f"NOTIFY_RETRY_BACKOFF_SECONDS ({self.notify_retry_backoff_seconds})"
            )
        return self

    def smtp(self) -> SmtpConfig:
        return SmtpConfig(
            host=self.smtp_host,
            port=self.smtp_port,
            username=self.smtp_username,
            password=self.smtp_password.get_secret_value() if self.smtp_password else None,
            starttls=self.smtp_starttls,
            timeout_seconds=self.smtp_timeout_seconds,
            mail_from=self.mail_from,
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.notify_max_attempts,
            backoff=timedelta(seconds=self.notify_retry_backoff_seconds),
            max_backoff=timedelta(seconds=self.notify_retry_max_backoff_seconds),
            claim=timedelta(seconds=self.notify_claim_seconds),
        )

    def link_secret(self) -> bytes:
        assert self.download_link_secret is not None  # the validator refuses a missing one
        return self.download_link_secret.get_secret_value().encode()

    def link_policy(self) -> LinkPolicy:
        return LinkPolicy(
            tokens=DownloadTokens(self.link_secret()),
            public_base_url=self.public_base_url or f"http://127.0.0.1:{self.http_port}",
            lifetime=timedelta(seconds=self.download_link_ttl_seconds),
            max_downloads=self.download_link_max_downloads or None,
        )


def bootstrap(
    settings: NotificationsSettings,
    notifications: AggregateStore[Notification],
    downloads: AggregateStore[DownloadLink],
    registry: CollectorRegistry,
    *,
    mailer: Mailer | None = None,
) -> Delivery:
    """The service's application object, built from its settings and stores: what the handlers,
    the routes and the background sender call. A test passes its own stores and, to stage a
    failure, its own mailer."""
    templates = EmailTemplates(settings.notification_templates_dir, settings.shop_name)
    templates.check()
    return Delivery(
        notifications, downloads, templates, mailer or Mailer(settings.smtp()), settings.link_policy(),
        settings.retry_policy(), DeliveryMetrics(registry),
        concurrency=settings.notify_send_concurrency, sweep_seconds=settings.notify_sweep_seconds,
    )  # fmt: skip


def build(settings: NotificationsSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load_settings(NotificationsSettings)
    runtime = ServiceRuntime(
        settings,
        collections=["notifications"],
        description="Notifications: emails to buyers about their orders, and download links.",
    )
    delivery = bootstrap(
        settings,
        runtime.store("notifications", mapping=store.NOTIFICATIONS),
        runtime.store("downloads", mapping=store.DOWNLOAD_LINKS),
        runtime.registry,
    )
    runtime.subscribe(build_subscriptions(delivery))
    # The sender runs beside the consumer, from after the broker and outbox relay start
    # until before they stop, so the outcomes of the last sends are still relayed.
    runtime.background("email-delivery", delivery.run)

    runtime.indexes(store.INDEXES)

    runtime.upgrade("notifications", store.backfill_next_attempt_ts)
    return runtime, runtime.http_app(build_router(delivery))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
