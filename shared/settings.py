"""Configuration from the environment; the variable names are part of the public contract."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service reads. Each service subclasses it to name itself and its port."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = "service"
    http_host: str = "0.0.0.0"
    http_port: int = 8000

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Short enough that a replaced replica's partitions move on quickly.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    # How long a fetch may wait for data; the embedded broker always waits it out.
    kafka_fetch_max_wait_ms: int = 100

    mongodb_uri: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_database: str | None = None

    # Delivery: bounded retries for a message whose handling fails, then the dead-letter topic.
    handler_attempts: int = 3
    handler_backoff_seconds: float = 0.1
    outbox_poll_seconds: float = 0.5
    # How long an aggregate remembers the ids of the events it applied: at least the topics'
    # retention (Kafka's default is 7 days), since nothing older can be redelivered.
    inbox_retention_seconds: float = 7 * 86_400

    log_level: str = "INFO"

    @property
    def database_name(self) -> str:
        return self.mongodb_database or self.service_name
