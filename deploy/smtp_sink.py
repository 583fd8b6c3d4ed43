"""A local SMTP server that delivers nowhere: every message it accepts is kept as a file.

`make run` starts it when SMTP_HOST is unset and points the notifications service at it;
each email lands in `.local/mail/` as a `.eml` file that any mail program (or a text
editor) opens. The tests run the same sink inside the test process.

To try the failure paths by hand, two kinds of recipient misbehave on purpose, whatever
their domain: `bounce@...` (or `bounce+anything@...`) is refused for good (550) and
`defer@...` (or `defer+anything@...`) is told to try again later (451).

It offers SMTPUTF8 (RFC 6531), as current mail servers do, so an address such as
`用户@例子.广告` is delivered; `--no-smtputf8` plays an older server that does not.
"""

from __future__ import annotations

import argparse
import email
import os
import signal
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

REFUSALS = {
    "bounce": "550 5.1.1 Mailbox does not exist (smtp sink: bounce@ is always refused)",
    "defer": "451 4.3.0 Try again later (smtp sink: defer@ is always deferred)",
}


@dataclass(frozen=True)
class Received:
    """One accepted message: what the envelope said and the message as parsed."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    path: Path | None


class SinkHandler:
    """aiosmtpd handler: accepts everything but the misbehaving recipients, keeps what it accepts."""

    def __init__(self, folder: Path | None, remember: bool = True) -> None:
        self.folder = folder
        self.remember = remember  # keep parsed messages in memory (tests), not in a long-running sink
        self.received: list[Received] = []
        self._lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        refusal = REFUSALS.get(address.rpartition("@")[0].partition("+")[0].lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        path = self._keep(raw) if self.folder is not None else None
        if not self.remember:
            return "250 2.0.0 Kept by the local smtp sink"
        message = email.message_from_bytes(raw, _class=EmailMessage, policy=default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message, raw, path))
        return "250 2.0.0 Kept by the local smtp sink"

    def _keep(self, raw: bytes) -> Path:
        assert self.folder is not None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        partial = path.with_suffix(".part")
        partial.write_bytes(raw)
        os.replace(partial, path)  # a reader never sees half a message
        return path

    def messages(self) -> list[Received]:
        with self._lock:
            return list(self.received)


class SmtpSink:
    """The sink on a port of this machine; start and stop it as often as needed (the tests
    stop it to play a mail server that is down for a while)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1025,
        folder: Path | None = None,
        remember: bool = True,
        smtputf8: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.smtputf8 = smtputf8
        self.handler = SinkHandler(folder, remember)
        self._controller: Controller | None = None

    def start(self) -> None:
        if self._controller is None:
            self._controller = Controller(
                self.handler, hostname=self.host, port=self.port, ready_timeout=10, enable_SMTPUTF8=self.smtputf8
            )
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def messages(self) -> list[Received]:
        return self.handler.messages()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"), help="where each message is kept")
    parser.add_argument("--no-smtputf8", action="store_true", help="do not offer SMTPUTF8 (an older server)")
    args = parser.parse_args()
    sink = SmtpSink(args.host, args.port, args.dir, remember=False, smtputf8=not args.no_smtputf8)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    sink.start()
    print(f"smtp sink listening on {args.host}:{args.port}; messages kept in {args.dir}/", flush=True)
    try:
        stopping.wait()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
