"""bench.growth seeds the stores with copies of real orders' documents: a copy must be another
order (fresh ids, the same new id wherever the old one was, across the services' documents),
from another time (every time moved, sentinels and counts left alone), and nothing shared is
copied."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import bson

from bench.seeding import Copier, Template, dumps, loads, mix, per_order

ORDER = "73c56aac-3551-49b7-a6d3-45383b21e522"
FO = "5ee5e9d6-44a9-5753-93a7-77dd9ef48bef"
NOW = time.time()


def copier() -> Copier:
    return Copier(NOW - 2 * 86_400, NOW + 400 * 86_400)


def test_a_copy_has_fresh_ids_the_same_new_one_wherever_the_old_one_was() -> None:
    order = {"_id": ORDER, "fulfillment_orders": {FO: {"id": FO, "order_id": ORDER}}, "sku": "MUG-1"}
    reservation = {"_id": FO, "order_id": ORDER, "email": f"<{ORDER.upper()}@shop.example>"}
    (order_copy, reservation_copy), ids = copier().copy([dumps(order), dumps(reservation)], -3600, {"MUG-1": "H-7"})
    new_order, new_reservation = loads(order_copy), loads(reservation_copy)
    assert new_order["_id"] == ids[ORDER] != ORDER
    assert new_reservation["_id"] == ids[FO] != FO
    assert new_order["fulfillment_orders"] == {ids[FO]: {"id": ids[FO], "order_id": ids[ORDER]}}
    assert new_reservation["order_id"] == ids[ORDER]
    assert new_reservation["email"] == f"<{ids[ORDER]}@shop.example>"
    assert new_order["sku"] == "H-7"
    (again,), _ = copier().copy([dumps(order)], -3600, {})
    assert loads(again)["_id"] not in (ORDER, ids[ORDER])


def test_a_copy_is_from_another_time_but_sentinels_counts_and_prices_stay() -> None:
    doc: dict[str, Any] = {
        "created_at": "2026-11-30T11:10:25.604871+00:00",
        "short": "2026-11-30T11:10:25Z",
        "no_deadline": "9999-12-31T23:59:59.999999+00:00",
        "expires_epoch": NOW + 86_400,
        "expires_ms": int(NOW * 1000),
        "quantity": 3,
        "total": 1999999999,  # a number, not a time near now
        "unit_price": "10.00",
    }
    (text,), _ = copier().copy([dumps(doc)], -86_400, {})
    copy = loads(text)
    assert copy["created_at"] == "2026-11-29T11:10:25.604871+00:00"
    assert copy["short"] == "2026-11-29T11:10:25Z"
    assert copy["no_deadline"] == doc["no_deadline"]
    assert copy["expires_epoch"] == doc["expires_epoch"] - 86_400
    assert copy["expires_ms"] == doc["expires_ms"] - 86_400_000
    assert (copy["quantity"], copy["total"], copy["unit_price"]) == (3, 1999999999, "10.00")


def test_dates_and_object_ids_are_copied_as_such() -> None:
    oid = bson.ObjectId()
    doc = {"_id": oid, "at": datetime(2026, 11, 30, 11, 10, 25, 604000, tzinfo=UTC)}
    (text,), _ = copier().copy([dumps(doc)], -60, {})
    copy = loads(text)
    assert isinstance(copy["_id"], bson.ObjectId) and copy["_id"] != oid
    assert copy["at"].replace(tzinfo=UTC) == datetime(2026, 11, 30, 11, 9, 25, 604000, tzinfo=UTC)


def test_only_documents_kept_per_order_are_copied() -> None:
    assert per_order({"_id": ORDER}) and per_order({"_id": f"{FO}.shipping_confirmation"})
    assert per_order({"_id": bson.ObjectId()})
    assert not per_order({"_id": "wh1/MUG-1"}) and not per_order({"_id": "shop"})


def test_of_every_ten_copies_eight_are_fulfilled_one_pending_one_cancelled() -> None:
    templates = [Template("fulfilled", f"f{n}") for n in range(3)] + [
        Template("pending", "p"),
        Template("cancelled", "c"),
    ]
    picked = [mix(templates)(i) for i in range(1000)]
    kinds = [t.kind for t in picked]
    assert (kinds.count("fulfilled"), kinds.count("pending"), kinds.count("cancelled")) == (800, 100, 100)
    assert {t.order_id for t in picked} == {"f0", "f1", "f2", "p", "c"}
