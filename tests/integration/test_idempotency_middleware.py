"""The Idempotency-Key middleware against the real embedded store, on a small app of its own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from shared.idempotency import IdempotencyMiddleware

KEY = {"Idempotency-Key": "k-1"}


def app_with(db: Any, handler_gate: asyncio.Event | None = None) -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    calls: list[int] = []

    @app.post("/things", status_code=201)
    async def create(body: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        if handler_gate is not None:
            await handler_gate.wait()
        if body.get("explode"):
            raise RuntimeError("boom")
        return {"n": len(calls)}

    app.add_middleware(IdempotencyMiddleware, collection=db["idempotency_keys"])
    return app, calls


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_retry_while_the_first_is_running_is_told_to_wait(db: Any) -> None:
    gate = asyncio.Event()
    app, calls = app_with(db, gate)
    async with client(app) as http:
        first = asyncio.create_task(http.post("/things", json={}, headers=KEY))
        while not calls:
            await asyncio.sleep(0.01)
        retry = await http.post("/things", json={}, headers=KEY)
        assert retry.status_code == 409
        assert retry.json()["error"]["code"] == "request_in_progress"
        gate.set()
        assert (await first).status_code == 201
        again = await http.post("/things", json={}, headers=KEY)
    assert again.json() == {"n": 1}
    assert calls == [1]


async def test_a_server_error_is_not_kept_so_the_retry_runs_again(db: Any) -> None:
    app, calls = app_with(db)
    async with client(app) as http:
        assert (await http.post("/things", json={"explode": True}, headers=KEY)).status_code == 500
        # The same request again runs again (and fails again): nothing was kept.
        assert (await http.post("/things", json={"explode": True}, headers=KEY)).status_code == 500
    assert len(calls) == 2


async def test_an_attempt_abandoned_by_a_crash_is_taken_over_by_the_retry(db: Any) -> None:
    app, calls = app_with(db)
    async with client(app) as http:
        first = await http.post("/things", json={}, headers={"Idempotency-Key": "k-2"})
        assert first.status_code == 201
        # As if the process had died mid-request long ago: in progress, started 10 minutes back.
        started = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        await db["idempotency_keys"].update_one(
            {"_id": "k-2"}, {"$set": {"state": "in_progress", "started_at": started}}
        )
        retry = await http.post("/things", json={}, headers={"Idempotency-Key": "k-2"})
    assert retry.status_code == 201
    assert len(calls) == 2


async def test_requests_without_a_key_are_left_alone(db: Any) -> None:
    app, calls = app_with(db)
    async with client(app) as http:
        for _ in range(2):
            assert (await http.post("/things", json={})).status_code == 201
    assert len(calls) == 2
    assert await db["idempotency_keys"].count_documents({}) == 0
