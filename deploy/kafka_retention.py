"""Lifts the embedded broker's per-partition log limits, so that no message is deleted unread.

librdkafka's mock cluster deletes the oldest batches of a partition past 5 MiB or 100,000
batches, read or not; rd_kafka_mock_partition_init() hard-codes those limits and no property or
call changes them. This module writes them in place, in the mock's own structs, after checking
the layout it relies on. It lives apart from deploy.embedded_kafka because it is the one piece
tied to librdkafka's private memory layout (pinned to 2.16), not to the Kafka protocol.
"""

from __future__ import annotations

import ctypes

# What rd_kafka_mock_partition_init() sets, and what replaces it: size_t's largest value.
MOCK_PARTITION_MAX_BYTES, MOCK_PARTITION_MAX_BATCHES = 5 * 1024 * 1024, 100_000
UNBOUNDED = ctypes.c_size_t(-1).value


class _MockClusterHead(ctypes.Structure):
    """The first fields of librdkafka's `struct rd_kafka_mock_cluster_s` (rdkafka_mock_int.h)."""

    _fields_ = [
        ("id", ctypes.c_char * 32),
        ("rk", ctypes.c_void_p),
        ("controller_id", ctypes.c_int32),
        ("brokers", ctypes.c_void_p * 2),  # TAILQ_HEAD: first, last
        ("broker_cnt", ctypes.c_int),
        ("topics_first", ctypes.c_void_p),
        ("topics_last", ctypes.c_void_p),
        ("topic_cnt", ctypes.c_int),
    ]


class _MockTopic(ctypes.Structure):
    """librdkafka's `rd_kafka_mock_topic_t`."""

    _fields_ = [
        ("next", ctypes.c_void_p),  # TAILQ_ENTRY: next, prev
        ("prev", ctypes.c_void_p),
        ("name", ctypes.c_char_p),
        ("id", ctypes.c_int64 * 2),  # rd_kafka_Uuid_t: two int64 and a base64 string
        ("id_base64", ctypes.c_char * 23),
        ("partitions", ctypes.c_void_p),  # an array of rd_kafka_mock_partition_t
        ("partition_cnt", ctypes.c_int),
        ("err", ctypes.c_int),
        ("cluster", ctypes.c_void_p),
    ]


class _MockPartitionHead(ctypes.Structure):
    """The first fields of librdkafka's `rd_kafka_mock_partition_t`, down to its log limits."""

    _fields_ = [
        ("leader_link", ctypes.c_void_p * 2),
        ("id", ctypes.c_int32),
        ("leader_epoch", ctypes.c_int32),
        ("start_offset", ctypes.c_int64),
        ("end_offset", ctypes.c_int64),
        ("follower_start_offset", ctypes.c_int64),
        ("follower_end_offset", ctypes.c_int64),
        ("update_follower_start_offset", ctypes.c_int),
        ("update_follower_end_offset", ctypes.c_int),
        ("msgsets", ctypes.c_void_p * 2),
        ("size", ctypes.c_size_t),
        ("cnt", ctypes.c_size_t),
        ("max_size", ctypes.c_size_t),  # the oldest batches go once the log is over either
        ("max_cnt", ctypes.c_size_t),
    ]


MOCK_PARTITION_SIZE = 264  # sizeof(rd_kafka_mock_partition_t) in librdkafka 2.16, 64-bit


def keep_every_message(mcluster: int, rk: int, controller_id: int, topics: dict[str, int], version: str) -> None:
    """Lift the mock cluster's per-partition log limits, while no client is connected yet.

    Every field is checked against what the cluster must hold (our handle `rk`, the controller
    id, each topic's name, partition count and ids, the default limits) before anything is
    written; any mismatch (another librdkafka layout than `version` claims) stops the start
    rather than run with a broker that deletes unread messages.
    """

    def mismatch(what: str) -> RuntimeError:
        return RuntimeError(
            f"cannot lift the embedded broker's retention: librdkafka {version}'s mock cluster "
            f"is not laid out as in 2.16 ({what}); pin confluent-kafka to 2.16.1"
        )

    head = _MockClusterHead.from_address(mcluster)
    if head.rk != rk or head.controller_id != controller_id or head.topic_cnt != len(topics):
        raise mismatch("cluster header")
    partitions: list[_MockPartitionHead] = []
    seen: set[str] = set()
    address = head.topics_first
    while address:
        topic = _MockTopic.from_address(address)
        if topic.cluster != mcluster or topic.name is None:
            raise mismatch("topic header")
        name = topic.name.decode()
        if topics.get(name) != topic.partition_cnt or name in seen:
            raise mismatch(f"topic {name!r}")
        seen.add(name)
        for i in range(topic.partition_cnt):
            part = _MockPartitionHead.from_address(topic.partitions + i * MOCK_PARTITION_SIZE)
            fresh = part.id == i and part.start_offset == part.end_offset == part.size == part.cnt == 0
            defaults = (part.max_size, part.max_cnt) == (MOCK_PARTITION_MAX_BYTES, MOCK_PARTITION_MAX_BATCHES)
            if not (fresh and defaults):
                raise mismatch(f"partition {i} of {name!r}")
            partitions.append(part)
        address = topic.next
    if seen != set(topics):
        raise mismatch("topic list")
    for part in partitions:
        part.max_size = part.max_cnt = UNBOUNDED
