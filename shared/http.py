"""HTTP conventions shared by every service's API: one error shape, never a 500 for bad input.

Errors are `{"error": {"code", "message", "details"}}`; a validation error names each field
and the reason in `details`.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypedDict

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.rules import RuleViolation
from shared.text import no_control_characters

IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
IDENTIFIER_RULE = "1-64 characters: letters, digits, '.', '_', '-', starting with a letter or digit"

# Skus, location ids and fulfillment service ids: one rule for every service, so an order can
# only name a sku that inventory can stock.
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description=IDENTIFIER_RULE)]
IdentifierPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN, description=IDENTIFIER_RULE)
]
"""The same rule for an identifier in a URL path."""


class RequestBody(BaseModel):
    """A request body: unknown fields are refused, not silently ignored, and no text field
    holds a control character (shared/text.py; 422 naming the field). A multi-line free-text
    field is named in `multi_line_fields` and may hold line breaks and tabs."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    multi_line_fields: ClassVar[frozenset[str]] = frozenset()
    _plain_text = no_control_characters()


class ApiError(Exception):
    """A request the service understood but refuses; status says which kind of 4xx."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFound(ApiError):
    def __init__(self, what: str, identifier: str) -> None:
        super().__init__(404, "not_found", f"{what} {identifier!r} does not exist")


class Conflict(ApiError):
    """The action is not allowed in the resource's current state; the message says why."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(409, "conflict", message, details)


class ErrorInfo(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, conflict, forbidden, payload_too_large")
    message: str = Field(description="for people: what was refused and why")
    details: Any = Field(description="more about it, or null: e.g. the scopes a 403 needed")


class ErrorResponse(BaseModel):
    """What every refusal answers (`error_body`): documented on each 4xx in OpenAPI."""

    error: ErrorInfo


class FieldProblem(BaseModel):
    field: str = Field(description="the field, e.g. line_items.0.quantity, query.limit or body")
    reason: str


class InvalidRequestInfo(BaseModel):
    code: str = Field(description="invalid_request, or idempotency_key_reused")
    message: str
    details: list[FieldProblem] | None = Field(description="each invalid field and why")


class InvalidRequestResponse(BaseModel):
    """A 422: the request cannot be what the operation takes; `details` names each field."""

    error: InvalidRequestInfo


class ErrorFields(TypedDict):
    code: str
    message: str
    details: JsonValue


class ErrorBody(TypedDict):
    """An ErrorResponse as JSON, for the answers written without FastAPI (middleware, handlers)."""

    error: ErrorFields


def error_body(code: str, message: str, details: Any = None) -> ErrorBody:
    return {"error": {"code": code, "message": message, "details": details}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)

    @app.exception_handler(RuleViolation)
    async def rule_violation(_: Request, exc: RuleViolation) -> JSONResponse:
        return JSONResponse(error_body("conflict", str(exc)), status_code=409)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_validation_detail(err) for err in exc.errors()]
        fields = ", ".join(d["field"] for d in details[:5])
        return JSONResponse(error_body("invalid_request", f"invalid request: {fields}", details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it could not read at all (not UTF-8, say): bad input, so the
            # same 422 naming the body as a body that is not JSON.
            details = [{"field": "body", "reason": f"not valid JSON: {exc.detail}"}]
            return JSONResponse(error_body("invalid_request", "invalid request: body", details), status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)


def _validation_detail(err: Any) -> dict[str, str]:
    """One invalid field and the reason; a body that is not JSON at all is named as the body."""
    if err.get("type") == "json_invalid":
        position = err["loc"][-1] if len(err["loc"]) > 1 else "?"
        reason = f"not valid JSON at character {position}: {err.get('ctx', {}).get('error', err['msg'])}"
        return {"field": "body", "reason": reason}
    return {"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body", "reason": err["msg"]}


def refuse_unknown_query_parameters(request: Request) -> None:
    """A route that takes query parameters (filters, paging) refuses ones it does not declare: an
    ignored `?order_id[$ne]=x` or a misspelt filter would otherwise silently answer with everything.

    The names come from the route's own declaration, so a route added later is covered without a
    list to keep. Routes that take none ignore the query string (a download link may come back
    with a mail client's tracking parameters). Installed on every route by `shared.runtime`.
    """
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    known = _declared_query_parameters(route)
    unknown = sorted(set(request.query_params) - known) if known else []
    if unknown:
        reason = "unknown query parameter; known: " + ", ".join(sorted(known))
        details = [{"field": f"query.{name[:64]}", "reason": reason} for name in unknown[:5]]
        raise ApiError(422, "invalid_request", "invalid request: " + ", ".join(d["field"] for d in details), details)


def _declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route and its dependencies declare (by alias); a few dependants
    to walk, only for requests that carry a query string."""
    names: set[str] = set()
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        names.update(field.alias for field in dependant.query_params)
        pending.extend(dependant.dependencies)
    return frozenset(names)
