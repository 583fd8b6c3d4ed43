"""Every setting has bounds and a strict type: a typo stops the service at start, naming the
variable, instead of running it wrong (issue: "Settings accept absurd values ... Bounds and
strict types on every setting")."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.fulfillment.api import SettingsIn
from services.fulfillment.app import FulfillmentSettings
from services.fulfillment.lookups import ShopSettings
from services.inventory.app import InventorySettings
from services.notifications.app import NotificationsSettings
from services.orders.app import OrdersSettings
from shared.settings import InvalidSettings, ServiceSettings, load_settings

SECRET = "a-download-link-secret-of-some-length"
SETTINGS: list[type[ServiceSettings]] = [OrdersSettings, InventorySettings, FulfillmentSettings, NotificationsSettings]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: the machine's own environment must not decide the outcome."""
    for name in ServiceSettings.model_fields | NotificationsSettings.model_fields | FulfillmentSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("DOWNLOAD_LINK_SECRET", SECRET)


def refusal(cls: type[ServiceSettings]) -> str:
    with pytest.raises(InvalidSettings) as stopped:
        load_settings(cls)
    return str(stopped.value)


@pytest.mark.parametrize("cls", SETTINGS)
def test_every_service_starts_with_its_defaults(cls: type[ServiceSettings]) -> None:
    assert load_settings(cls).http_port in (8001, 8002, 8003, 8004)


BAD_COMMON = [
    ("HTTP_PORT", "80011"),
    ("HTTP_PORT", "0"),
    ("HTTP_PORT", "eighty"),
    ("HANDLER_ATTEMPTS", "0"),
    ("HANDLER_BACKOFF_SECONDS", "-1"),
    ("HANDLER_BACKOFF_SECONDS", "nan"),
    ("OUTBOX_POLL_SECONDS", "1e-300"),
    ("OUTBOX_POLL_SECONDS", "inf"),
    ("KAFKA_SESSION_TIMEOUT_MS", "-5"),
    ("KAFKA_FETCH_MAX_WAIT_MS", "99999999"),
    ("KAFKA_SECURITY_PROTOCOL", "PLAINTEXTT"),
    ("KAFKA_SASL_MECHANISM", "SCRAM"),
    ("KAFKA_SSL_CAFILE", "/no/such/ca.crt"),
    ("LOG_LEVEL", "LOUD"),
    ("MONGODB_URI", "127.0.0.1:27017"),
    ("MAX_REQUEST_BYTES", "0"),
]


@pytest.mark.parametrize("cls", SETTINGS)
@pytest.mark.parametrize(("variable", "value"), BAD_COMMON)
def test_a_typo_in_a_common_setting_stops_every_service_naming_the_variable(
    cls: type[ServiceSettings], variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    message = refusal(cls)
    assert f"  {variable}: " in message, message


def test_a_heartbeat_longer_than_the_session_timeout_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("KAFKA_HEARTBEAT_INTERVAL_MS", "6000")
    assert "KAFKA_HEARTBEAT_INTERVAL_MS (6000) must be below KAFKA_SESSION_TIMEOUT_MS (6000)" in refusal(OrdersSettings)


def test_log_level_and_protocol_names_are_taken_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "orders")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "not-a-real-password")
    settings = load_settings(OrdersSettings)
    assert (settings.log_level, settings.kafka_security_protocol) == ("WARNING", "SASL_SSL")


