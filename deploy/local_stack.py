"""`make run`: the whole system on one machine, embedded broker and store included.

Starts the embedded Kafka-protocol broker and the MongoDB-protocol store unless
KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI point at real ones, then the four services; waits until
each answers /readyz; on Ctrl-C or SIGTERM stops everything it started, services first.
The test suite starts the same stack on free ports through `LocalStack`.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deploy.auth import LocalAuth, write_private

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"orders": 8001, "inventory": 8002, "fulfillment": 8003, "notifications": 8004}
LINK_SECRET = "DOWNLOAD_LINK_SECRET"
MIN_SECRET_LENGTH = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def is_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def kept_secret(path: Path) -> str:
    """A secret generated once (`secrets.token_urlsafe(32)`) and kept in `path`, readable by its
    owner only, so that every later start signs with the same key."""
    for _ in range(3):
        try:
            secret = path.read_text().strip()
        except FileNotFoundError:
            secret = None
        if secret:
            if len(secret) < MIN_SECRET_LENGTH:
                raise RuntimeError(f"{path} holds fewer than {MIN_SECRET_LENGTH} characters; delete it for a new one")
            return secret
        if secret == "":  # created by a start that stopped before writing: nothing was signed with it
            path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # another start made it first: use theirs
        secret = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
        return secret
    raise RuntimeError(f"could not create {path}")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class LocalStack:
    """The processes of a local system; ports of 0 mean 'pick free ones' (tests)."""

    data_dir: Path = ROOT / ".local"
    kafka_port: int = 9092
    mongo_port: int = 27017
    service_ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    persistent_store: bool = True
    use_environment: bool = True  # honour KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI if set
    extra_env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    kafka_bootstrap: str = ""
    mongodb_uri: str = ""
    smtp_port: int = 1025  # the local SMTP sink's, started when no SMTP_HOST is configured
    smtp_sink: str = ""  # host:port of the sink this stack started, if any
    auth: LocalAuth | None = None  # the local signing key, unless an identity provider is configured

    def start_infrastructure(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        external = self.use_environment and (os.environ.get("AUTH_JWKS_URL") or os.environ.get("AUTH_JWKS_FILE"))
        if not external:
            self.auth = LocalAuth(self.data_dir / "auth").ensure()
        self.kafka_bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "") if self.use_environment else ""
        if not self.kafka_bootstrap:
            port = self.kafka_port or free_port()
            self._spawn("kafka", [sys.executable, "-m", "deploy.embedded_kafka", "--port", str(port)])
            wait_for_port("127.0.0.1", port, 30)
            self.kafka_bootstrap = f"127.0.0.1:{port}"
        self.mongodb_uri = os.environ.get("MONGODB_URI", "") if self.use_environment else ""
        if not self.mongodb_uri:
            port = self.mongo_port or free_port()
            store = self.data_dir / "mongo"
            store.mkdir(parents=True, exist_ok=True)
            self._spawn("mongo", [
                sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1", "--port", str(port),
                "--data-dir", str(store) if self.persistent_store else "memory",
                "--log-file", str(self.log_dir / "mongo-server.log"),
                "--pid-file", str(self.data_dir / f"mongo-{port}.pid"),
            ])  # fmt: skip
            wait_for_port("127.0.0.1", port, 30)
            self.mongodb_uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        configured = self.extra_env.get("SMTP_HOST") or (os.environ.get("SMTP_HOST") if self.use_environment else "")
        if not configured:
            port = self.smtp_port or free_port()
            self._spawn("smtp-sink", [
                sys.executable, "-m", "deploy.smtp_sink", "--port", str(port), "--dir", str(self.mail_dir),
            ])  # fmt: skip
            wait_for_port("127.0.0.1", port, 30)
            self.smtp_sink = f"127.0.0.1:{port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def admin_headers(self, ttl_seconds: float = 3600) -> dict[str, str]:
        """An Authorization header with a merchant token of every merchant scope (scripts, benches)."""
        if self.auth is None:
            raise RuntimeError("this stack trusts an identity provider, not a local key: use a token of yours")
        return {"authorization": f"Bearer {self.auth.admin_token(ttl_seconds)}"}

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin-token"

    def write_admin_token(self) -> Path | None:
        """A merchant token with every merchant scope, minted afresh at each start (0600)."""
        if self.auth is None:
            return None
        write_private(self.admin_token_path, self.auth.admin_token().encode())
        return self.admin_token_path

    @property
    def mail_dir(self) -> Path:
        """Where the local SMTP sink keeps every email as a .eml file."""
        return self.data_dir / "mail"

    @property
    def link_secret_path(self) -> Path:
        """Where the download-link secret is kept when the environment sets none."""
        return self.data_dir / "download-link-secret"

    def service_env(self, name: str, port: int, service: str | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "MONGODB_URI": self.mongodb_uri,
            "HTTP_PORT": str(port),
            "HTTP_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **self._smtp_env(),
            **(self.auth.env() if self.auth else {}),
            **self.extra_env,
        }
        if (service or name) == "notifications" and not env.get(LINK_SECRET):
            # Links must keep working across restarts: the same key every time, kept under data_dir.
            env[LINK_SECRET] = kept_secret(self.link_secret_path)
        return env

    def _smtp_env(self) -> dict[str, str]:
        if not self.smtp_sink:
            return {}
        host, _, port = self.smtp_sink.rpartition(":")
        return {"SMTP_HOST": host, "SMTP_PORT": port, "SMTP_STARTTLS": "false"}

    def start_services(self) -> None:
        for name, port in list(self.service_ports.items()):
            port = port or free_port()
            self.service_ports[name] = port
            self.start_service(name)

    def start_service(self, name: str) -> Child:
        port = self.service_ports[name]
        return self._spawn(name, [sys.executable, "-m", f"services.{name}"], self.service_env(name, port))

    def start_replica(self, service: str, replica: str) -> Child:
        """Another process of `service` in the same consumer group, on a port of its own."""
        self.service_ports[replica] = free_port()
        env = self.service_env(replica, self.service_ports[replica], service)
        return self._spawn(replica, [sys.executable, "-m", f"services.{service}"], env)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_ports[name]}"

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.service_ports)
        while pending and time.monotonic() < deadline:
            for child in self.children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
            pending = {name for name in pending if not is_ready(self.url(name) + "/readyz")}
            if pending:
                time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            # A session of its own: Ctrl-C reaches only us, and we stop children in order.
            process = subprocess.Popen(
                argv, cwd=ROOT, env=env or dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    def stop_child(self, child: Child, timeout: float = 15) -> None:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        if child in self.children:
            self.children.remove(child)

    def kill_child(self, child: Child) -> None:
        """Like a crash: no shutdown hooks run."""
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
        self.children.remove(child)

    def stop(self) -> None:
        # Services first (they drain their outbox), then the store, the broker and the mail sink.
        for child in sorted(self.children, key=lambda c: c.name in ("kafka", "mongo", "smtp-sink")):
            self.stop_child(child)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ready-timeout", type=float, default=60)
    args = parser.parse_args()

    stack = LocalStack()
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    started = time.monotonic()
    try:
        stack.start_infrastructure()
        stack.start_services()
        stack.wait_until_ready(args.ready_timeout)
        print(f"all services ready in {time.monotonic() - started:.1f}s (logs in {stack.log_dir})", flush=True)
        print(f"  kafka          {stack.kafka_bootstrap}", flush=True)
        print(f"  mongodb        {stack.mongodb_uri}", flush=True)
        if stack.smtp_sink:
            print(f"  smtp sink      {stack.smtp_sink}  (each email as a .eml file in {stack.mail_dir}/)", flush=True)
        for name in stack.service_ports:
            print(f"  {name:<14} {stack.url(name)}  (/docs, /asyncapi, /metrics)", flush=True)
        token = stack.write_admin_token()
        if token is not None:
            relative = token.relative_to(ROOT) if token.is_relative_to(ROOT) else token
            print(
                f"A merchant token with every scope is in {relative} (valid 30 days, renewed at each start):",
                flush=True,
            )
            print(f'  curl -H "authorization: Bearer $(cat {relative})" {stack.url("orders")}/orders', flush=True)
            print("  other tokens: .venv/bin/python -m deploy.auth token --sub NAME --scope SCOPE ...", flush=True)
        else:
            print("  tokens come from your identity provider (AUTH_JWKS_URL / AUTH_JWKS_FILE are set)", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for child in stack.children:
                if child.process.poll() is not None:
                    print(f"{child.name} exited with {child.process.returncode}; see {child.log_path}", flush=True)
                    stopping = True
            time.sleep(0.3)
    except (TimeoutError, RuntimeError) as exc:
        print(f"local stack failed to start: {exc}", file=sys.stderr, flush=True)
        stack.stop()
        sys.exit(1)
    finally:
        if stack.children:
            print("stopping...", flush=True)
            stack.stop()
    print("stopped.", flush=True)


if __name__ == "__main__":
    main()
