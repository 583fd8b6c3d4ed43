"""Configuration from the environment; the variable names are part of the public contract.

Every setting has a type and bounds, so that a typo (`HTTP_PORT=80011`, `HANDLER_ATTEMPTS=0`)
stops the service at start with a message naming the variable, instead of running it wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Subclasses that change a default repeat the type (`http_port: Port = 8003`), which keeps the bounds.
Port = Annotated[int, Field(ge=1, le=65_535)]


def seconds(low: float, high: float) -> Any:
    """A duration in seconds within [low, high]; never NaN or infinite."""
    return Field(ge=low, le=high, allow_inf_nan=False)


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster: what the services and the operators' tools (deploy.dlq) read."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_bootstrap_servers: Annotated[str, Field(min_length=1)] = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # With SSL / SASL_SSL: the CA certificates (PEM) the brokers' certificates are checked against,
    # such as Strimzi's cluster CA; unset, the system's (which SSL_CERT_FILE may replace).
    kafka_ssl_cafile: FilePath | None = None

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        """`sasl_ssl` and `scram-sha-512` mean what they say."""
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _security_complete(self) -> Self:
        """A CA file without TLS, or SASL without its credentials, is a mistake in the configuration:
        said at start, not found out as a client that silently skips it or cannot log in."""
        protocol = self.kafka_security_protocol
        if self.kafka_ssl_cafile is not None and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(f"KAFKA_SSL_CAFILE is used with SSL or SASL_SSL only, not {protocol}")
        if protocol.startswith("SASL") and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"{protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        return self


class ServiceSettings(KafkaSettings):
    """What every service reads. Each service subclasses it to name itself and its port."""

    service_name: str = "service"
    http_host: str = "0.0.0.0"
    http_port: Port = 8000
    # The largest request body any route accepts (declared or streamed); larger is 413.
    max_request_bytes: Annotated[int, Field(ge=1_024, le=100_000_000)] = 1_000_000

    # Short enough that a replaced replica's partitions move on quickly.
    kafka_session_timeout_ms: Annotated[int, Field(ge=1_000, le=3_600_000)] = 10_000
    kafka_heartbeat_interval_ms: Annotated[int, Field(ge=100, le=3_600_000)] = 1_000
    # How long a fetch may wait for data; the embedded broker always waits it out.
    kafka_fetch_max_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 100
    # Offsets of handled messages are committed together, at most this often (0: after each one).
    kafka_commit_interval_ms: Annotated[int, Field(ge=0, le=60_000)] = 100

    mongodb_uri: Annotated[str, Field(pattern=r"^mongodb(\+srv)?://")] = (
        "mongodb://127.0.0.1:27017/?directConnection=true"
    )
    mongodb_database: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[^/\\. \"$]+$")] | None = None

    # Delivery: bounded retries for a message whose handling fails, then the dead-letter topic.
    handler_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    handler_backoff_seconds: Annotated[float, seconds(0, 3_600)] = 0.1
    # The relay is woken by its own writes; the poll only finds what a crashed replica left behind.
    outbox_poll_seconds: Annotated[float, seconds(0.01, 3_600)] = 2.0
    # How long an aggregate remembers the ids of the events it applied: at least the topics'
    # retention (Kafka's default is 7 days), since nothing older can be redelivered.
    # How long a POST's Idempotency-Key and first answer are kept (Stripe keeps them 24 hours),
    # and how often the expired ones are swept away.
    idempotency_key_keep_seconds: Annotated[float, seconds(60, 30 * 86_400)] = 86_400
    idempotency_key_sweep_seconds: Annotated[float, seconds(1, 86_400)] = 600
    # How often the business gauges (open fulfillment orders, outbox backlog, ...) are read from the store.
    business_gauges_seconds: Annotated[float, seconds(1, 3_600)] = 30.0
    inbox_retention_seconds: Annotated[float, seconds(3_600, 365 * 86_400)] = 7 * 86_400

    log_level: LogLevel = "INFO"
    # Tests only: write each distinct query shape sent to the store to a file in this directory.
    store_query_log: Path | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        """`info` means what it says."""
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Self:
        if self.kafka_heartbeat_interval_ms >= self.kafka_session_timeout_ms:
            raise ValueError(
                f"KAFKA_HEARTBEAT_INTERVAL_MS ({self.kafka_heartbeat_interval_ms}) must be below "
                f"KAFKA_SESSION_TIMEOUT_MS ({self.kafka_session_timeout_ms})"
            )
        return self

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


S = TypeVar("S", bound=BaseSettings)


class InvalidSettings(SystemExit):
    """The environment names a value a service cannot run with: it stops at once, saying which."""


def load_settings(cls: type[S]) -> S:
    """The settings from the environment, or a stop that names each bad variable and why."""
    try:
        return cls()
    except ValidationError as invalid:
        problems = []
        for error in invalid.errors():
            name = "_".join(str(part) for part in error["loc"]).upper()
            reason = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"  {name}: {reason}" if name else f"  {reason}")
        raise InvalidSettings("invalid settings in the environment:\n" + "\n".join(problems)) from None
