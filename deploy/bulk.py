"""Bulk jobs from the command line: start one, watch it to the end, see what failed and why.

    python -m deploy.bulk start ACTION (--id ID ... | --ids-file FILE) [--param KEY=TEXT | KEY:=JSON ...]
                                [--orders | --fulfillment-orders] [--no-wait] [--idempotency-key KEY]
    python -m deploy.bulk follow JOB_ID

`start` sends `POST /bulk-jobs` with the action, the ids (as `order_ids` for the order actions,
`fulfillment_order_ids` otherwise; `--orders` / `--fulfillment-orders` choose) and the action's
parameters as given, so actions and parameters the service learns need nothing new here. The
request carries an `Idempotency-Key` (a fresh one unless given) and is retried with it when the
answer is lost, so a retry never starts a second job. Then, like `follow`, it polls
`GET /bulk-jobs/{id}` with a progress bar until the job is COMPLETED and prints each failure
with the reason the single action gave.

The token is `--token`, else `$PLATFORM_TOKEN`, else the merchant token `make run` writes to
`.local/admin-token`; the service is `--url`, else the one that runs the action: orders for
`cancel_orders` (`$ORDERS_URL`, else the local orders service), fulfillment for every other
(`$FULFILLMENT_URL`, else the local fulfillment service). `follow` without `--url` looks for the
job on fulfillment, then on orders. Exit status: 0 every id succeeded, 1 the job completed with failures,
2 the request was refused (4xx, printed with each field and reason) or the command misused,
3 the service could not be reached or failed (5xx), 4 the job was still running at `--timeout`,
130 interrupted (the job goes on: follow it again by its id).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local_stack import ROOT, SERVICES

DEFAULT_URL = f"http://127.0.0.1:{SERVICES['fulfillment']}"
ORDERS_URL = f"http://127.0.0.1:{SERVICES['orders']}"
ON_ORDERS_SERVICE = frozenset({"cancel_orders"})
"""Actions the orders service runs (it owns cancellation); fulfillment runs every other."""
ORDER_ACTIONS = frozenset({"cancel_orders", "mark_unfulfilled", "request_fulfillment", "cancel_fulfillment_requests"})
"""Actions on orders: their ids go as `order_ids`; every other action's as `fulfillment_order_ids`."""
START_RETRY_SECONDS = 15.0
"""How long a start whose answer was lost (or that met a 5xx or a 409 in progress) is retried."""


class Exit(IntEnum):
    SUCCEEDED = 0
    FAILURES = 1
    REFUSED = 2
    UNAVAILABLE = 3
    TIMED_OUT = 4
    INTERRUPTED = 130


class Refused(Exception):
    """The service answered 4xx: the request as given will not work."""

    def __init__(self, reply: httpx.Response) -> None:
        super().__init__(f"{reply.status_code}")
        self.reply = reply


class Unavailable(Exception):
    """The service could not be reached, or answered 5xx, until we gave up."""


def parse_parameter(given: str) -> tuple[str, Any]:
    """`key=text` is a string; `key:=json` a JSON value (true, 3, ["a"]), as httpie spells them,
    since the service takes booleans and numbers as JSON only ("false" is not false)."""
    key, separator, value = given.partition("=")
    if not separator:
        raise typer.BadParameter(f"{given!r} is not KEY=TEXT or KEY:=JSON")
    if key.endswith(":"):
        key = key[:-1]
        try:
            parsed: Any = json.loads(value)
        except json.JSONDecodeError as error:
            raise typer.BadParameter(f"{key}: {value!r} is not JSON ({error.msg})") from None
    else:
        parsed = value
    if not key:
        raise typer.BadParameter(f"{given!r} has no key")
    return key, parsed


def read_ids(path: Path) -> list[str]:
    """Ids separated by line breaks, spaces or commas; `#` starts a comment; `-` is stdin."""
    text = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    return [token for line in text.splitlines() for token in line.split("#", 1)[0].replace(",", " ").split()]


