"""Where the platform may send a buyer, decided once: asset and tracking URLs.

A digital line's `digital_asset_url` becomes a shop-signed download link that redirects (302)
to it, and a tracking URL is put into a shipping email as a link. Both are chosen by whoever
sends the order or the tracking (a merchant's integration over HTTP, a fulfillment service or
any producer over Kafka), so both are checked at every entrance with this one rule:

- `https` only (`http` too when ALLOW_HTTP_URLS=true, for development): never `javascript:`,
  `data:`, `file:` or the like;
- no user name or password (`https://shop.example@evil.example/` goes to evil.example);
- a public host: no IP address in a loopback, private, link-local, shared, reserved or
  multicast range (`127.0.0.1`, `10.0.0.1`, `169.254.169.254`, `[::1]`, IPv4 written as
  `2130706433` or `0x7f.1` included, as browsers read them), no `localhost` or name under
  `.localhost`, `.local`, `.internal`, `.home.arpa`, and no single-label name (`intranet`);
- asset URLs only: a host on ASSET_URL_ALLOWED_HOSTS when it is set (a comma list:
  `cdn.example.com` is that host, `.example.com` is example.com and every host under it;
  unset or empty: any public host).

URLs are parsed as browsers parse them (WHATWG, pydantic-core's `Url`) and the normalised
form is what is kept and sent on, so what was checked is what the buyer's browser follows.

Host names are not resolved in DNS. The platform never fetches these URLs itself: it hands
them to the buyer's browser or mail program, which resolves the name in its own network,
later, perhaps differently (split horizon, DNS rebinding), so a lookup here would prove
nothing about where the buyer ends up. It would also make every order wait on DNS and fail
when DNS is down. The allow-list of asset hosts is the control that holds; literal addresses
and internal-only names are refused because no public lookup is needed to know where they go.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError, Url
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.text import control_character_problem

MAX_URL_LENGTH = 2048
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRules(BaseSettings):
    """The configurable part of the rule (environment variables of every service)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    asset_url_allowed_hosts: str = ""
    allow_http_urls: bool = False  # development only: plain-http asset and tracking URLs

    def allowed_asset_hosts(self) -> tuple[str, ...]:
        return tuple(_host_entry(entry) for entry in self.asset_url_allowed_hosts.split(",") if entry.strip())


@cache
def url_rules() -> UrlRules:
    """The rules from the environment, read once per process."""
    return UrlRules()


class UnsafeUrl(ValueError):
    """A URL the platform will not send a buyer to; the message says why."""


def check_url(url: str, *, asset: bool, rules: UrlRules | None = None, allow_list: bool = True) -> str:
    """The URL in normalised form if a buyer may be sent there, else UnsafeUrl saying why.
    `asset`: a digital asset (the allow-list applies, unless `allow_list` is False); else a
    tracking URL."""
    rules = rules or url_rules()
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"must be at most {MAX_URL_LENGTH} characters")
    if " " in url.strip() or control_character_problem(url):
        raise UnsafeUrl("must not contain spaces or control characters")
    try:
        parsed = Url(url.strip())
    except Exception:  # pydantic-core raises its ValidationError with the parser's reason
        raise UnsafeUrl("is not a valid URL") from None
    schemes = ("https", "http") if rules.allow_http_urls else ("https",)
    if parsed.scheme not in schemes:
        raise UnsafeUrl(f"must be an {' or '.join(schemes)} URL, not {parsed.scheme}:")
    if parsed.username or parsed.password:
        raise UnsafeUrl("must not contain a user name or password (the part before '@' hides the real host)")
    host = (parsed.host or "").rstrip(".").lower()
    if not host:
        raise UnsafeUrl("must name a host")
    problem = _internal_host_problem(host)
    if problem:
        raise UnsafeUrl(problem)
    allowed = rules.allowed_asset_hosts()
    if asset and allow_list and allowed and not any(_host_matches(host, entry) for entry in allowed):
        raise UnsafeUrl(f"host {host!r} is not one of the allowed asset hosts (ASSET_URL_ALLOWED_HOSTS)")
    return str(parsed)


def _internal_host_problem(host: str) -> str | None:
    address = _ip_address(host)
    if address is not None:
        if _not_public(address):
            return f"must not point at a loopback, private, link-local or reserved address ({host})"
        return None
    if host == "localhost" or host.endswith(INTERNAL_SUFFIXES):
        return f"must not point at a local or internal host name ({host})"
    if "." not in host:
        return f"must name a public host with a domain, not {host!r}"
    return None


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (address.sixtofour) or (address.teredo[1] if address.teredo else None)
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and _not_public(embedded):
            return True
    return bool(
        not address.is_global
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _host_entry(entry: str) -> str:
    """An allow-list entry as hosts are compared: lower case, IDNA (punycode), no trailing dot."""
    entry = entry.strip().lower().rstrip(".")
    leading_dot = entry.startswith(".")
    name = entry.lstrip(".")
    if not name.isascii():
        name = name.encode("idna").decode("ascii")
    return ("." if leading_dot else "") + name


def _host_matches(host: str, entry: str) -> bool:
    if entry.startswith("."):
        return host == entry[1:] or host.endswith(entry)
    return host == entry


def _checked(asset: bool, allow_list: bool = True) -> AfterValidator:
    def check(url: str) -> str:
        try:
            return check_url(url, asset=asset, allow_list=allow_list)
        except UnsafeUrl as unsafe:
            raise PydanticCustomError("unsafe_url", "{reason}", {"reason": f"URL {unsafe}"}) from None

    return AfterValidator(check)


def _url_field(description: str) -> Any:
    return Field(max_length=MAX_URL_LENGTH, description=description, json_schema_extra={"format": "uri"})


AssetUrl = Annotated[
    str,
    _url_field("https URL of the digital asset, on a public host (and on ASSET_URL_ALLOWED_HOSTS when set)"),
    _checked(asset=True),
]
"""A digital asset's URL as a merchant gives it (download links redirect to it): the allow-list
applies where it enters, over HTTP."""

StoredAssetUrl = Annotated[
    str, _url_field("https URL of the digital asset, on a public host"), _checked(asset=True, allow_list=False)
]
"""A digital asset's URL in an event: always a safe public URL, but the allow-list (a setting
that may change) is not re-applied to orders accepted under an earlier one, whose events must
still go out; the download link checks it again before it redirects."""

TrackingUrl = Annotated[
    str, _url_field("https URL of the carrier's tracking page, on a public host"), _checked(asset=False)
]
"""A shipment's tracking URL (shipping emails link to it)."""
