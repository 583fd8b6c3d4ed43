"""The operator CLI for bulk jobs (`python -m deploy.bulk`), driven with typer's CliRunner
against the session stack's real fulfillment service.

"An operator CLI ... starts a bulk job from a file or list of order ids, shows a live progress
bar until it completes, then prints the failures with their reasons; it also follows an existing
job by id." Also: a refused start names the field and the reason, and a start repeated with the
same Idempotency-Key starts one job.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deploy.bulk import Exit, cli
from deploy.local_stack import LocalStack
from tests.e2e.test_bulk_jobs import open_fulfillment_orders
from tests.e2e.test_fulfillment_flows import Shop

pytestmark = pytest.mark.e2e


@pytest.fixture
async def shop(stack: LocalStack, http: httpx.AsyncClient) -> AsyncIterator[Shop]:
    yield Shop(stack, http)


def admin_token(stack: LocalStack) -> str:
    assert stack.auth is not None
    return stack.auth.admin_token(600)


async def run(stack: LocalStack, *args: str, token: bool = True, env: dict[str, str] | None = None) -> Result:
    """The CLI in a thread (it blocks while it polls), against the stack's fulfillment service,
    on a wide terminal so that a table's reasons stay on one line."""
    options = ["--url", stack.url("fulfillment"), "--interval", "0.1", "--timeout", "60"]
    if token:
        options += ["--token", admin_token(stack)]
    environment = {"COLUMNS": "200", **(env or {})}
    return await asyncio.to_thread(lambda: CliRunner().invoke(cli, [*args, *options], env=environment))


async def test_start_shows_progress_until_completed_then_the_failures_with_their_reasons(shop: Shop) -> None:
    """A bulk fulfil of two fulfillment orders, one ON_HOLD: the CLI starts it from a file of
    ids, follows it to COMPLETED and prints the held one's failure with the single action's reason."""
    fos = await open_fulfillment_orders(shop, 2)
    held, open_one = fos
    reply = await shop.http.post(
        f"{shop.stack.url('fulfillment')}/fulfillment-orders/{held['id']}/hold", json={"reason": "INCORRECT_ADDRESS"}
    )
    assert reply.status_code == 200, reply.text
    ids_file = Path(shop.stack.data_dir) / f"ids-{shop.tag}.txt"
    ids_file.write_text(f"# picked by hand\n{held['id']}\n{open_one['id']}\n")

    result = await run(
        shop.stack, "start", "fulfill", "--ids-file", str(ids_file),
        "--param", "tracking_company=PostNord", "--param", "notify_customer:=false",
    )  # fmt: skip

    assert result.exit_code == Exit.FAILURES, result.output
    job_id = re.search(r"bulk job (\S+): fulfill on 2 fulfillment orders", result.stdout)
    assert job_id, result.output
    assert f"bulk job {job_id[1]} COMPLETED: 1 succeeded, 1 failed" in result.stdout
    assert "2/2" in result.stdout  # the progress bar, at its end
    (row,) = [line for line in result.stdout.splitlines() if held["id"] in line and "conflict" in line]
    assert "ON_HOLD (INCORRECT_ADDRESS): release the hold first" in row
    assert open_one["id"] not in result.stdout.split("COMPLETED")[1]
    (now,) = await shop.fulfillment_orders(open_one["order_id"])
    assert (now["status"], [f["tracking"]["company"] for f in now["fulfillments"]]) == ("CLOSED", ["PostNord"])


async def test_follow_an_existing_job_by_id(shop: Shop) -> None:
    """A job started elsewhere (over HTTP) is followed by its id to COMPLETED, with its failures;
    the token comes from $PLATFORM_TOKEN."""
    unknown = [f"no-such-fo-{shop.tag}-{n}" for n in range(2)]
    started = await shop.http.post(
        f"{shop.stack.url('fulfillment')}/bulk-jobs",
        json={"action": "hold", "fulfillment_order_ids": unknown, "reason": "HIGH_RISK_OF_FRAUD"},
    )
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    result = await run(shop.stack, "follow", job_id, token=False, env={"PLATFORM_TOKEN": admin_token(shop.stack)})

    assert result.exit_code == Exit.FAILURES, result.output
    assert f"bulk job {job_id} COMPLETED: 0 succeeded, 2 failed" in result.stdout
    for fo_id in unknown:
        (row,) = [line for line in result.stdout.splitlines() if fo_id in line]
        assert "not_found" in row and f"fulfillment order '{fo_id}' does not exist" in row

    missing = await run(shop.stack, "follow", f"no-such-job-{shop.tag}")
    assert missing.exit_code == Exit.REFUSED, missing.output
    assert "refused: 404 not_found" in missing.stderr and f"no-such-job-{shop.tag}" in missing.stderr


