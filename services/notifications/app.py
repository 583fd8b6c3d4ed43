"""Composition root of the notifications service: what buyers are told, and when."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from pydantic import SecretStr

from services.notifications.api import build_router
from services.notifications.delivery import Delivery, DeliveryMetrics
from services.notifications.domain import LinkPolicy, RetryPolicy
from services.notifications.handlers import build_subscriptions
from services.notifications.mailer import Mailer, SmtpConfig
from services.notifications.templates import EmailTemplates
from services.notifications.tokens import DownloadTokens
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8004

    # SMTP: `make run` starts a local sink and points these at it when SMTP_HOST is unset.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool | None = None  # unset: upgrade when the server offers STARTTLS
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "The Shop <orders@shop.example>"
    shop_name: str = "The Shop"
    notification_templates_dir: Path | None = None  # a shop's own versions of the email templates

    # Download links.
    public_base_url: str | None = None  # unset: http://127.0.0.1:<HTTP_PORT>
    download_link_secret: SecretStr | None = None
    download_link_ttl_seconds: int = 7 * 24 * 3600
    download_link_max_downloads: int = 10  # 0: no cap

    # Sending: bounded attempts with exponential backoff, run apart from the Kafka consumer.
    notify_max_attempts: int = 10
    notify_retry_backoff_seconds: float = 2.0
    notify_retry_max_backoff_seconds: float = 300.0
    notify_claim_seconds: float = 60.0  # longer than one SMTP exchange can take
    notify_sweep_seconds: float = 5.0
    notify_send_concurrency: int = 4

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
        if self.download_link_secret is not None:
            return self.download_link_secret.get_secret_value().encode()
        log.warning(
            "DOWNLOAD_LINK_SECRET is not set: download links are signed with a random key that lasts "
            "only as long as this process; set it (the same on every replica) in production"
        )
        return secrets.token_bytes(32)


def build(settings: NotificationsSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or NotificationsSettings()
    runtime = ServiceRuntime(
        settings,
        collections=["notifications"],
        description="Notifications: emails to buyers about their orders, and download links.",
    )
    notifications, downloads = runtime.store("notifications"), runtime.store("downloads")
    templates = EmailTemplates(settings.notification_templates_dir, settings.shop_name)
    templates.check()
    links = LinkPolicy(
        tokens=DownloadTokens(settings.link_secret()),
        public_base_url=settings.public_base_url or f"http://127.0.0.1:{settings.http_port}",
        lifetime=timedelta(seconds=settings.download_link_ttl_seconds),
        max_downloads=settings.download_link_max_downloads or None,
    )
    metrics = DeliveryMetrics(runtime.registry)
    delivery = Delivery(
        notifications, downloads, templates, Mailer(settings.smtp()), settings.retry_policy(), metrics,
        concurrency=settings.notify_send_concurrency, sweep_seconds=settings.notify_sweep_seconds,
    )  # fmt: skip
    runtime.subscribe(build_subscriptions(delivery, links))
    # The sender runs beside the consumer, from after the broker and outbox relay start
    # until before they stop, so the outcomes of the last sends are still relayed.
    runtime.background("email-delivery", delivery.run)
    return runtime, runtime.http_app(build_router(notifications, downloads, links.tokens, metrics))


def main() -> None:
    runtime, app = build()
    runtime.serve(app)
