"""Issue #8, "Download links redirect anywhere": the one rule for asset and tracking URLs
(shared/urls.py), and every model that takes such a URL over HTTP or Kafka using it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.fulfillment.api import FulfillmentIn, TrackingUpdateIn
from services.orders.api import OrderIn
from shared.catalog import FulfillmentLine, LineItem, Tracking
from shared.events import EnvelopeError, parse_event
from shared.urls import UnsafeUrl, UrlRules, check_url

ANY_HOST = UrlRules(asset_url_allowed_hosts="", allow_http_urls=False)
ALLOW_LIST = UrlRules(asset_url_allowed_hosts="cdn.example.com, .files.example.com", allow_http_urls=False)
DEVELOPMENT = UrlRules(asset_url_allowed_hosts="", allow_http_urls=True)

GOOD = [
    ("https://cdn.example.com/books/e-book.pdf", "https://cdn.example.com/books/e-book.pdf"),
    ("https://cdn.example.com", "https://cdn.example.com/"),
    ("HTTPS://CDN.Example.COM/a%20b?x=1#top", "https://cdn.example.com/a%20b?x=1#top"),
    ("https://cdn.example.com:8443/x", "https://cdn.example.com:8443/x"),
    ("https://8.8.8.8/file", "https://8.8.8.8/file"),
    ("https://[2606:4700::1111]/file", "https://[2606:4700::1111]/file"),
    ("https://用户.例子.广告/p", "https://xn--zouo53b.xn--fsqu00a.xn--4rr70v/p"),
]

BAD = [
    # the issue's own probes
    ("http://127.0.0.1:8003/settings", "https"),
    ("http://169.254.169.254/latest/meta-data/", "https"),
    ("https://shop.example@evil.example/", "user name or password"),
    ("javascript:alert(document.cookie)", "not javascript:"),
    ("data:text/html,<script>alert(1)</script>", "not data:"),
    # other schemes
    ("file:///etc/passwd", "not file:"),
    ("ftp://files.example.com/x", "not ftp:"),
    ("//cdn.example.com/x", "not a valid URL"),
    ("not a url", "spaces"),
    # loopback, private, link-local, shared, reserved, multicast: as browsers read them
    ("https://127.0.0.1/", "loopback"),
    ("https://2130706433/", "loopback"),
    ("https://0x7f.1/", "loopback"),
    ("https://10.1.2.3/", "private"),
    ("https://172.16.0.1/", "private"),
    ("https://192.168.1.1/", "private"),
    ("https://169.254.169.254/", "link-local"),
    ("https://100.64.0.1/", "reserved"),
    ("https://0.0.0.0/", "reserved"),
    ("https://224.0.0.1/", "reserved"),
    ("https://240.0.0.1/", "reserved"),
    ("https://[::1]/", "loopback"),
    ("https://[fe80::1]/", "link-local"),
    ("https://[fd00::1]/", "private"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[64:ff9b::a9fe:a9fe]/", "loopback"),
    ("https://[2002:7f00:1::]/", "loopback"),
    # internal names
    ("https://localhost/", "local or internal"),
    ("https://LOCALHOST./", "local or internal"),
    ("https://app.localhost/", "local or internal"),
    ("https://printer.local/", "local or internal"),
    ("https://metadata.google.internal/computeMetadata/v1/", "local or internal"),
    ("https://router.home.arpa/", "local or internal"),
    ("https://intranet/", "public host with a domain"),
    # tricks
    ("https://cdn.example.com/a\nb", "control characters"),
    ("https://cdn.example.com/\x00", "control characters"),
    ("https://cdn.example.com/" + "a" * 3000, "at most 2048"),
]


@pytest.mark.parametrize(("url", "normalised"), GOOD)
def test_public_https_urls_are_accepted_in_the_form_a_browser_follows(url: str, normalised: str) -> None:
    assert check_url(url, asset=True, rules=ANY_HOST) == normalised
    assert check_url(url, asset=False, rules=ANY_HOST) == normalised


@pytest.mark.parametrize(("url", "reason"), BAD)
def test_urls_a_buyer_must_not_be_sent_to_are_refused_with_the_reason(url: str, reason: str) -> None:
    for asset in (True, False):
        with pytest.raises(UnsafeUrl) as refused:
            check_url(url, asset=asset, rules=ANY_HOST)
        assert reason in str(refused.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8003/settings", "http://169.254.169.254/", "http://localhost:8001/", "http://[::1]/"]
)
def test_allowing_plain_http_for_development_still_refuses_internal_hosts(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="loopback|link-local|local or internal"):
        check_url(url, asset=True, rules=DEVELOPMENT)
    assert check_url("http://cdn.example.com/x", asset=True, rules=DEVELOPMENT) == "http://cdn.example.com/x"
    with pytest.raises(UnsafeUrl, match="must be an https URL, not http:"):
        check_url("http://cdn.example.com/x", asset=True, rules=ANY_HOST)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://cdn.example.com/x", True),
        ("https://CDN.example.com./x", True),
        ("https://files.example.com/x", True),
        ("https://eu.files.example.com/x", True),
        ("https://a.b.files.example.com/x", True),
        ("https://evil.example/x", False),
        ("https://evil.example\\@cdn.example.com/x", False),  # a browser goes to evil.example
        ("https://cdn.example.com.evil.example/x", False),
        ("https://evilfiles.example.com/x", False),
        ("https://other.cdn.example.com/x", False),  # no leading dot: that host only
        ("https://example.com/x", False),
    ],
)
def test_asset_hosts_must_be_on_the_allow_list_when_one_is_set(url: str, allowed: bool) -> None:
    if allowed:
        check_url(url, asset=True, rules=ALLOW_LIST)
    else:
        with pytest.raises(UnsafeUrl, match="not one of the allowed asset hosts"):
            check_url(url, asset=True, rules=ALLOW_LIST)
    check_url(url, asset=False, rules=ALLOW_LIST)  # the allow-list is for assets; tracking pages are anywhere public


def test_the_rules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSET_URL_ALLOWED_HOSTS", "cdn.example.com,.例子.广告")
    monkeypatch.setenv("ALLOW_HTTP_URLS", "true")
    rules = UrlRules()
    assert rules.allowed_asset_hosts() == ("cdn.example.com", ".xn--fsqu00a.xn--4rr70v")
    assert rules.allow_http_urls is True
    assert UrlRules.model_fields["allow_http_urls"].default is False


# --- every entrance uses it -----------------------------------------------------------------


def order_with_asset(url: str) -> dict[str, Any]:
    return {
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"},
        "currency": "SEK",
        "line_items": [{"sku": "EBOOK-1", "title": "E-book", "quantity": 1, "unit_price": "5.00",
                        "requires_shipping": False, "digital_asset_url": url}],
    }  # fmt: skip


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8003/settings", "http://169.254.169.254/latest/meta-data/", "https://shop.example@evil.example/",
     "javascript:alert(1)", "data:text/html,hi", "https://10.0.0.7/x"],
)  # fmt: skip
def test_post_orders_refuses_an_unsafe_digital_asset_url_naming_the_field(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        OrderIn.model_validate_json(json.dumps(order_with_asset(url)))
    [error] = refused.value.errors()
    assert error["loc"] == ("line_items", 0, "digital_asset_url")
    assert error["type"] == "unsafe_url" and error["msg"].startswith("URL ")


def test_post_orders_keeps_a_good_asset_url() -> None:
    order = OrderIn.model_validate_json(json.dumps(order_with_asset("https://cdn.example.com/e.pdf")))
    assert order.model_dump(mode="json")["line_items"][0]["digital_asset_url"] == "https://cdn.example.com/e.pdf"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"tracking": {"url": "javascript:alert(1)"}}, ("tracking", "url")),
        ({"tracking": {"urls": ["https://track.example/1", "http://169.254.169.254/"]}}, ("tracking", "urls", 1)),
        ({"tracking": {"url": "https://carrier.example@evil.example/"}}, ("tracking", "url")),
    ],
)
def test_fulfillment_tracking_urls_are_refused_naming_the_field(body: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as refused:
        FulfillmentIn.model_validate(body)
    assert [e["loc"] for e in refused.value.errors()] == [loc]
    with pytest.raises(ValidationError):
        TrackingUpdateIn.model_validate(body["tracking"])


def test_event_models_refuse_unsafe_urls() -> None:
    with pytest.raises(ValidationError, match="not javascript:"):
        Tracking(urls=["javascript:alert(1)"])
    with pytest.raises(ValidationError, match="not data:"):
        FulfillmentLine(line_item_id="l", sku="S", quantity=1, digital_asset_url="data:text/html,hi")
    with pytest.raises(ValidationError, match="loopback"):
        LineItem(
            id="l", sku="S", title="T", quantity=1, unit_price=Decimal("1"), digital_asset_url="https://127.0.0.1/x"
        )


def forged(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"specversion": "1.0", "id": "e-1", "source": "forger", "type": event_type,
                       "time": "2030-01-01T00:00:00Z", "subject": "o-1", "datacontenttype": "application/json",
                       "data": data}).encode()  # fmt: skip


def test_a_forged_shipped_answer_with_a_javascript_tracking_url_is_not_an_event_we_process() -> None:
    raw = forged("fulfillment_service.shipped", {
        "fulfillment_order_id": "fo-1", "fulfillment_service": "acme-3pl",
        "tracking": {"numbers": ["1"], "urls": ["javascript:alert(document.domain)"]},
    })  # fmt: skip
    with pytest.raises(EnvelopeError, match=r"tracking\.urls\.0: URL must be an https URL, not javascript:"):
        parse_event(raw)


def test_a_forged_order_paid_with_a_data_asset_url_is_not_an_event_we_process() -> None:
    line = {"id": "l-1", "sku": "EBOOK-1", "title": "E-book", "quantity": 1, "unit_price": "5",
            "requires_shipping": False, "digital_asset_url": "data:text/html,<script>alert(1)</script>"}  # fmt: skip
    order = {"id": "o-1", "customer": {"email": "a@example.com", "name": "A"}, "currency": "SEK",
             "financial_status": "paid", "line_items": [line], "created_at": "2030-01-01T00:00:00Z"}  # fmt: skip
    with pytest.raises(EnvelopeError, match=r"order\.line_items\.0\.digital_asset_url: URL must be an https URL"):
        parse_event(forged("order.paid", {"order": order}))


def test_tightening_the_asset_allow_list_does_not_break_the_events_of_orders_already_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Review finding: the allow-list was re-applied whenever a stored order's snapshot was turned
    into an event again, so setting ASSET_URL_ALLOWED_HOSTS later made every event of orders
    accepted before fail (hold, fulfil: 500; consumers dead-lettered them). The allow-list is an
    admission rule: POST /orders applies it, the download link re-checks it before redirecting;
    an event only requires a safe public URL."""
    monkeypatch.setattr("shared.urls.url_rules", lambda: ALLOW_LIST)
    accepted_earlier = {"id": "l-1", "sku": "EBOOK-1", "title": "Book", "quantity": 1, "unit_price": "5.00",
                        "requires_shipping": False, "digital_asset_url": "https://evil.example/book.pdf"}  # fmt: skip
    assert LineItem.model_validate(accepted_earlier).digital_asset_url == "https://evil.example/book.pdf"
    with pytest.raises(UnsafeUrl, match="not one of the allowed asset hosts"):
        check_url("https://evil.example/book.pdf", asset=True)  # what the download link does
    with pytest.raises(ValidationError, match="allowed asset hosts"):
        OrderIn.model_validate({
            "customer": {"email": "a@example.com", "name": "A"}, "currency": "SEK",
            "line_items": [{k: v for k, v in accepted_earlier.items() if k != "id"}],
        })  # fmt: skip
    with pytest.raises(ValidationError, match="loopback"):  # still never an internal host
        LineItem.model_validate({**accepted_earlier, "digital_asset_url": "https://127.0.0.1/x"})
