"""Download tokens: genuine ones verify, altered ones are refused, expired ones say so."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.domain import download_link, emails
from services.notifications.tokens import (
    DownloadClaims,
    DownloadTokens,
    ExpiredDownloadToken,
    InvalidDownloadToken,
    asset_digest,
    token_id,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKENS = DownloadTokens(b"a-test-secret-of-32-bytes-length")
ASSET = "https://cdn.example.com/books/e-book.pdf"


def claims(exp: datetime = NOW + timedelta(days=7), max_downloads: int | None = 3) -> DownloadClaims:
    return DownloadClaims(
        jti=token_id("event-1.download_links", "line-1"),
        order_id="order-1",
        line_item_id="line-1",
        asset=asset_digest(ASSET),
        exp=int(exp.timestamp()),
        max=max_downloads,
    )


def test_a_signed_token_verifies_to_its_claims() -> None:
    token = TOKENS.sign(claims())
    assert TOKENS.verify(token, NOW) == claims()
    assert "/" not in token and "+" not in token and "=" not in token  # safe in a URL path


def test_the_token_does_not_reveal_the_asset_url() -> None:
    token = TOKENS.sign(claims())
    body = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert "cdn.example.com" not in body and "order-1" in body


def test_an_expired_token_is_refused_as_expired_with_its_claims() -> None:
    token = TOKENS.sign(claims(exp=NOW - timedelta(seconds=1)))
    with pytest.raises(ExpiredDownloadToken) as refused:
        TOKENS.verify(token, NOW)
    assert refused.value.claims.order_id == "order-1"
    # ... and one second before its end it still works
    assert TOKENS.verify(TOKENS.sign(claims(exp=NOW + timedelta(seconds=1))), NOW)


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = DownloadTokens(b"another-secret-of-32-bytes-long!").sign(claims())
    with pytest.raises(InvalidDownloadToken):
        TOKENS.verify(token, NOW)


def test_a_tampered_expired_token_is_refused_as_tampered_not_expired() -> None:
    token = TOKENS.sign(claims(exp=NOW - timedelta(days=1)))
    body, signature = token.split(".")
    with pytest.raises(InvalidDownloadToken):
        TOKENS.verify(body + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"), NOW)


def test_extending_the_expiry_breaks_the_signature() -> None:
    genuine = TOKENS.sign(claims(exp=NOW - timedelta(days=1)))
    forged_body = TOKENS.sign(claims(exp=NOW + timedelta(days=365))).split(".")[0]
    with pytest.raises(InvalidDownloadToken):
        TOKENS.verify(forged_body + "." + genuine.split(".")[1], NOW)


@given(st.data())
def test_changing_any_single_character_is_detected(data: st.DataObject) -> None:
    token = TOKENS.sign(claims())
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.").filter(
            lambda c: c != token[position]
        )
    )
    tampered = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(InvalidDownloadToken):
        TOKENS.verify(tampered, NOW)


@given(st.text(max_size=400))
def test_any_garbage_is_refused_as_invalid_and_nothing_else(garbage: str) -> None:
    with pytest.raises(InvalidDownloadToken):
        TOKENS.verify(garbage, NOW)


def test_a_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        DownloadTokens(b"short")


def test_token_ids_are_per_email_and_line() -> None:
    assert token_id("e1.download_links", "l1") == token_id("e1.download_links", "l1")
    assert token_id("e1.download_links", "l1") != token_id("e1.download_links", "l2")
    assert token_id("e1.download_links", "l1") != token_id("e2.download_links", "l1")


# --- counting downloads of a verified link ----------------------------------------------


def grant(max_downloads: int | None = 2) -> emails.DownloadGrant:
    return emails.DownloadGrant(claims().jti, "order-1", "line-1", ASSET, "2026-03-08T12:00:00+00:00", max_downloads)


def opened() -> download_link.DownloadLink:
    change = download_link.open_grant(None, grant(), NOW)
    assert change is not None
    assert change.document.id == claims().jti
    return change.document


def test_opening_a_grant_twice_changes_nothing() -> None:
    assert download_link.open_grant(opened(), grant(), NOW) is None


def test_downloads_are_counted_up_to_the_cap_then_refused_as_gone() -> None:
    document = opened()
    for expected in (1, 2):
        document = download_link.count_download(document, claims(max_downloads=2), NOW).document
        assert document.downloads == expected
    assert document.last_download_at == NOW.isoformat(timespec="microseconds")
    with pytest.raises(download_link.DownloadRefused) as refused:
        download_link.count_download(document, claims(max_downloads=2), NOW)
    assert refused.value.status == 410 and refused.value.code == "download_limit_reached"
    assert "2 times" in refused.value.message


def test_without_a_cap_downloads_are_only_counted() -> None:
    document = opened()
    for _ in range(50):
        document = download_link.count_download(document, claims(max_downloads=None), NOW).document
    assert document.downloads == 50


def test_a_link_for_another_line_or_asset_is_refused() -> None:
    other_line = DownloadClaims(**{**claims().__dict__, "line_item_id": "line-2"})
    other_asset = DownloadClaims(**{**claims().__dict__, "asset": asset_digest("https://cdn.example.com/x.zip")})
    for wrong in (other_line, other_asset):
        with pytest.raises(download_link.DownloadRefused) as refused:
            download_link.count_download(opened(), wrong, NOW)
        assert refused.value.status == 403


def test_a_link_the_shop_has_no_record_of_is_not_found() -> None:
    with pytest.raises(download_link.DownloadRefused) as refused:
        download_link.count_download(None, claims(), NOW)
    assert refused.value.status == 404


@pytest.mark.parametrize(
    "asset", ["http://127.0.0.1:8003/settings", "https://169.254.169.254/latest", "https://shop.example@evil.example/"]
)
def test_a_grant_whose_asset_url_is_unsafe_never_redirects(asset: str) -> None:
    """Issue #8, "Download links redirect anywhere": defence in depth, whatever let the URL in
    (a grant recorded before the rule, a rule changed since), the redirect checks it again."""
    bound = DownloadClaims(**{**claims().__dict__, "asset": asset_digest(asset)})
    document = opened().model_copy(update={"asset_url": asset, "asset": asset_digest(asset)})
    with pytest.raises(download_link.DownloadRefused) as refused:
        download_link.count_download(document, bound, NOW)
    assert (refused.value.status, refused.value.code) == (403, "download_unavailable")
    assert asset not in refused.value.message and refused.value.internal_reason
    assert document.downloads == 0
