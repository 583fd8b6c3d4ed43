"""A body that cannot be read at all is bad input like any other (issue 13, found by schemathesis:
`PUT /custom-statuses/{code}` with a body that is not UTF-8 answered 400 `http_error`, "There was an
error parsing the body", a status its OpenAPI does not document and without naming the field)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.http import RequestBody, install_error_handlers


class NameIn(RequestBody):
    name: str


def app() -> FastAPI:
    served = FastAPI()
    install_error_handlers(served)

    @served.put("/things/{thing_id}")
    async def put_thing(thing_id: str, body: NameIn) -> dict[str, str]:
        return {"id": thing_id, "name": body.name}

    return served


async def test_a_body_that_is_not_utf8_is_a_422_naming_the_body() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://test") as client:
        reply = await client.put("/things/a", content=b"\xb5\x03AI", headers={"content-type": "application/json"})
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request"
    assert [detail["field"] for detail in error["details"]] == ["body"]
