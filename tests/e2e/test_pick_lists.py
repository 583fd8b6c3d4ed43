"""Pick lists and packing slips over the real stack: bins set in inventory reach fulfillment with
the stock levels; orders paid to a location and in packing (IN_PROGRESS at a location the merchant
runs) come out on the location's pick list "grouped by sku in bin order, with quantities and the
order numbers each unit goes to", as HTML, PDF (`Accept: application/pdf`) and from the CLI; "each
fulfillment order records when its pick list was printed, and the list shows which were printed
before"; a packing slip per fulfillment order.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from deploy.local_stack import LocalStack
from deploy.pick_list import cli
from tests.conftest import eventually
from tests.e2e.test_fulfillment_flows import Shop, physical

pytestmark = pytest.mark.e2e
JSON = {"accept": "application/json"}


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


def reference(order: dict[str, Any]) -> str:
    """How the pick list names an order: its number once orders have one, else its short id."""
    if order.get("number") is not None:
        return f"#{order['number']}"
    return "#" + str(order["id"]).replace("-", "")[:8].upper()


def pdf_text(document: bytes) -> str:
    """The PDF's text, read back with pypdf (a pure-Python reader; a dev dependency), without
    white space: a long sku or id may wrap in its table cell."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf (dev dependency) reads the PDF's text back")
    reader = pypdf.PdfReader(io.BytesIO(document))
    return "".join("".join(page.extract_text() for page in reader.pages).split())


def squeezed(text: str) -> str:
    return "".join(text.split())


