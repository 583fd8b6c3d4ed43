"""Pick lists and packing slips from the command line: fetch one from the fulfillment service and
write it as PDF or HTML.

    python -m deploy.pick_list --location LOCATION [--id FO_ID ...] (--pdf FILE | --html FILE) [--preview]
    python -m deploy.pick_list --packing-slip FO_ID (--pdf FILE | --html FILE)

`--location` prints the location's pick list: its fulfillment orders in packing, or the ones
given with `--id` (`GET /pick-lists`). Printing marks each fulfillment order on the list printed
(`mark_printed=true`, which needs fulfillment:write), so the next list shows which were printed
before; `--preview` fetches the list without marking anything. `--packing-slip` prints one
fulfillment order's packing slip. With neither `--pdf` nor `--html` the pick list is summed up on
the terminal (bins, skus, quantities, orders).

The token is `--token`, else `$PLATFORM_TOKEN`, else `.local/admin-token`; the service `--url`,
else `$FULFILLMENT_URL`, else the local fulfillment service. Exit status: 0 written, 2 refused
(each field and its reason are printed) or misused, 3 service unreachable or 5xx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.bulk import Exit, bearer_token, client_for, print_refusal, service_url
from deploy.local_stack import ROOT

cli = typer.Typer(help="Print a location's pick list, or a fulfillment order's packing slip, as PDF or HTML.")


def fetch(client: httpx.Client, path: str, params: httpx.QueryParams, accept: str) -> httpx.Response:
    """The printout, or the exit that says why not."""
    err = Console(stderr=True)
    try:
        reply = client.get(path, params=params, headers={"accept": accept}, timeout=60)
    except httpx.TransportError as error:
        err.print(f"[red]could not reach {escape(str(client.base_url))}[/]: {escape(str(error))}")
        raise typer.Exit(Exit.UNAVAILABLE) from None
    if reply.status_code >= 500:
        err.print(f"[red]the service failed: {reply.status_code}[/] {escape(reply.text[:500])}")
        raise typer.Exit(Exit.UNAVAILABLE)
    if reply.status_code >= 400:
        print_refusal(err, reply)
        raise typer.Exit(Exit.REFUSED)
    return reply


def summary(pick_list: dict[str, Any]) -> Table:
    """A pick list (its JSON) as a table for the terminal."""
    table = Table(title=f"Pick list: {pick_list['location_name']}")
    for column in ("bin", "sku", "item", "qty", "orders"):
        table.add_column(column, justify="right" if column == "qty" else "left")
    for line in pick_list["lines"]:
        orders = ", ".join(f"{d['order_ref']} × {d['quantity']}" for d in line["destinations"])
        table.add_row(*(escape(str(v)) for v in (line["bin"] or "—", line["sku"], line["title"], line["quantity"],
                                                 orders)))  # fmt: skip
    return table


@cli.command()
def main(
    location: Annotated[str | None, typer.Option(help="the location whose pick list to print")] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--id", help="a fulfillment order to put on the list; repeat for more")
    ] = None,
    packing_slip: Annotated[
        str | None, typer.Option(help="print this fulfillment order's packing slip instead")
    ] = None,
    pdf: Annotated[Path | None, typer.Option(help="write the PDF here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the HTML here")] = None,
    preview: Annotated[bool, typer.Option(help="do not mark the fulfillment orders printed")] = False,
    url: Annotated[str | None, typer.Option(show_default=False, help="the fulfillment service")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="PLATFORM_TOKEN", show_default=False, help="bearer token (default: DATA_DIR/admin-token)"),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="the local stack's data directory")] = ROOT / ".local",
) -> None:
    """Fetch the printout and write it (or sum the pick list up on the terminal)."""
    if (location is None) == (packing_slip is None):
        raise typer.BadParameter("give --location (a pick list) or --packing-slip (one fulfillment order)")
    if pdf is not None and html is not None:
        raise typer.BadParameter("give --pdf or --html, not both", param_hint="--pdf")
    if packing_slip is not None and ids:
        raise typer.BadParameter("--id chooses fulfillment orders for a pick list", param_hint="--id")
    if packing_slip is not None and pdf is None and html is None:
        raise typer.BadParameter("a packing slip is written with --pdf or --html", param_hint="--pdf")
    out = Console()
    accept = "application/pdf" if pdf is not None else "text/html" if html is not None else "application/json"
    with client_for(url or service_url(None), bearer_token(token, data_dir)) as client:
        if packing_slip is not None:
            reply = fetch(
                client, f"/fulfillment-orders/{quote(packing_slip, safe='')}/packing-slip", httpx.QueryParams(), accept
            )
            what = f"packing slip of fulfillment order {packing_slip}"
        else:
            params = httpx.QueryParams({"location_id": str(location), "fulfillment_order_ids": ids or []})
            marking = pdf is not None or html is not None
            if marking and not preview:
                params = params.add("mark_printed", "true")
            reply = fetch(client, "/pick-lists", params, accept)
            what = f"pick list of {location}" + ("" if marking and not preview else " (not marked printed)")
    target = pdf or html
    if target is None:
        out.print(summary(reply.json()))
        raise typer.Exit(Exit.SUCCEEDED)
    target.write_bytes(reply.content)
    out.print(f"{what}: written to {escape(str(target))} ({len(reply.content)} bytes)")


if __name__ == "__main__":
    cli()
