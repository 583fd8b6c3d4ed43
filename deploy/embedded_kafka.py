"""A local Kafka-protocol broker for `make run` and the tests, with no JVM and no Docker.

It is librdkafka's built-in mock cluster (shipped inside the confluent-kafka wheel, driven
through ctypes) behind a small TCP forwarder that gives it a fixed, advertised address.

Limits: one broker, data in memory only, no CreateTopics (every topic in the catalog is
pre-created), retention bounded by memory only (the mock's own default deletes the oldest
batches of a partition past 5 MiB or 100,000 batches, read or not; deploy.kafka_retention
lifts that), a rebalance of a live consumer group takes about session.timeout.ms minus one
second, and every member of a group must list the same partition assignor first (else
librdkafka aborts the whole process). Produce responses carry a fake append time (1234).
The forwarder also works around a mock bug: a group leader's SyncGroup (v0-v3) that reaches
the mock before its followers' completes the sync alone, and the followers then get
INVALID_REQUEST; so it holds the leader's SyncGroup until the followers' have gone through.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import signal
import socket
import ssl
import struct
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import FrameType

from deploy.kafka_retention import keep_every_message
from shared.topics import all_topic_partitions

RD_KAFKA_PRODUCER = 0
BROKER_ID = 1
SYNC_GROUP = 14  # Kafka API key
FOLLOWER_WAIT_S = 3.0  # longest hold of a leader's SyncGroup
SETTLE_S = 0.05  # lets the mock read the followers' frames before the leader's
GroupGeneration = tuple[bytes, int]


@cache
def _librdkafka() -> ctypes.CDLL:
    spec = importlib.util.find_spec("confluent_kafka")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("confluent-kafka is not installed")
    libs = Path(next(iter(spec.submodule_search_locations))).parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka*.so*"))
    if not found:
        raise RuntimeError(f"no librdkafka shared library in {libs}")
    lib = ctypes.CDLL(str(found[0]))
    ptr, i32, s = ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p
    signatures: dict[str, tuple[list[type], type | None]] = {
        "rd_kafka_conf_new": ([], ptr),
        "rd_kafka_conf_set": ([ptr, s, s, s, ctypes.c_size_t], ctypes.c_int),
        "rd_kafka_new": ([ctypes.c_int, ptr, s, ctypes.c_size_t], ptr),
        "rd_kafka_destroy": ([ptr], None),
        "rd_kafka_mock_cluster_new": ([ptr, ctypes.c_int], ptr),
        "rd_kafka_mock_cluster_destroy": ([ptr], None),
        "rd_kafka_mock_cluster_bootstraps": ([ptr], s),
        "rd_kafka_mock_topic_create": ([ptr, s, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "rd_kafka_mock_set_controller_id": ([ptr, i32], None),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": ([ptr, i32], None),
        "rd_kafka_mock_broker_set_host_port": ([ptr, i32, s, ctypes.c_int], None),
        "rd_kafka_mock_partition_delete_records": ([ptr, s, i32, ctypes.c_int64], ctypes.c_int),
        "rd_kafka_version_str": ([], s),
    }
    for name, (argtypes, restype) in signatures.items():
        func = getattr(lib, name)
        func.argtypes, func.restype = argtypes, restype
    return lib


@contextlib.contextmanager
def _nudging(mock_addr: tuple[str, int]) -> Iterator[None]:
    """Wake the mock's thread every 10 ms while control calls (topic create, destroy) run.

    The mock can lose the wakeup for a control call (it drains its wakeup pipe after serving
    its op queue), which stalls the call until its 1 s poll timeout; any socket event ends it.
    """
    done = threading.Event()

    def nudge() -> None:
        while not done.wait(0.01):
            with contextlib.suppress(OSError):
                socket.create_connection(mock_addr, timeout=1).close()

    thread = threading.Thread(target=nudge, name="embedded-kafka-nudge", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _read_str(frame: bytes, pos: int) -> tuple[bytes, int]:
    """A nullable int16-length string at `pos`; returns it (null as b"") and the next offset."""
    (length,) = struct.unpack_from(">h", frame, pos)
    end = pos + 2 + max(length, 0)
    if end > len(frame):
        raise struct.error("string runs past the frame")
    return frame[pos + 2 : end], end


def parse_sync_group(frame: bytes) -> tuple[GroupGeneration, int] | None:
    """((group id, generation), assignment count) of a SyncGroup v0-v3 request, else None.

    `frame` is one request without its int32 size prefix, header v1 first.
    """
    try:
        api_key, version = struct.unpack_from(">hh", frame)
        if api_key != SYNC_GROUP or not 0 <= version <= 3:
            return None
        _, pos = _read_str(frame, 8)  # client_id, after api_key, api_version, correlation_id
        group, pos = _read_str(frame, pos)
        (generation,) = struct.unpack_from(">i", frame, pos)
        _, pos = _read_str(frame, pos + 4)  # member_id
        if version >= 3:
            _, pos = _read_str(frame, pos)  # group_instance_id
        (assignments,) = struct.unpack_from(">i", frame, pos)
    except struct.error:
        return None
    return (group, generation), assignments


class EmbeddedKafka:
    """The mock cluster plus its forwarder; the forwarder runs its own loop in a thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        topics: dict[str, int] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the forwarder speaks TLS with this server context (an SSL listener, for the tests
        of the clients' TLS settings); the mock behind it is plaintext either way."""
        self.host, self.port = host, port
        self.tls = tls
        self.topics = all_topic_partitions() if topics is None else dict(topics)
        self._rk: int | None = None
        self._mcluster: int | None = None
        self._mock_addr: tuple[str, int] = ("", 0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._follower_syncs: Counter[GroupGeneration] = Counter()
        self._synced: asyncio.Condition | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        if self._mcluster is not None:
            raise RuntimeError("already started")
        try:
            self._start_cluster()
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="embedded-kafka", daemon=True)
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
            _librdkafka().rd_kafka_mock_broker_set_host_port(self._mcluster, BROKER_ID, self.host.encode(), self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            if self._loop.is_running():
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
        self._loop = self._thread = None
        lib = _librdkafka()
        if self._mcluster is not None:
            with _nudging(self._mock_addr):
                lib.rd_kafka_mock_cluster_destroy(self._mcluster)
            self._mcluster = None
        if self._rk is not None:
            lib.rd_kafka_destroy(self._rk)
            self._rk = None

    def __enter__(self) -> EmbeddedKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_cluster(self) -> None:
        lib = _librdkafka()
        errstr = ctypes.create_string_buffer(512)
        conf = lib.rd_kafka_conf_new()
        # The handle only hosts the cluster; keep it from warning that it has no bootstrap.servers.
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, 512)
        self._rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, 512)
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self._mcluster = lib.rd_kafka_mock_cluster_new(self._rk, 1)
        if not self._mcluster:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        bootstraps = lib.rd_kafka_mock_cluster_bootstraps(self._mcluster).decode()
        mock_host, _, mock_port = bootstraps.rpartition(":")
        self._mock_addr = (mock_host, int(mock_port))
        with _nudging(self._mock_addr):
            lib.rd_kafka_mock_set_controller_id(self._mcluster, BROKER_ID)  # else aiokafka's admin fails
            lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mcluster, 0)
            for name, partitions in self.topics.items():
                err = lib.rd_kafka_mock_topic_create(self._mcluster, name.encode(), partitions, 1)
                if err:
                    raise RuntimeError(f"cannot create topic {name!r}: librdkafka error {err}")
        self._keep_every_message()

    def _keep_every_message(self) -> None:
        """Lift the mock's per-partition log limits (see deploy.kafka_retention)."""
        assert self._mcluster is not None and self._rk is not None
        version = _librdkafka().rd_kafka_version_str().decode()
        keep_every_message(self._mcluster, self._rk, BROKER_ID, self.topics, version)

    def delete_records(self, topic: str, partition: int, before_offset: int) -> None:
        """Drop a partition's messages before an offset, as a real cluster's retention would."""
        assert self._mcluster is not None
        with _nudging(self._mock_addr):
            err = _librdkafka().rd_kafka_mock_partition_delete_records(
                self._mcluster, topic.encode(), partition, before_offset
            )
        if err:
            raise RuntimeError(f"cannot delete records of {topic} [{partition}]: librdkafka error {err}")

    async def _listen(self) -> None:
        self._synced = asyncio.Condition()
        self._server = await asyncio.start_server(self._accept, self.host, self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        others = asyncio.all_tasks() - {asyncio.current_task()}  # connections and their pumps
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # A task of our own, not the server's: cancelling it at stop() then logs nothing.
        task = asyncio.get_running_loop().create_task(self._forward(client_r, client_w))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _forward(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        pumps: list[asyncio.Task[None]] = []
        broker_w: asyncio.StreamWriter | None = None
        try:
            broker_r, broker_w = await asyncio.open_connection(*self._mock_addr)
            pumps = [
                asyncio.create_task(self._pump_requests(client_r, broker_w)),
                asyncio.create_task(self._pump_bytes(broker_r, client_w)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            pass
        finally:
            for pump in pumps:
                pump.cancel()
            for writer in (client_w, broker_w):
                if writer is not None:
                    writer.close()

    async def _pump_bytes(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass

    async def _pump_requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward request frames in order, holding a group leader's SyncGroup back."""
        try:
            while True:
                size_prefix = await reader.readexactly(4)
                frame = await reader.readexactly(struct.unpack(">i", size_prefix)[0])
                sync = parse_sync_group(frame)
                if sync is not None and sync[1] > 1:
                    await self._await_followers(*sync)
                writer.write(size_prefix + frame)
                await writer.drain()
                if sync is not None and sync[1] == 0:
                    assert self._synced is not None
                    async with self._synced:
                        self._follower_syncs[sync[0]] += 1
                        self._synced.notify_all()
        except (asyncio.IncompleteReadError, OSError, ValueError):  # ValueError: negative frame size
            pass

    async def _await_followers(self, key: GroupGeneration, members: int) -> None:
        assert self._synced is not None
        async with self._synced:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._synced.wait_for(lambda: self._follower_syncs[key] >= members - 1),
                    FOLLOWER_WAIT_S,
                )
            self._follower_syncs.pop(key, None)
        await asyncio.sleep(SETTLE_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded Kafka broker.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9092)
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with EmbeddedKafka(args.host, args.port) as kafka:
        print(f"embedded kafka ready on {kafka.bootstrap_servers}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
