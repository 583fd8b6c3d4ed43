"""The frame every service process runs in: broker, store, outbox relay and HTTP app.

A service's composition root (`services/<name>/app.py`) gives it its settings, event
subscriptions, collections and routes; everything about running lives here once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from pymongo import IndexModel

from shared.aggregates import A, StoreMapping
from shared.asyncapi import AsyncAPIDocument, asyncapi_html, platform_yaml, service_document
from shared.auth import PUBLIC, Authenticator, install
from shared.body_limit import BodySizeLimit
from shared.business_metrics import BusinessMetrics
from shared.events import CloudEvent
from shared.http import ErrorResponse, error_body, install_error_handlers, refuse_unknown_query_parameters
from shared.idempotency import EXPIRY_INDEX, IdempotencyMiddleware, forget_expired
from shared.messaging import EventSubscriptions, build_broker, publish_event
from shared.observability import RequestContext, ServiceMetrics, configure_logging, configure_telemetry
from shared.openapi import document, operation_id
from shared.settings import ServiceSettings
from shared.store import OUTBOX_PENDING_INDEX, AggregateStore, Database, OutboxRelay, build_mongo_client

log = logging.getLogger(__name__)

IDEMPOTENCY_KEYS = "idempotency_keys"
UPGRADE_RETRY_SECONDS = 5.0


class YamlResponse(PlainTextResponse):
    media_type = "application/yaml"


ASYNCAPI_SCHEMA = {"type": "object", "description": "An AsyncAPI 3.0 document", "required": ["asyncapi"]}


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] = {}


READINESS: dict[int | str, dict[str, object]] = {
    200: {"model": Readiness, "description": "The store and the broker answer."},
    503: {"model": ErrorResponse, "description": "Not ready: details says which dependency does not answer."},
}


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        collections: Iterable[str],
        description: str,
        version: str = "1.0.0",
    ) -> None:
        self.settings = settings
        self.description = description
        self.version = version
        self.authenticator = Authenticator(settings)
        self.registry = CollectorRegistry()
        self.metrics = ServiceMetrics(self.registry)
        self.telemetry = configure_telemetry(settings.service_name)
        self.business = BusinessMetrics(self.registry, settings.service_name)
        self.broker = build_broker(settings, self.registry, self.telemetry)
        self.mongo = build_mongo_client(settings, self.registry)
        self.database = self.mongo[settings.database_name]
        self.relay = OutboxRelay(
            [self.database[name] for name in collections], self._publish, settings.outbox_poll_seconds
        )
        self._background: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._indexes: dict[str, list[IndexModel]] = {name: [OUTBOX_PENDING_INDEX] for name in collections}
        self._indexes.setdefault(IDEMPOTENCY_KEYS, []).append(EXPIRY_INDEX)
        self.background("idempotency-key-expiry", self._forget_expired_keys)
        self.background("business-gauges", self._refresh_business_gauges)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[EventSubscriptions] = []
        self._asyncapi: AsyncAPIDocument | None = None

    def subscribe(self, subscriptions: EventSubscriptions) -> None:
        subscriptions.attach(self.broker, self.settings, self.metrics)
        self._subscriptions.append(subscriptions)
        self._asyncapi = None

    def indexes(self, declared: Mapping[str, Sequence[IndexModel]]) -> None:
        """The indexes a service's queries use, by collection: created at start, idempotently."""
        for collection, models in declared.items():
            self._indexes.setdefault(collection, []).extend(models)

    async def _create_indexes(self) -> None:
        for collection, models in self._indexes.items():
            await self.database[collection].create_indexes(models)

    async def _refresh_business_gauges(self) -> None:
        await self.business.gauges.refresh_forever(
            self.database, self._indexes, self.relay.collections, self.settings.business_gauges_seconds
        )

    async def _forget_expired_keys(self) -> None:
        while True:
            try:
                forgotten = await forget_expired(self.database[IDEMPOTENCY_KEYS])
                if forgotten:
                    log.info("forgot %d expired idempotency keys", forgotten)
            except Exception:
                log.exception("idempotency key expiry failed; trying again later")
            await asyncio.sleep(self.settings.idempotency_key_sweep_seconds)

    def upgrade(self, name: str, run: Callable[[Database], Awaitable[int | None]]) -> None:
        """Bring what an earlier version stored up to this one's fields, once at start, in the
        background (the service serves meanwhile), retried until the store answers."""

        async def until_done() -> None:
            while True:
                try:
                    changed = await run(self.database)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception(
                        "upgrading stored documents (%s) failed; retrying in %ss", name, UPGRADE_RETRY_SECONDS
                    )
                    await asyncio.sleep(UPGRADE_RETRY_SECONDS)
                    continue
                if changed:
                    log.info("upgraded %d stored documents (%s)", changed, name)
                return

        self.background(f"upgrade-{name}", until_done)

    def background(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run `run()` as a task while the service is up (started after the broker, cancelled
        first at shutdown): periodic work such as a sweep. It should loop and handle its errors."""
        self._background[name] = run

    def store(self, collection: str, *, mapping: StoreMapping[A]) -> AggregateStore[A]:
        """An aggregate collection whose events the relay publishes (it watches every one: a pass
        woken by a write probes only the collection written, the poll probes them all); `mapping`
        says how its aggregates are stored (shared.aggregates.StoreMapping)."""
        self.relay.watch(self.database[collection])
        declared = self._indexes.setdefault(collection, [])
        if OUTBOX_PENDING_INDEX not in declared:
            declared.append(OUTBOX_PENDING_INDEX)
        retention = timedelta(seconds=self.settings.inbox_retention_seconds)
        return AggregateStore(self.database[collection], self.relay.wake, retention, mapping=mapping)

    async def _publish(self, event: CloudEvent) -> None:
        await publish_event(self.broker, event, self.metrics)
        self.metrics.outbox_published.labels(event.type).inc()
        self.business.observe(event)

    @asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self._create_indexes()
        await self.broker.start()
        self.relay.start()
        self._tasks = [asyncio.create_task(run(), name=name) for name, run in self._background.items()]
        log.info("%s started", self.settings.service_name)
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.relay.stop()
            for subscriptions in self._subscriptions:
                await subscriptions.flush_commits()
            await self.broker.stop()
            await self.mongo.close()
            if self.telemetry is not None:
                await asyncio.to_thread(self.telemetry.shutdown)
            log.info("%s stopped", self.settings.service_name)

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.database.command("ping"), timeout=2)
            checks["mongodb"] = "ok"
        except Exception as exc:
            checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        checks["kafka"] = "ok" if await self.broker.ping(timeout=2) else "unreachable"
        return checks

    def asyncapi(self) -> AsyncAPIDocument:
        """This service's AsyncAPI document (shared/asyncapi.py): what it publishes, the types it
        handles, its dead-letter topics; built from the catalog once, when first asked for."""
        if self._asyncapi is None:
            handled = [event_type for subscriptions in self._subscriptions for event_type in subscriptions.typed]
            self._asyncapi = service_document(self.settings.service_name, self.description, self.version, handled)
        return self._asyncapi

    def http_app(self, *routers: APIRouter) -> FastAPI:
        app = FastAPI(
            title=f"{self.settings.service_name} service",
            description=self.description,
            version=self.version,
            lifespan=self.lifespan,
            dependencies=[Depends(refuse_unknown_query_parameters)],
            generate_unique_id_function=operation_id,
        )
        install_error_handlers(app)
        app.add_middleware(
            IdempotencyMiddleware,
            collection=self.database[IDEMPOTENCY_KEYS],
            keep_seconds=self.settings.idempotency_key_keep_seconds,
        )
        # Added last, so it runs first: the idempotency middleware reads the body, and must not past the limit.
        app.add_middleware(BodySizeLimit, max_bytes=self.settings.max_request_bytes)
        # Outermost: every request, refused ones included, has its trace and its access line.
        app.add_middleware(RequestContext)

        @app.get("/healthz", tags=["operations"], dependencies=[PUBLIC])
        async def healthz() -> Health:
            return Health(status="ok")

        @app.get("/readyz", tags=["operations"], dependencies=[PUBLIC], response_model=None, responses=READINESS)
        async def readyz() -> JSONResponse:
            checks = await self.readiness()
            ready = all(v == "ok" for v in checks.values())
            body = {"status": "ready", "checks": checks} if ready else error_body("not_ready", "not ready", checks)
            return JSONResponse(body, status_code=200 if ready else 503)

        @app.get("/metrics", tags=["operations"], dependencies=[PUBLIC], response_class=PlainTextResponse)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        # Plain functions: FastAPI runs them in its thread pool, so building a document the first time
        # (a few hundred ms; then kept) does not hold up the event loop.
        @app.get("/asyncapi", tags=["operations"], dependencies=[PUBLIC])
        def asyncapi_document() -> JSONResponse:
            return JSONResponse(self.asyncapi())

        @app.get("/asyncapi/ui", tags=["operations"], dependencies=[PUBLIC], response_class=HTMLResponse)
        def asyncapi_ui() -> str:
            return asyncapi_html(self.asyncapi())

        @app.get(
            "/asyncapi.yaml",
            tags=["operations"],
            dependencies=[PUBLIC],
            response_class=YamlResponse,
            responses={200: {"content": {YamlResponse.media_type: {"schema": ASYNCAPI_SCHEMA}}}},
        )
        def platform_asyncapi() -> PlainTextResponse:
            """The whole platform's AsyncAPI document, for subscribers (docs/asyncapi.yaml)."""
            return PlainTextResponse(platform_yaml(), media_type="application/yaml")

        for router in routers:
            app.include_router(router)
        install(app, self.authenticator)
        document(app)
        if self.telemetry is not None:
            self.telemetry.instrument(app)
        return app

    def serve(self, app: FastAPI) -> None:
        configure_logging(self.settings.service_name, self.settings.log_level)
        uvicorn.run(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            timeout_graceful_shutdown=10,
        )
