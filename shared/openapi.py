"""Each service's OpenAPI document says what the service really answers, from one place.

FastAPI documents the routes' own parameters, bodies and typed answers; what the shared layers
add around every route it cannot see, so it is written here, from what each route declares:

- every 4xx an operation can answer, in the platform's error shape (shared/http.py): 401 and 403
  where the route needs a token (shared/auth), 404 where its path names something, 409 on a
  write (a rule's refusal in the current state; on a POST also a request whose Idempotency-Key is
  still being processed), 413 where it takes a body (shared/body_limit.py), and 422 with the
  real `{"error": {..., "details": [{field, reason}]}}` instead of FastAPI's `{"detail": [...]}`;
- the `Idempotency-Key` header on every POST (shared/idempotency.py);
- an example of each request body: the first of its model's `examples` (`model_config = example({...})`).

Routes say what they answer by their return type (`-> FulfillmentOrderView`): FastAPI checks and
serialises the answer by that model, and documents it.

Operation ids are the route functions' names (`pay_order`), unique per service (checked here).
"""

from __future__ import annotations

from collections import Counter

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, JsonValue

from shared.auth import access_of, api_routes
from shared.http import ErrorResponse, InvalidRequestResponse
from shared.idempotency import HEADER_PARAMETER, REPLAYED_HEADER
from shared.schemas import Schema, subschema, subschemas

REF = "#/components/schemas/{model}"
WRITES = {"post", "put", "patch", "delete"}
ERRORS: dict[str, str] = {
    "401": "No bearer token, or one that is not valid (expired, not signed by a trusted key, wrong audience).",
    "403": "The token lacks a scope this operation needs (details.required_scopes), or may not reach this "
    "resource (a fulfillment service reaches only the fulfillment orders at its own locations).",
    "404": "Nothing by that id.",
    "409": "Refused in the resource's current state (the message says why); on a POST, also a request with the "
    "same Idempotency-Key still being processed.",
    "413": "The request body is larger than the service takes (details.max_bytes).",
    "422": "The request is not one this operation takes: details names each field and the reason. Also an "
    "Idempotency-Key used before for a different request.",
}


def example(body: dict[str, JsonValue]) -> ConfigDict:
    """A request body model's config with `body` as its example: the one its operation shows."""
    return ConfigDict(json_schema_extra={"examples": [body]})


def operation_id(route: APIRoute) -> str:
    """The route function's name: `pay_order`, not `pay_order_orders__order_id__pay_post`."""
    return route.name


def document(app: FastAPI) -> None:
    """Complete the app's OpenAPI document once it is asked for (after `shared.auth.install`,
    whose own completion of the security requirements this wraps)."""
    routes = api_routes(app)
    repeated = [name for name, count in Counter(operation_id(r) for r in routes for _ in r.methods or ()).items()
                if count > 1]  # fmt: skip
    if repeated:
        raise ValueError(f"operation ids must be unique in a service; repeated: {', '.join(sorted(repeated))}")
    generate = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema:
            return app.openapi_schema
        schema: Schema = generate()
        components = _member(_member(schema, "components"), "schemas")
        error = _component(components, ErrorResponse)
        invalid = _component(components, InvalidRequestResponse)
        paths = _get(schema, "paths")
        for route in routes:
            for method in route.methods or ():
                path = paths.get(route.path_format)
                operation = subschema(path).get(method.lower()) if path is not None else None
                if operation is not None:
                    _complete(subschema(operation), route, method.lower(), error, invalid, components)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _member(parent: Schema, key: str) -> Schema:
    """The object under `key` (an empty one put there when there is none)."""
    return subschema(parent.setdefault(key, {}))


def _get(parent: Schema, key: str) -> Schema:
    """The object under `key`, or an empty one (not put there)."""
    return subschema(parent.get(key, {}))


def _component(components: Schema, model: type[BaseModel]) -> Schema:
    found: Schema = model.model_json_schema(ref_template=REF, mode="serialization")
    components.update(subschema(found.pop("$defs", {})))
    components[model.__name__] = found
    return {"$ref": REF.format(model=model.__name__)}


def _complete(
    operation: Schema, route: APIRoute, method: str, error: Schema, invalid: Schema, components: Schema
) -> None:
    responses = _member(operation, "responses")
    answers: set[str] = set()
    if access_of(route) is not None:
        answers |= {"401", "403"}
    if route.dependant.path_params:
        answers.add("404")
    if method in WRITES:
        answers.add("409")
    body = operation.get("requestBody")
    if body is not None:
        answers.add("413")
        _example(subschema(body), components)
    if method == "post":
        parameters = operation.setdefault("parameters", [])
        if not isinstance(parameters, list):
            raise TypeError(f"an operation's parameters are a list, not {parameters!r}")
        if not any(subschema(p).get("name") == HEADER_PARAMETER["name"] for p in parameters):
            parameters.append(HEADER_PARAMETER)
        for status, response in responses.items():
            if status.startswith("2"):
                _member(subschema(response), "headers")["Idempotent-Replayed"] = REPLAYED_HEADER
    if operation.get("parameters") or body is not None:
        answers.add("422")
    answers |= {status for status in responses if status.startswith("4")}
    for status in sorted(answers):
        response = subschema(responses.setdefault(status, {"description": ERRORS.get(status, "Refused.")}))
        if status in ERRORS and response.get("description") in (None, "", "Validation Error"):
            response["description"] = ERRORS[status]
        response["content"] = {"application/json": {"schema": invalid if status == "422" else error}}
    operation["responses"] = dict(sorted(responses.items()))


def _example(body: Schema, components: Schema) -> None:
    """The request body's example: the first of its model's `examples` (json_schema_extra)."""
    for content in _get(body, "content").values():
        media = subschema(content)
        schema = _get(media, "schema")
        refs = [schema.get("$ref")] + [subschema(option).get("$ref") for option in subschemas(schema.get("anyOf", []))]
        for ref in refs:
            if not isinstance(ref, str):
                continue
            component = components.get(ref.rsplit("/", 1)[-1])
            examples = subschema(component).get("examples") if component is not None else None
            if isinstance(examples, list) and examples:
                media.setdefault("example", examples[0])
                break