async def test_a_refused_start_prints_the_field_and_the_reason(stack: LocalStack, tmp_path: Path) -> None:
    """251 ids, an unknown action and a missing parameter are each a 422: the CLI prints the
    field and the reason and exits 2; the token is the one `make run` leaves in the data dir."""
    (tmp_path / "admin-token").write_text(admin_token(stack) + "\n")
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text(",".join(f"fo-{n}" for n in range(251)))
    local_token = ["--data-dir", str(tmp_path)]

    too_many = await run(stack, "start", "hold", "--ids-file", str(ids_file), *local_token, token=False)
    assert too_many.exit_code == Exit.REFUSED, too_many.output
    assert "refused: 422 invalid_request" in too_many.stderr
    assert "fulfillment_order_ids: List should have at most 250 items after validation, not 251" in too_many.stderr

    unknown_action = await run(stack, "start", "teleport", "--id", "fo-1", *local_token, token=False)
    assert unknown_action.exit_code == Exit.REFUSED, unknown_action.output
    assert re.search(r"^  action: Input should be 'fulfill', 'hold'", unknown_action.stderr, re.M), (
        unknown_action.stderr
    )

    no_reason = await run(stack, "start", "hold", "--id", "fo-1", *local_token, token=False)
    assert no_reason.exit_code == Exit.REFUSED, no_reason.output
    assert "  reason: required for the hold action" in no_reason.stderr


async def test_a_start_repeated_with_its_idempotency_key_starts_one_job(stack: LocalStack, tmp_path: Path) -> None:
    """The same start sent again with the same Idempotency-Key (a retry after a lost answer)
    answers with the first job instead of starting a second."""
    key = f"cli-{tmp_path.name}"
    args = ("start", "hold", "--id", f"no-such-fo-{tmp_path.name}", "--param", "reason=HIGH_RISK_OF_FRAUD",
            "--idempotency-key", key, "--no-wait")  # fmt: skip
    first, again = [await run(stack, *args) for _ in range(2)]
    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    first_id = re.search(r"bulk job (\S+): hold on 1 fulfillment order ", first.stdout)
    again_id = re.search(r"bulk job (\S+): hold on 1 fulfillment order ", again.stdout)
    assert first_id and again_id and first_id[1] == again_id[1]


async def test_cancel_orders_goes_to_the_orders_service_and_is_followed_there(shop: Shop) -> None:
    """Without --url, cancel_orders starts on the orders service ($ORDERS_URL), which owns
    cancellation; `follow` without --url finds the job there after fulfillment says 404."""
    (fo,) = await open_fulfillment_orders(shop, 1)
    env = {"ORDERS_URL": shop.stack.url("orders"), "FULFILLMENT_URL": shop.stack.url("fulfillment")}
    common = ["--token", admin_token(shop.stack), "--interval", "0.1", "--timeout", "60"]
    start = ["start", "cancel_orders", "--id", fo["order_id"], "--param", "refund=none", "--param", "restock:=true",
             "--param", "reason=customer", *common]  # fmt: skip
    started = await asyncio.to_thread(lambda: CliRunner().invoke(cli, start, env={"COLUMNS": "200", **env}))

    assert started.exit_code == Exit.SUCCEEDED, started.output
    job_id = re.search(r"bulk job (\S+): cancel_orders on 1 order ", started.stdout)
    assert job_id, started.output
    assert (await shop.order(fo["order_id"]))["cancelled_at"] is not None
    followed = await asyncio.to_thread(
        lambda: CliRunner().invoke(cli, ["follow", job_id[1], *common], env={"COLUMNS": "200", **env})
    )
    assert followed.exit_code == Exit.SUCCEEDED, followed.output
    assert f"bulk job {job_id[1]} COMPLETED: 1 succeeded, 0 failed" in followed.stdout
