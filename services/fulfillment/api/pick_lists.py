"""HTTP routes of the warehouse's printouts: a location's pick list (`GET /pick-lists`) and a
fulfillment order's packing slip (`GET /fulfillment-orders/{id}/packing-slip`).

Each answers in the format the `Accept` header asks for: printable HTML (the default, for a
browser), PDF (`application/pdf`), or the same facts as JSON (`application/json`).

Printing a pick list is `GET /pick-lists?...&mark_printed=true` (it needs fulfillment:write): the
list answered shows which fulfillment orders were printed before, then each records that it was
printed now. A GET, so that a browser or a printer's client fetches and prints one URL; asking
again only moves the printed time on, so a retry does no harm.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from services.fulfillment import printing
from services.fulfillment.application import Fulfillment
from services.fulfillment.application import printing as printouts
from services.fulfillment.domain.pick_lists import PackingSlip, PickList
from shared.auth import Caller, Forbidden
from shared.http import IDENTIFIER_PATTERN, NotFound

from .common import READ, known_id, refusals

Format = Literal["html", "pdf", "json"]
MEDIA = {"html": "text/html; charset=utf-8", "pdf": "application/pdf", "json": "application/json"}
PRINTOUT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "HTML by default; PDF with `Accept: application/pdf`; JSON with `Accept: application/json`",
        "content": {"text/html": {}, "application/pdf": {}, "application/json": {}},
    },
    409: {"description": "A fulfillment order with nothing to pack, or not in packing at the location."},
}


def wanted_format(accept: str) -> Format:
    """What the `Accept` header asks for: PDF or JSON when named (and HTML not named before
    them), else HTML."""
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    for kind in kinds:
        if kind == "application/pdf":
            return "pdf"
        if kind in ("text/html", "application/xhtml+xml"):
            return "html"
        if kind == "application/json":
            return "json"
    return "html"


def printout(document: PickList | PackingSlip, fmt: Format, filename: str) -> Response:
    headers = {"Vary": "Accept"}
    if fmt == "pdf":
        headers["Content-Disposition"] = f'inline; filename="{filename}.pdf"'
        return Response(printing.pdf(document), media_type=MEDIA["pdf"], headers=headers)
    if fmt == "json":
        return JSONResponse(dataclasses.asdict(document), headers=headers)
    return HTMLResponse(printing.html(document), headers=headers)


def build_pick_list_router(fulfillment: Fulfillment) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/pick-lists",
        dependencies=[READ],
        tags=["printing"],
        responses={**PRINTOUT_RESPONSES, 404: {"description": "No location by that id."}},
    )
    async def get_pick_list(
        request: Request,
        who: Caller,
        location_id: Annotated[str, Query(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)],
        fulfillment_order_ids: Annotated[
            list[Annotated[str, Query(min_length=1, max_length=100)]] | None,
            Query(
                max_length=250,
                description="a chosen set instead of those in packing: repeat the parameter or separate ids by "
                "commas; each must be OPEN or IN_PROGRESS at the location",
            ),
        ] = None,
        mark_printed: Annotated[
            bool,
            Query(description="this is the print: each fulfillment order on it records the time (fulfillment:write)"),
        ] = False,
    ) -> Response:
        """The location's pick list: the lines still to ship of its fulfillment orders in packing
        (IN_PROGRESS at a location the merchant runs), or of the chosen ones, grouped by sku in bin
        order with the quantity and the orders each unit goes to; then the fulfillment orders on
        it, each with when a pick list with it was printed before, if it was."""
        if mark_printed and not who.may("fulfillment:write"):
            raise Forbidden("marking a pick list printed needs scope fulfillment:write", ["fulfillment:write"])
        chosen = None
        if fulfillment_order_ids is not None:
            chosen = [part.strip() for given in fulfillment_order_ids for part in given.split(",") if part.strip()]
        with refusals():
            try:
                made = await printouts.pick_list(fulfillment, location_id, chosen)
            except printouts.UnknownLocation:
                raise NotFound("location", location_id) from None
            answer = printout(
                made.pick_list, wanted_format(request.headers.get("accept", "")), f"pick-list-{location_id}"
            )
            if mark_printed:
                await printouts.mark_printed(fulfillment, made)
        return answer

    @router.get(
        "/fulfillment-orders/{fulfillment_order_id}/packing-slip",
        dependencies=[READ],
        tags=["printing"],
        responses=PRINTOUT_RESPONSES,
    )
    async def get_packing_slip(fulfillment_order_id: str, request: Request) -> Response:
        """What goes in the fulfillment order's parcel (what remains to ship, with the bins) and
        where it goes. 409 for one with nothing to pack (digital, cancelled, shipped whole)."""
        with refusals():
            slip = await printouts.packing_slip(fulfillment, known_id("fulfillment order", fulfillment_order_id))
        return printout(slip, wanted_format(request.headers.get("accept", "")), f"packing-slip-{slip.order_ref[1:]}")

    return router
