"""The v1 event catalog: every event type, the topic it travels on and the shape of its data.

Other teams subscribe to these topics, so names are stable: fields may be added, never
renamed. Events carry full snapshots (event-carried state) so that no consumer needs to read
another service's database. Consumers ignore fields they do not know.

One module per owner of the events (`orders`, `fulfillment`, `inventory`, `notifications`,
`bulk_jobs`), on the common `contract.Contract`; `registry` maps each event type to its topic
and contract (`CATALOG`). Import from `shared.catalog`.
"""

from shared.catalog.bulk_jobs import BulkJobChanged, BulkJobFailure, BulkJobSnapshot, BulkJobStatus
from shared.catalog.contract import Contract
from shared.catalog.fulfillment import (
    WITH_SERVICE,
    FulfillmentChanged,
    FulfillmentLine,
    FulfillmentOrderChanged,
    FulfillmentOrderLine,
    FulfillmentOrderSnapshot,
    FulfillmentOrderStatus,
    FulfillmentRequestChanged,
    FulfillmentRequestRejection,
    FulfillmentServiceRequest,
    FulfillmentServiceResponse,
    FulfillmentServiceShipment,
    FulfillmentSnapshot,
    Hold,
    HoldReason,
    LabelStatus,
    RejectionReason,
    RequestStatus,
    ShippedLine,
    Tracking,
)
from shared.catalog.inventory import (
    InventoryLevel,
    InventoryReservation,
    InventoryReservationFailed,
    Location,
    ServiceWorkflow,
    Shortage,
    StockLine,
)
from shared.catalog.notifications import NotificationOutcome, NotificationRecord
from shared.catalog.orders import (
    Address,
    Customer,
    DisplayFulfillmentStatus,
    FinancialStatus,
    LineItem,
    OrderCancelled,
    OrderCreated,
    OrderEdited,
    OrderFulfillmentStatusChanged,
    OrderPaid,
    OrderPostPurchaseCompleted,
    OrderSnapshot,
    OrderWaitingChanged,
    WarehouseStatus,
)
from shared.catalog.registry import CATALOG, EventSpec

__all__ = [
    "CATALOG",
    "WITH_SERVICE",
    "Address",
    "BulkJobChanged",
    "BulkJobFailure",
    "BulkJobSnapshot",
    "BulkJobStatus",
    "Contract",
    "Customer",
    "DisplayFulfillmentStatus",
    "EventSpec",
    "FinancialStatus",
    "FulfillmentChanged",
    "FulfillmentLine",
    "FulfillmentOrderChanged",
    "FulfillmentOrderLine",
    "FulfillmentOrderSnapshot",
    "FulfillmentOrderStatus",
    "FulfillmentRequestChanged",
    "FulfillmentRequestRejection",
    "FulfillmentServiceRequest",
    "FulfillmentServiceResponse",
    "FulfillmentServiceShipment",
    "FulfillmentSnapshot",
    "Hold",
    "HoldReason",
    "InventoryLevel",
    "InventoryReservation",
    "InventoryReservationFailed",
    "LabelStatus",
    "LineItem",
    "Location",
    "NotificationOutcome",
    "NotificationRecord",
    "OrderCancelled",
    "OrderCreated",
    "OrderEdited",
    "OrderFulfillmentStatusChanged",
    "OrderPaid",
    "OrderPostPurchaseCompleted",
    "OrderSnapshot",
    "OrderWaitingChanged",
    "RejectionReason",
    "RequestStatus",
    "ServiceWorkflow",
    "ShippedLine",
    "Shortage",
    "StockLine",
    "Tracking",
    "WarehouseStatus",
]
