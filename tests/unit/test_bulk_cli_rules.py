"""The bulk-job CLI's own rules, without a service: how parameters and id files are read, and
that a start whose answer is lost is retried with the same Idempotency-Key (so the service
answers the retry with the first job: "a retried start never starts two jobs")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer

from deploy.bulk import Refused, Unavailable, parse_parameter, read_ids, request_body, start_job

JOB = {"id": "job-1", "action": "hold", "status": "RUNNING", "total": 1, "done": 0, "succeeded": 0, "failed": 0}


def test_parameters_are_text_unless_given_as_json() -> None:
    assert parse_parameter("note=123") == ("note", "123")
    assert parse_parameter("note=a=b") == ("note", "a=b")
    assert parse_parameter("notify_customer:=false") == ("notify_customer", False)
    assert parse_parameter("restock:=true") == ("restock", True)
    for wrong in ("reason", "=OTHER", "notify_customer:=nope"):
        with pytest.raises(typer.BadParameter):
            parse_parameter(wrong)


def test_the_body_names_the_ids_field_and_keeps_the_command_s_own_fields() -> None:
    body = request_body("cancel_orders", ["o-1", "o-2"], "order_ids", ["refund=now", "restock:=true"])
    assert body == {"action": "cancel_orders", "order_ids": ["o-1", "o-2"], "refund": "now", "restock": True}
    for clash in ("action=fulfill", "order_ids:=[]"):
        with pytest.raises(typer.BadParameter, match="set by the command itself"):
            request_body("cancel_orders", ["o-1"], "order_ids", [clash])


def test_an_ids_file_takes_lines_spaces_commas_and_comments(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# exported from the admin\nfo-1\nfo-2, fo-3  # the last two\n\n fo-4 \n")
    assert read_ids(ids) == ["fo-1", "fo-2", "fo-3", "fo-4"]


def test_a_start_whose_answer_is_lost_is_retried_with_the_same_idempotency_key() -> None:
    """Lost answer, then a 503, then the first attempt still in progress (409), then the job."""
    seen: list[httpx.Request] = []
    answers: Iterator[httpx.Response | Exception] = iter(
        [
            httpx.ReadTimeout("no answer"),
            httpx.Response(503, json={"error": {"code": "unavailable", "message": "store", "details": None}}),
            httpx.Response(409, json={"error": {"code": "request_in_progress", "message": "", "details": None}}),
            httpx.Response(202, json=JOB, headers={"Idempotent-Replayed": "true"}),
        ]
    )

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with httpx.Client(base_url="http://fulfillment", transport=httpx.MockTransport(service)) as client:
        job = start_job(client, {"action": "hold", "fulfillment_order_ids": ["fo-1"]}, "key-1", pause=0.01)

    assert job == JOB
    assert [r.headers["idempotency-key"] for r in seen] == ["key-1"] * 4
    assert len({r.content for r in seen}) == 1


def test_a_refused_start_is_not_retried_and_a_dead_service_is_given_up_on() -> None:
    calls = 0

    def refusing(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"error": {"code": "invalid_request", "message": "", "details": []}})

    with (
        httpx.Client(base_url="http://fulfillment", transport=httpx.MockTransport(refusing)) as client,
        pytest.raises(Refused),
    ):
        start_job(client, {"action": "teleport"}, "key-2", pause=0.01)
    assert calls == 1

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with (
        httpx.Client(base_url="http://fulfillment", transport=httpx.MockTransport(down)) as client,
        pytest.raises(Unavailable, match="ConnectError"),
    ):
        start_job(client, {"action": "hold"}, "key-3", retry_for=0.1, pause=0.01)
