"""The topic catalog: one list that the services and the embedded broker launcher share.

The embedded broker cannot create topics on demand, so every topic a service touches must
be named here; a real cluster gets the same list from `deploy/` manifests.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    owner: str  # the service that publishes it (a third-party fulfillment service for responses)
    key: str = "order id"

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


ORDERS_EVENTS = Topic("orders.events.v1", 6, owner="orders")
INVENTORY_EVENTS = Topic("inventory.events.v1", 6, owner="inventory")
FULFILLMENT_EVENTS = Topic("fulfillment.events.v1", 6, owner="fulfillment")
FULFILLMENT_REQUESTS = Topic("fulfillment.requests.v1", 6, owner="fulfillment", key="fulfillment service id")
FULFILLMENT_RESPONSES = Topic("fulfillment.responses.v1", 6, owner="fulfillment services")
NOTIFICATIONS_EVENTS = Topic("notifications.events.v1", 6, owner="notifications")

TOPICS: tuple[Topic, ...] = (
    ORDERS_EVENTS,
    INVENTORY_EVENTS,
    FULFILLMENT_EVENTS,
    FULFILLMENT_REQUESTS,
    FULFILLMENT_RESPONSES,
    NOTIFICATIONS_EVENTS,
)

DLQ_PARTITIONS = 1


def all_topic_partitions() -> dict[str, int]:
    """Every topic to pre-create, dead-letter topics included, with its partition count."""
    names = {t.name: t.partitions for t in TOPICS}
    names.update({t.dlq: DLQ_PARTITIONS for t in TOPICS})
    return names
