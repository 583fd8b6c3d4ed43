"""Idempotency-Key records expire: `idempotency_keys` no longer grows by ~1.5 KB per keyed POST
forever. The sweep is an indexed range on a numeric expiry, on the embedded store as on MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from shared.idempotency import IdempotencyMiddleware, forget_expired


def app_with(db: Any, keep_seconds: float) -> FastAPI:
    app = FastAPI()
    calls: list[int] = []

    @app.post("/things", status_code=201)
    async def create() -> dict[str, Any]:
        calls.append(1)
        return {"n": len(calls)}

    app.add_middleware(IdempotencyMiddleware, collection=db["idempotency_keys"], keep_seconds=keep_seconds)
    return app


async def test_expired_keys_are_swept_and_recent_ones_kept(db: Any) -> None:
    transport = httpx.ASGITransport(app=app_with(db, keep_seconds=3600))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for key in ("old-1", "old-2", "recent"):
            assert (await http.post("/things", headers={"Idempotency-Key": key})).status_code == 201
    past = datetime.now(UTC).timestamp() - 1
    await db["idempotency_keys"].update_many({"_id": {"$in": ["old-1", "old-2"]}}, {"$set": {"expires_epoch": past}})

    assert await forget_expired(db["idempotency_keys"]) == 2
    assert [doc["_id"] async for doc in db["idempotency_keys"].find({})] == ["recent"]


async def test_a_key_past_its_keeping_time_but_not_yet_swept_runs_as_a_new_request(db: Any) -> None:
    transport = httpx.ASGITransport(app=app_with(db, keep_seconds=3600))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.post("/things", headers={"Idempotency-Key": "k"})).json() == {"n": 1}
        assert (await http.post("/things", headers={"Idempotency-Key": "k"})).json() == {"n": 1}
        past = datetime.now(UTC).timestamp() - 1
        await db["idempotency_keys"].update_one({"_id": "k"}, {"$set": {"expires_epoch": past}})
        again = await http.post("/things", headers={"Idempotency-Key": "k"})
    assert again.json() == {"n": 2}
    assert "idempotent-replayed" not in again.headers