class Warehouse:
    """A location with binned stock and orders in packing there."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.location = ""
        self.skus = {name: shop.sku(name) for name in ("MUG", "TEA", "SPOON", "CARD")}

    async def set_bin(self, sku: str, bin_code: str | None) -> httpx.Response:
        url = f"{self.shop.stack.url('inventory')}/stock/{self.location}/{sku}/bin"
        return await self.shop.http.put(url, json={"bin": bin_code})

    async def pick_list(self, accept: str = "application/json", **params: Any) -> httpx.Response:
        return await self.shop.http.get(
            f"{self.shop.stack.url('fulfillment')}/pick-lists",
            params={"location_id": self.location, **params},
            headers={"accept": accept},
        )

    async def in_packing(self, *lines: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """A paid order whose fulfillment order here is IN_PROGRESS: its CARD line shipped first."""
        order = await self.shop.paid_order(*lines, physical(self.skus["CARD"], 1))
        (fo,) = await self.shop.settle(order["id"], 1)
        card = next(line for line in fo["line_items"] if line["sku"] == self.skus["CARD"])
        reply = await self.shop.post(
            f"/fulfillment-orders/{fo['id']}/fulfillments",
            {"line_items": [{"line_item_id": card["line_item_id"], "quantity": 1}]},
        )
        assert reply.status_code == 201, reply.text
        (now,) = await self.shop.fulfillment_orders(order["id"])
        assert now["status"] == "IN_PROGRESS"
        return await self.shop.order(order["id"]), now


async def stocked_warehouse(shop: Shop) -> Warehouse:
    warehouse = Warehouse(shop)
    warehouse.location = await shop.location("packhouse")
    for name, on_hand in (("MUG", 10), ("TEA", 10), ("SPOON", 10), ("CARD", 10)):
        await shop.stock(warehouse.location, warehouse.skus[name], on_hand)
    for name, bin_code in (("MUG", "A-10"), ("TEA", "A-2"), ("SPOON", "Z-9")):
        reply = await warehouse.set_bin(warehouse.skus[name], bin_code)
        assert reply.status_code == 200, reply.text
        assert reply.json()["bin"] == bin_code
    reply = await warehouse.set_bin(warehouse.skus["SPOON"], None)  # cleared: no bin, walked last
    assert reply.status_code == 200 and "bin" not in reply.json(), reply.text
    return warehouse


async def test_pick_list_grouped_by_bin_with_quantities_and_order_numbers_then_printed_marks(
    shop: Shop, token: Callable[..., str]
) -> None:
    house = await stocked_warehouse(shop)
    mug, tea, spoon = house.skus["MUG"], house.skus["TEA"], house.skus["SPOON"]
    first, first_fo = await house.in_packing(physical(mug, 2), physical(tea, 1))
    second, second_fo = await house.in_packing(physical(mug, 1), physical(spoon, 3))
    waiting = await shop.paid_order(physical(tea, 1))  # OPEN: placed, not yet in packing
    (open_fo,) = await shop.settle(waiting["id"], 1)
    one, two = reference(first), reference(second)

    async def binned_list() -> dict[str, Any] | None:
        reply = await house.pick_list()
        assert reply.status_code == 200, reply.text
        body = dict(reply.json())
        return body if [line["bin"] for line in body["lines"]] == ["A-2", "A-10", None] else None

    listed = await eventually(binned_list, timeout=30)  # the bins reached fulfillment with the levels
    assert [(line["sku"], line["quantity"], [(d["order_ref"], d["quantity"]) for d in line["destinations"]])
            for line in listed["lines"]] == [
        (tea, 1, [(one, 1)]), (mug, 3, [(one, 2), (two, 1)]), (spoon, 3, [(two, 3)]),
    ]  # fmt: skip
    assert [fo["fulfillment_order_id"] for fo in listed["fulfillment_orders"]] == [first_fo["id"], second_fo["id"]]
    assert listed["location_name"] == "packhouse" and listed["more"] is False

    # Printable HTML, grouped by bin, with the quantities and the order references.
    page = await house.pick_list(accept="text/html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    rows = re.findall(r'<tr data-sku="([^"]+)">(.*?)</tr>', page.text, re.S)
    assert [sku for sku, _ in rows] == [tea, mug, spoon]
    mug_row = " ".join(rows[1][1].split())
    assert "A-10" in mug_row and ">3<" in mug_row and f"{one} × 2, {two} × 1" in mug_row
    assert page.text.count("first print") == 2

    # PDF: the same list, as text in the document.
    printed = await house.pick_list(accept="application/pdf")
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF")
    text = pdf_text(printed.content)
    for row in (
        f"A-2 {tea} {tea} 1 {one} × 1",
        f"A-10 {mug} {mug} 3 {one} × 2, {two} × 1",
        f"— {spoon} {spoon} 3 {two} × 3",
    ):
        assert squeezed(row) in text, text

    # Marking needs fulfillment:write; a reader may look, not mark.
    reader = {"authorization": f"Bearer {token('fulfillment:read')}"}
    url = f"{shop.stack.url('fulfillment')}/pick-lists"
    looked = await shop.http.get(url, params={"location_id": house.location}, headers=reader)
    assert looked.status_code == 200
    refused = await shop.http.get(url, params={"location_id": house.location, "mark_printed": "true"}, headers=reader)
    assert refused.status_code == 403 and refused.json()["error"]["details"] == {
        "required_scopes": ["fulfillment:write"]
    }

    # The print: the list shows them as first printed, and each records when.
    print_run = await house.pick_list(accept="text/html", mark_printed="true")
    assert print_run.status_code == 200 and print_run.text.count("first print") == 2
    marks = [(await shop.fulfillment_orders(o["id"]))[0]["pick_list_printed_at"] for o in (first, second)]
    assert all(marks), marks
    (still_open,) = await shop.fulfillment_orders(waiting["id"])
    assert still_open["pick_list_printed_at"] is None

    # The next list shows which were printed before, and when.
    again = (await house.pick_list()).json()
    assert [fo["printed_before"] for fo in again["fulfillment_orders"]] == marks
    reprint = await house.pick_list(accept="application/pdf")
    assert "printedbefore:" in pdf_text(reprint.content)

    # A chosen set: the OPEN one alone, not printed before.
    chosen = (await house.pick_list(fulfillment_order_ids=open_fo["id"])).json()
    assert [(line["sku"], line["quantity"]) for line in chosen["lines"]] == [(tea, 1)]
    assert [fo["printed_before"] for fo in chosen["fulfillment_orders"]] == [None]


async def test_a_chosen_set_names_what_cannot_be_picked_and_unknown_places_are_not_found(shop: Shop) -> None:
    house = await stocked_warehouse(shop)
    _, fo = await house.in_packing(physical(house.skus["MUG"], 1))
    unknown = await house.pick_list(fulfillment_order_ids=f"{fo['id']},nope-123")
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["error"]["details"] == [
        {"field": "fulfillment_order_ids", "reason": "unknown fulfillment order nope-123"}
    ]
    elsewhere = await shop.location("elsewhere")
    reply = await shop.http.get(
        f"{shop.stack.url('fulfillment')}/pick-lists",
        params={"location_id": elsewhere, "fulfillment_order_ids": fo["id"]},
    )
    assert reply.status_code == 422 and f"ships from {house.location}, not {elsewhere}" in reply.text
    missing = await shop.http.get(f"{shop.stack.url('fulfillment')}/pick-lists", params={"location_id": "no-such"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_bin = await house.set_bin(house.skus["MUG"], "A\n1")
    assert bad_bin.status_code == 422 and bad_bin.json()["error"]["details"][0]["field"] == "bin"
    no_location = await shop.http.put(f"{shop.stack.url('inventory')}/stock/no-such/MUG/bin", json={"bin": "A-1"})
    assert no_location.status_code == 404


async def test_packing_slip_per_fulfillment_order_as_html_and_pdf(shop: Shop) -> None:
    house = await stocked_warehouse(shop)
    mug, tea = house.skus["MUG"], house.skus["TEA"]
    order, fo = await house.in_packing(physical(mug, 2), physical(tea, 1))
    url = f"{shop.stack.url('fulfillment')}/fulfillment-orders/{fo['id']}/packing-slip"

    async def slip_with_bins() -> dict[str, Any] | None:
        body = dict((await shop.http.get(url, headers=JSON)).json())
        return body if {line["sku"]: line["bin"] for line in body["lines"]} == {mug: "A-10", tea: "A-2"} else None

    slip = await eventually(slip_with_bins, timeout=30)
    assert slip["order_ref"] == reference(order)
    assert [(line["sku"], line["quantity"]) for line in slip["lines"]] == [(mug, 2), (tea, 1)]  # not the CARD shipped
    assert slip["ship_to"] == ["Storgatan 1", "11122 Stockholm", "SE"]

    page = await shop.http.get(url)
    assert page.status_code == 200 and f"Packing slip: order {reference(order)}" in page.text
    document = await shop.http.get(url, headers={"accept": "application/pdf"})
    assert document.content.startswith(b"%PDF")
    assert squeezed(f"{mug} {mug} A-10 2") in pdf_text(document.content)

    shipped = await shop.post(f"/fulfillment-orders/{fo['id']}/fulfillments", {})
    assert shipped.status_code == 201, shipped.text
    assert (await shop.fulfillment_orders(order["id"]))[0]["status"] == "CLOSED"
    nothing = await shop.http.get(url)
    assert nothing.status_code == 409 and "nothing is left to pack" in nothing.json()["error"]["message"]
    assert (
        await shop.http.get(f"{shop.stack.url('fulfillment')}/fulfillment-orders/nope/packing-slip")
    ).status_code == 404


async def test_the_cli_writes_the_pick_list_pdf_and_marks_it_printed(shop: Shop, tmp_path: Path) -> None:
    house = await stocked_warehouse(shop)
    order, _ = await house.in_packing(physical(house.skus["TEA"], 2))
    target = tmp_path / "pick.pdf"
    assert shop.stack.auth is not None
    options = ["--url", shop.stack.url("fulfillment"), "--token", shop.stack.auth.admin_token(600)]

    preview = await asyncio.to_thread(
        lambda: CliRunner().invoke(cli, ["--location", house.location, *options], env={"COLUMNS": "200"})
    )
    assert preview.exit_code == 0, preview.output
    assert house.skus["TEA"] in preview.stdout and f"{reference(order)} × 2" in preview.stdout
    assert (await shop.fulfillment_orders(order["id"]))[0]["pick_list_printed_at"] is None

    result = await asyncio.to_thread(
        lambda: CliRunner().invoke(cli, ["--location", house.location, "--pdf", str(target), *options])
    )
    assert result.exit_code == 0, result.output
    assert "written to" in result.stdout
    assert target.read_bytes().startswith(b"%PDF") and squeezed(f"{reference(order)} × 2") in pdf_text(
        target.read_bytes()
    )
    assert (await shop.fulfillment_orders(order["id"]))[0]["pick_list_printed_at"] is not None

    refused = await asyncio.to_thread(
        lambda: CliRunner().invoke(cli, ["--location", "no-such", "--pdf", str(target), *options])
    )
    assert refused.exit_code == 2 and "does not exist" in refused.output
