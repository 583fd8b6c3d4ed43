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

    log_level: str = "INFO"

    # Identity: bearer JWTs checked against a JWKS, from an identity provider (AUTH_JWKS_URL) or a
    # file (AUTH_JWKS_FILE, what `make run` writes). One of the two, with issuer and audience, is
    # required: a service without them refuses to start rather than answer anyone.
    auth_jwks_url: str | None = None
    auth_jwks_file: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_leeway_seconds: float = 30.0  # clock skew allowed on exp / nbf / iat
    auth_jwks_cache_seconds: float = 300.0  # the key set is fetched again after this long
    # A token naming an unknown key fetches the key set again (a rotation), at most this often.
    auth_jwks_refresh_cooldown_seconds: float = 30.0

    @property
    def database_name(self) -> str:
        return self.mongodb_database or self.service_name