@pytest.mark.parametrize(
    ("variables", "said"),
    [
        ({"KAFKA_SSL_CAFILE": __file__}, "KAFKA_SSL_CAFILE is used with SSL or SASL_SSL only, not PLAINTEXT"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "orders"},
         "SASL_SSL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "SASL_PLAINTEXT needs KAFKA_SASL_USERNAME and"),
    ],
)  # fmt: skip
def test_kafka_security_without_what_it_needs_stops_the_service(
    variables: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert said in refusal(OrdersSettings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SWEEP_INTERVAL_SECONDS", "1e-300"),
        ("SWEEP_INTERVAL_SECONDS", "0.5"),
        ("SWEEP_INTERVAL_SECONDS", "86401"),
        ("POST_PURCHASE_HOLD_SECONDS", "-1"),
        ("POST_PURCHASE_HOLD_SECONDS", str(31 * 86_400)),
        ("BULK_JOB_LEASE_SECONDS", "0"),
        ("AUTO_FULFILL", "maybe"),
    ],
)
def test_fulfillment_settings_have_bounds(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    assert f"  {variable}: " in refusal(FulfillmentSettings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMTP_PORT", "0"),
        ("SMTP_TIMEOUT_SECONDS", "0"),
        ("NOTIFY_MAX_ATTEMPTS", "0"),
        ("NOTIFY_SEND_CONCURRENCY", "0"),
        ("NOTIFY_SWEEP_SECONDS", "1e-300"),
        ("NOTIFY_CLAIM_SECONDS", "-1"),
        ("DOWNLOAD_LINK_TTL_SECONDS", "0"),
        ("DOWNLOAD_LINK_MAX_DOWNLOADS", "-1"),
    ],
)
def test_notifications_settings_have_bounds(variable: str, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, value)
    assert f"  {variable}: " in refusal(NotificationsSettings)


def test_a_retry_backoff_above_its_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_RETRY_BACKOFF_SECONDS", "10")
    monkeypatch.setenv("NOTIFY_RETRY_MAX_BACKOFF_SECONDS", "5")
    assert "must not be below NOTIFY_RETRY_BACKOFF_SECONDS" in refusal(NotificationsSettings)


@pytest.mark.parametrize("value", [None, "", "   ", "too-short"])
def test_notifications_refuses_to_start_without_a_lasting_download_link_secret(
    value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restarting notifications invalidated every link: without DOWNLOAD_LINK_SECRET each process
    signed with a random key. Now there is no random key: no secret, no start."""
    if value is None:
        monkeypatch.delenv("DOWNLOAD_LINK_SECRET")
    else:
        monkeypatch.setenv("DOWNLOAD_LINK_SECRET", value)
    message = refusal(NotificationsSettings)
    assert "  DOWNLOAD_LINK_SECRET: " in message
    if value and value.strip():
        assert value not in message  # a secret is never echoed


def test_the_same_secret_signs_in_every_process() -> None:
    assert load_settings(NotificationsSettings).link_secret() == load_settings(NotificationsSettings).link_secret()


# --- PUT /settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sweep_interval_seconds": 1e-300}, "sweep_interval_seconds"),
        ({"sweep_interval_seconds": 0}, "sweep_interval_seconds"),
        ({"sweep_interval_seconds": 0.5}, "sweep_interval_seconds"),
        ({"sweep_interval_seconds": 86_401}, "sweep_interval_seconds"),
        ({"sweep_interval_seconds": float("nan")}, "sweep_interval_seconds"),
        ({"post_purchase_hold_seconds": -1}, "post_purchase_hold_seconds"),
        ({"post_purchase_hold_seconds": 31 * 86_400}, "post_purchase_hold_seconds"),
        ({"post_purchase_hold_seconds": float("inf")}, "post_purchase_hold_seconds"),
        ({"auto_fulfill": 0}, "auto_fulfill"),
        ({"auto_fulfill": 1}, "auto_fulfill"),
        ({"auto_fulfill": "true"}, "auto_fulfill"),
    ],
)
def test_settings_accept_no_absurd_values(body: dict[str, object], field: str) -> None:
    """`PUT /settings {"sweep_interval_seconds": 1e-300}` made the sweep run 36 passes/s, and
    `"auto_fulfill": 0` was accepted as a boolean."""
    with pytest.raises(ValidationError) as refused:
        SettingsIn.model_validate(body)
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]
    with pytest.raises(ValidationError):
        ShopSettings.model_validate(body)


def test_settings_within_bounds_are_taken() -> None:
    body = {"auto_fulfill": True, "sweep_interval_seconds": 1, "post_purchase_hold_seconds": 0}
    assert SettingsIn.model_validate(body).model_dump(exclude_none=True) == body
    assert ShopSettings.model_validate({"sweep_interval_seconds": 86_400}).sweep_interval_seconds == 86_400
