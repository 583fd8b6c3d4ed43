"""Session fixtures: the embedded broker and store on free ports, and the four services.

Free ports keep the tests clear of a `make run` on the same machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pymongo import AsyncMongoClient

from deploy.local_stack import LocalStack, free_port, wait_for_port
from deploy.smtp_sink import SmtpSink
from shared.auth import MERCHANT_SCOPES

T = TypeVar("T")

SERVICES = ("orders", "inventory", "fulfillment", "notifications")

TEST_ENV = {
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "OUTBOX_POLL_SECONDS": "0.2",
    "HANDLER_BACKOFF_SECONDS": "0.05",
    "LOG_LEVEL": "INFO",
    # notifications: quick retries and sweeps, a known link secret, a small download cap
    "DOWNLOAD_LINK_SECRET": "test-download-link-secret-0123456789",
    "DOWNLOAD_LINK_MAX_DOWNLOADS": "3",
    "NOTIFY_MAX_ATTEMPTS": "8",
    "NOTIFY_RETRY_BACKOFF_SECONDS": "0.5",
    "NOTIFY_RETRY_MAX_BACKOFF_SECONDS": "2",
    "NOTIFY_SWEEP_SECONDS": "0.25",
    "NOTIFY_CLAIM_SECONDS": "5",
    "SMTP_TIMEOUT_SECONDS": "3",
    # a key added to the JWKS (a rotation, a fulfillment service's key) is picked up at first use
    "AUTH_JWKS_REFRESH_COOLDOWN_SECONDS": "0",
}

MERCHANT = "test-merchant"
"""The subject of the tokens the `http` client sends: the actor of what the tests do over HTTP."""


def bearer(stack: LocalStack, *scopes: str, sub: str = MERCHANT, ttl: float = 3600) -> dict[str, str]:
    """An Authorization header with a token the stack trusts (every merchant scope by default)."""
    assert stack.auth is not None, "the stack has no local signing key"
    return {"authorization": f"Bearer {stack.auth.mint(sub, scopes or MERCHANT_SCOPES, ttl)}"}


@contextmanager
def store_server(folder: Path) -> Iterator[str]:
    """The embedded store alone (nx-27017, in memory) on a free port, for tests of one service's
    persistence that need neither the broker nor the services."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1", "--port", str(port), "--data-dir", "memory",
         "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port("127.0.0.1", port, 30)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def smtp_server() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) inside the test process, on a free port."""
    sink = SmtpSink(port=free_port())
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """The session stack's emails go to it."""
    with smtp_server() as sink:
        yield sink


@contextmanager
def running_stack(data_dir: Path, services: Iterable[str] = SERVICES, **env: str) -> Iterator[LocalStack]:
    """A whole local system on free ports: broker, store, SMTP sink unless SMTP_HOST is given,
    and the services. Tests that kill processes run one of their own."""
    local = LocalStack(
        data_dir=data_dir,
        kafka_port=0,
        mongo_port=0,
        smtp_port=0,
        service_ports=dict.fromkeys(services, 0),
        persistent_store=False,
        use_environment=False,
        extra_env={**TEST_ENV, **env},
    )
    try:
        local.start_infrastructure()
        local.start_services()
        local.wait_until_ready(90)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, smtp_sink: SmtpSink) -> Iterator[LocalStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    with running_stack(
        data_dir, SMTP_HOST=smtp_sink.host, SMTP_PORT=str(smtp_sink.port), STORE_QUERY_LOG=str(data_dir / "queries")
    ) as local:
        yield local


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded store alone, for tests of one service's persistence: they boot neither the
    broker nor the services (a module may start a store of its own, for counts of its own)."""
    with store_server(tmp_path_factory.mktemp("store")) as uri:
        yield uri


@pytest.fixture
async def db(mongo_uri: str) -> AsyncIterator[Any]:
    """A database of this test's own, dropped after it."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    database = client[f"test_{uuid.uuid4().hex[:12]}"]
    try:
        yield database
    finally:
        await client.drop_database(database.name)
        await client.close()


@pytest.fixture
async def http(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the stack's services, as a merchant with every merchant scope."""
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack)) as client:
        yield client


def auth_settings(stack: LocalStack) -> dict[str, Any]:
    """Settings that make a service built in-process trust the stack's tokens."""
    assert stack.auth is not None
    return {name.lower(): value for name, value in stack.auth.env().items()}


@pytest.fixture
def token(stack: LocalStack) -> Callable[..., str]:
    """`token(*scopes, sub=...)`: a JWT the stack trusts, with just these scopes."""

    def mint(*scopes: str, sub: str = MERCHANT, ttl: float = 600) -> str:
        assert stack.auth is not None
        return stack.auth.mint(sub, scopes, ttl)

    return mint


async def eventually(probe: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Wait until `probe()` (sync or async) returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
