"""Creates every topic of the catalog (shared/topics.py), dead-letter topics included, on a broker
that does not auto-create them: the compose file's `topics` step (on Kubernetes, Strimzi's
KafkaTopics do it). Existing topics are left as they are, so it can run at every start.

    python -m deploy.create_topics --bootstrap kafka:9092 [--replication-factor 1]
"""

from __future__ import annotations

import argparse
import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.topics import all_topic_partitions

DLQ_CONFIG = {"retention.ms": "-1"}  # dead letters wait for a redrive, however long


async def create_topics(bootstrap: str, replication_factor: int) -> list[str]:
    """Creates the catalog's missing topics; returns their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor, topic_configs=DLQ_CONFIG if name.endswith(".dlq") else {})
            for name, partitions in sorted(all_topic_partitions().items())
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args()
    created = asyncio.run(create_topics(args.bootstrap, args.replication_factor))
    print(f"created {len(created)} topics: {', '.join(created)}" if created else "every topic exists")


if __name__ == "__main__":
    main()