def request_body(action: str, ids: Sequence[str], ids_field: str, parameters: Sequence[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, ids_field: list(ids)}
    for given in parameters:
        key, value = parse_parameter(given)
        if key in body:
            raise typer.BadParameter(f"{key} is set by the command itself, not by --param")
        body[key] = value
    return body


def start_job(
    client: httpx.Client,
    body: Mapping[str, Any],
    idempotency_key: str,
    retry_for: float = START_RETRY_SECONDS,
    pause: float = 0.25,
) -> dict[str, Any]:
    """POST /bulk-jobs, retried with the same Idempotency-Key while the answer is lost, a 5xx,
    or a 409 saying the first attempt is still in progress: the service answers a retry with the
    job the first attempt started, never a second one."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            reply = client.post("/bulk-jobs", json=body, headers={"Idempotency-Key": idempotency_key})
        except httpx.TransportError as error:
            problem = f"{type(error).__name__}: {error}"
        else:
            if reply.is_success:
                return dict(reply.json())
            if reply.status_code < 500 and _error_code(reply) != "request_in_progress":
                raise Refused(reply)
            problem = f"{reply.status_code} {_error_code(reply) or reply.reason_phrase}"
        if time.monotonic() + pause > deadline:
            raise Unavailable(f"{problem} (the start was retried for {retry_for:.0f}s)")
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def get_job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    reply = client.get(f"/bulk-jobs/{quote(job_id, safe='')}")
    if reply.status_code >= 500:
        raise Unavailable(f"{reply.status_code} {reply.reason_phrase}")
    if not reply.is_success:
        raise Refused(reply)
    return dict(reply.json())


def wait_for(
    client: httpx.Client, job: dict[str, Any], console: Console, interval: float, timeout: float
) -> dict[str, Any]:
    """Poll the job with a progress bar until it is COMPLETED; a poll that fails for a moment
    (service restarting) is tried again until `timeout`."""
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[succeeded]} succeeded[/] [red]{task.fields[failed]} failed[/]"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(escape(job["action"]), total=job["total"], succeeded=0, failed=0)
        while True:
            progress.update(task, completed=job["done"], succeeded=job["succeeded"], failed=job["failed"])
            if job["status"] == "COMPLETED":
                return job
            if time.monotonic() >= deadline:
                raise TimeoutError
            time.sleep(interval)
            try:
                job = get_job(client, job["id"])
            except (httpx.TransportError, Unavailable):
                continue


def failures_table(job: Mapping[str, Any]) -> Table:
    """One row per failed id: the error code and the reason the single action gave."""
    failed = [result for result in job.get("results", []) if result.get("status") == "failed"]
    keys = list(failed[0]) if failed else []
    id_field = next((k for k in ("order_id", "fulfillment_order_id", *keys) if k in keys and k.endswith("_id")), "id")
    table = Table(title=f"{len(failed)} failed", title_justify="left")
    table.add_column(id_field.replace("_", " "), no_wrap=True)
    table.add_column("error", no_wrap=True)
    table.add_column("reason")
    for result in failed:
        error = result.get("error") or {}
        table.add_row(
            escape(str(result.get(id_field, ""))),
            escape(str(error.get("code", ""))),
            escape(str(error.get("message", ""))),
        )
    return table


def _error_code(reply: httpx.Response) -> str | None:
    try:
        return str(reply.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def print_refusal(console: Console, reply: httpx.Response) -> None:
    """The service's error: code and message, then each field and its reason."""
    try:
        error = reply.json()["error"]
    except (ValueError, KeyError, TypeError):
        console.print(f"[red]refused: {reply.status_code} {escape(reply.reason_phrase)}[/] {escape(reply.text[:500])}")
        return
    console.print(
        f"[red]refused: {reply.status_code} {escape(str(error.get('code')))}[/]: {escape(str(error.get('message')))}"
    )
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, Mapping) and "field" in detail:
                console.print(f"  {escape(str(detail['field']))}: {escape(str(detail.get('reason', '')))}")
            else:
                console.print(f"  {escape(str(detail))}")
    elif isinstance(details, Mapping):
        for key, value in details.items():
            console.print(f"  {escape(str(key))}: {escape(str(value))}")


def bearer_token(token: str | None, data_dir: Path) -> str:
    if token:
        return token.strip()
    path = data_dir / "admin-token"
    if path.is_file():
        return path.read_text().strip()
    raise typer.BadParameter(
        f"no token: pass --token, set PLATFORM_TOKEN, or start `make run` (it writes {path})", param_hint="--token"
    )


def service_url(action: str | None) -> str:
    """Where a job of `action` runs (None: fulfillment), from the environment or the local stack."""
    if action in ON_ORDERS_SERVICE:
        return os.environ.get("ORDERS_URL") or ORDERS_URL
    return os.environ.get("FULFILLMENT_URL") or DEFAULT_URL


def client_for(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=10)


def fail(console: Console, code: Exit, message: str) -> NoReturn:
    console.print(message)
    raise typer.Exit(code)


def follow_to_the_end(client: httpx.Client, job: dict[str, Any], interval: float, timeout: float) -> NoReturn:
    """Progress bar until COMPLETED, then the counts and the failures; exits with the outcome."""
    out, err = Console(), Console(stderr=True)
    try:
        job = wait_for(client, job, out, interval, timeout)
    except TimeoutError:
        fail(
            err,
            Exit.TIMED_OUT,
            f"[yellow]bulk job {job['id']} still RUNNING after {timeout:.0f}s[/]: "
            f"follow it with `python -m deploy.bulk follow {job['id']}`",
        )
    except KeyboardInterrupt:
        fail(
            err,
            Exit.INTERRUPTED,
            f"stopped watching; bulk job {job['id']} goes on: `python -m deploy.bulk follow {job['id']}`",
        )
    except Refused as refused:
        print_refusal(err, refused.reply)
        raise typer.Exit(Exit.REFUSED) from None
    out.print(f"bulk job {job['id']} [bold]COMPLETED[/]: {job['succeeded']} succeeded, {job['failed']} failed")
    if job["failed"]:
        out.print(failures_table(job))
        raise typer.Exit(Exit.FAILURES)
    raise typer.Exit(Exit.SUCCEEDED)


