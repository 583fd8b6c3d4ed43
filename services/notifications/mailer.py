"""Sending one email over SMTP (aiosmtplib), and telling a passing failure from a final one.

SMTP says it itself: a 4xx reply means "try again later", a 5xx reply means "never". A
connection that cannot be made, drops or times out is a passing failure too. A rejected
login (535) is our configuration's fault, not the message's: it is retried like a passing
failure, so a fixed password lets the waiting emails go out.

Internationalised addresses (RFC 6531): a domain in any script is sent in its ASCII (IDNA)
form, which every server takes; a local part in another script (`用户@例子.广告`) needs the
server's SMTPUTF8 extension, which aiosmtplib uses when offered. A server that does not offer
it can never take that message, so that is a permanent failure that says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import aiosmtplib
from email_validator import EmailNotValidError, validate_email

from services.notifications.domain.notification import Notification
from shared.clock import parse
from shared.text import one_line

_EMAIL = re.compile(r"<?[^\s<>@\"']+@[^\s<>@\"']+>?")


def redact(text: str) -> str:
    """Server replies often echo the address; what we keep or log must not. Nor may they
    carry control characters into what we keep."""
    return _EMAIL.sub("<address>", one_line(text))


class SendFailed(Exception):
    """The SMTP server did not take the message. `permanent`: do not try again."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool | None = None  # None: upgrade when the server offers it
    timeout_seconds: float = 10.0
    mail_from: str = "The Shop <orders@shop.example>"

    @property
    def sender_domain(self) -> str:
        address = parseaddr(self.mail_from)[1]
        return address.rpartition("@")[2] or "notifications.local"


def build_message(config: SmtpConfig, notification: Notification) -> EmailMessage:
    """A multipart/alternative message (plain text and HTML) with a stable Message-ID and
    Date: sending the same notification twice produces the same message."""
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = recipient(notification.to, notification.to_name or "")
    message["Subject"] = notification.subject
    message["Date"] = format_datetime(parse(notification.created_at))
    message["Message-ID"] = notification.message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["X-Notification-Type"] = notification.type.value
    message.set_content(notification.text)
    message.add_alternative(notification.html, subtype="html")
    return message


def recipient(address: str, name: str) -> Address:
    """The To address: its domain in ASCII (IDNA) so that any server takes it; a local part
    in another script stays as it is (sending it then needs SMTPUTF8). SendFailed (for good)
    if it is no email address at all."""
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        raise SendFailed("the recipient address is not a valid email address", permanent=True) from None
    local, _, domain = (checked.ascii_email or checked.normalized).rpartition("@")
    return Address(display_name=one_line(name), username=local, domain=domain)


class Mailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        """Hand the message to the SMTP server; SendFailed says whether to try again."""
        config = self.config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username or None,
                password=config.password or None,
                start_tls=config.starttls,
                timeout=config.timeout_seconds,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise SendFailed(f"SMTP login refused ({exc.code}); check SMTP_USERNAME/SMTP_PASSWORD", False) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            if "SMTPUTF8" not in str(exc):
                raise SendFailed(f"SMTP server does not support what is needed: {redact(str(exc))}", False) from exc
            raise SendFailed(
                "the recipient address has non-ASCII characters before the @ and the mail server does not "
                "offer SMTPUTF8 (RFC 6531), so it cannot take this email",
                permanent=True,
            ) from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            reason = "; ".join(f"{r.code} {redact(r.message)}" for r in exc.recipients)
            raise SendFailed(f"recipient refused: {reason}", all(code >= 500 for code in codes)) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailed(f"SMTP server replied {exc.code} {redact(exc.message)}", exc.code >= 500) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailed(f"SMTP server unreachable: {type(exc).__name__}", False) from exc