cli = typer.Typer(
    help="Bulk jobs (fulfillment's, and orders' cancel_orders): start one and watch it, or follow one by id."
)
Url = Annotated[
    str | None,
    typer.Option(show_default=False, help="the service (default: orders' for cancel_orders, else fulfillment's)"),
]
Token = Annotated[
    str | None,
    typer.Option(envvar="PLATFORM_TOKEN", show_default=False, help="bearer token (default: DATA_DIR/admin-token)"),
]
DataDir = Annotated[Path, typer.Option(help="the local stack's data directory (where `make run` leaves admin-token)")]
Interval = Annotated[float, typer.Option(min=0.05, help="seconds between two looks at the job")]
Timeout = Annotated[float, typer.Option(min=0, help="seconds to wait for the job to complete")]


@cli.command()
def start(
    action: Annotated[str, typer.Argument(help="fulfill, hold, release_hold, move, cancel_orders, ...")],
    ids: Annotated[list[str] | None, typer.Option("--id", help="an id to act on; repeat for more")] = None,
    ids_file: Annotated[
        Path | None, typer.Option(help="ids, one a line (or space or comma separated; # comments); - for stdin")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="an action parameter, KEY=TEXT or KEY:=JSON (notify_customer:=false)")
    ] = None,
    orders: Annotated[
        bool | None,
        typer.Option(
            "--orders/--fulfillment-orders",
            show_default=False,
            help="the ids are orders (order_ids) or fulfillment orders (fulfillment_order_ids) "
            f"(default: orders for {', '.join(sorted(ORDER_ACTIONS))})",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="reuse a key to retry a start whose outcome you did not see")
    ] = None,
    wait: Annotated[bool, typer.Option(help="watch the job until it completes")] = True,
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = ROOT / ".local",
    interval: Interval = 0.5,
    timeout: Timeout = 600,
) -> None:
    """Start ACTION on the ids given, then show its progress and failures (exit 1 if any)."""
    listed = list(ids or []) + (read_ids(ids_file) if ids_file else [])
    if not listed:
        raise typer.BadParameter("give the ids to act on with --id or --ids-file", param_hint="--id / --ids-file")
    on_orders = action in ORDER_ACTIONS if orders is None else orders
    body = request_body(action, listed, "order_ids" if on_orders else "fulfillment_order_ids", param or [])
    key = idempotency_key or str(uuid.uuid4())
    err = Console(stderr=True)
    url = url or service_url(action)
    with client_for(url, bearer_token(token, data_dir)) as client:
        try:
            job = start_job(client, body, key)
        except Refused as refused:
            print_refusal(err, refused.reply)
            raise typer.Exit(Exit.REFUSED) from None
        except Unavailable as error:
            fail(
                err,
                Exit.UNAVAILABLE,
                f"[red]could not start the job at {escape(url)}[/]: {escape(str(error))}\n"
                f"retry with --idempotency-key {key}: if it did start, that finds it instead of starting another",
            )
        noun = ("order" if on_orders else "fulfillment order") + ("s" if job["total"] != 1 else "")
        Console().print(
            f"bulk job [bold]{job['id']}[/]: {escape(action)} on {job['total']} {noun} (Idempotency-Key {escape(key)})"
        )
        if wait:
            follow_to_the_end(client, job, interval, timeout)


@cli.command()
def follow(
    job_id: Annotated[str, typer.Argument(help="the bulk job's id")],
    url: Url = None,
    token: Token = None,
    data_dir: DataDir = ROOT / ".local",
    interval: Interval = 0.5,
    timeout: Timeout = 600,
) -> None:
    """Show a running (or finished) job's progress until it completes, then its failures."""
    err = Console(stderr=True)
    token_given = bearer_token(token, data_dir)
    candidates = [url] if url else [service_url(None), service_url("cancel_orders")]
    for index, candidate in enumerate(candidates):
        with client_for(candidate, token_given) as client:
            try:
                job = get_job(client, job_id)
            except Refused as refused:
                if refused.reply.status_code == 404 and index + 1 < len(candidates):
                    continue  # not a job of this service: the next one's
                print_refusal(err, refused.reply)
                raise typer.Exit(Exit.REFUSED) from None
            except (httpx.TransportError, Unavailable) as error:
                fail(
                    err,
                    Exit.UNAVAILABLE,
                    f"[red]could not read the job at {escape(candidate)}[/]: {escape(str(error))}",
                )
            follow_to_the_end(client, job, interval, timeout)


if __name__ == "__main__":
    cli()
