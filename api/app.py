"""The FastAPI application: ADS queries, users and roles, devices, jobs, ML, real-time feed.

Everything is under ``/api/v1``; the OpenAPI document is at ``/openapi.json`` and the
interactive docs at ``/docs``. The application is served by gunicorn with uvicorn workers
(:mod:`api.service`); each worker builds its own :class:`~api.context.AppContext` in the
lifespan. Errors are one JSON schema, :class:`api.errors.ErrorBody` (``{"detail": ...}``,
with ``errors`` on a 422): 400 (unparsable body), 401 (credentials), 403 (role or region),
404 (unknown entity), 409 (conflict, the last administrator), 413 (body too large), 422
(bad parameter, named; a password the policy refuses), 429 (rate limit or sign-in lock,
``Retry-After``) and 503 (a dependency down, ``Retry-After``); the OpenAPI document lists
them per operation (:func:`api.errors.document_errors`). ``/docs`` and ``/redoc`` are
served from installed assets (:mod:`api.docs`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.alarm_recorder import AlarmRecorder
from api.alarm_store import AlarmStore
from api.catalog import DeviceCatalog
from api.context import AppContext, RateLimited, SessionGuard
from api.datasets import DATASETS
from api.db import Conflict, LastAdmin, UserStore, database_url
from api.docs import install_docs
from api.embed import EmbedGuard, EmbedTokens
from api.errors import error_response, install_error_handlers, openapi_with_errors
from api.events import EventHub, alarm_channel
from api.fastpath import CacheFastPath
from api.lake_reader import LakeReader, LakeReadError
from api.metrics import ScrapeGauges, install_metrics
from api.output import QueryError
from api.query import EntityNotFound, QueryService
from api.routes import alarms, devices, feed, health, images, indicators, jobs, ml, ops, users
from api.security import (
    AuthError,
    Forbidden,
    RateLimiter,
    Role,
    TokenService,
    TrustedProxies,
    WeakPassword,
    check_password,
    hash_password,
    persistent_secret,
)
from infra.serving_store import ServingStore, ServingUnavailable
from infra.settings import GridLakeSettings, load_settings
from jobs.batch.tracking import JobStore

log = logging.getLogger(__name__)

PREFIX = "/api/v1"

DESCRIPTION = """
Indicators of the GridLake lakehouse for grid operators: ADS queries served from the Redis
serving copy (older ranges from the Hudi tables), device management, backfill jobs, the ML
service and a real-time feed.

**Authentication**: `POST /api/v1/auth/login` with a username and password gives an access
token; send it as `Authorization: Bearer <token>` (the *Authorize* button here). Roles:
`admin`, `operator`, `analyst`, `viewer` (`GET /api/v1/roles`); a user scoped to regions
sees nothing outside them.
"""

TAGS = [
    {"name": "auth", "description": "Sign in, refresh, sign out."},
    {"name": "indicators", "description": "ADS queries: datasets, entities, load curves, "
     "rankings, quality scorecards. JSON or CSV, paged, filtered, sorted, cached."},
    {"name": "devices", "description": "Device master data; changes go to Kafka as "
     "registry events."},
    {"name": "jobs", "description": "Backfill jobs."},
    {"name": "images", "description": "Equipment images in the lake, their files and "
     "their image model results."},
    {"name": "ml", "description": "The ML microservice, with your identity and roles."},
    {"name": "feed", "description": "Real-time values and alarms (Server-Sent Events)."},
    {"name": "alarms", "description": "Stored alarms: list, acknowledge, close."},
    {"name": "users", "description": "User administration and the audit log."},
    {"name": "ops", "description": "Health, readiness, freshness."},
]


def _bootstrap_admin(settings: GridLakeSettings, store: UserStore) -> None:
    """Create the first administrator when the database has no user."""
    store.create_schema()
    if store.count_users():
        return
    cfg = settings.api
    password = (cfg.admin_password.get_secret_value() if cfg.admin_password
                else persistent_secret(settings, "api-admin-password", 12))
    try:
        check_password(password, cfg.admin_username, cfg.password_min_length)
    except WeakPassword as err:
        # a configured value is the operator's decision: said loudly, not refused
        log.warning("api.admin_password breaks the password policy (%s); change it with "
                    "`gridlake api users set %s --password`", err, cfg.admin_username)
    try:
        store.create(cfg.admin_username, hash_password(password), Role.ADMIN.value, [])
    except Conflict:
        return  # another worker created it
    store.audit("system", "user_create", cfg.admin_username, {"role": "admin",
                                                              "bootstrap": True})
    where = "api.admin_password" if cfg.admin_password else str(
        settings.run / "api-admin-password")
    log.warning("created administrator %r; password in %s", cfg.admin_username, where)


def build_context(cfg: GridLakeSettings) -> AppContext:
    """Connections and components of one worker (background parts not started yet)."""
    users_store = UserStore(database_url(cfg))
    _bootstrap_admin(cfg, users_store)
    client = aioredis.from_url(
        cfg.redis.url, decode_responses=True, socket_timeout=cfg.api.redis_timeout_s,
        socket_connect_timeout=cfg.api.redis_timeout_s, retry_on_timeout=False)
    serving = ServingStore(client, cfg.redis.key_prefix, cfg.api.redis_retry_s)
    lake = LakeReader(cfg)
    catalog = DeviceCatalog(cfg)
    hub = EventHub(cfg.redis.url, cfg.redis.key_prefix, DATASETS.values())
    # new rows may extend what Redis covers
    hub.on_change(lambda name: serving.forget_coverage(DATASETS[name].table))
    # cached answers were filtered by region: a device moving region invalidates them
    catalog.on_region_change(hub.invalidate_all)
    ml_url = cfg.api.ml_url or f"http://{cfg.ml.host}:{cfg.ml.port}"
    return AppContext(
        settings=cfg, serving=serving, lake=lake, catalog=catalog, hub=hub,
        users=users_store, tokens=TokenService(cfg),
        limiter=RateLimiter(cfg.api.rate_limit_per_s, cfg.api.rate_limit_burst),
        jobs=JobStore(cfg), queries=QueryService(cfg, serving, lake, catalog, hub),
        ml=httpx.AsyncClient(base_url=ml_url, timeout=cfg.api.ml_timeout_s),
        sessions=SessionGuard(users_store.find, cfg.api.auth_recheck_s),
        proxies=TrustedProxies(cfg.api.trusted_proxies),
    )


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return error_response(status, detail, headers)


def create_app(settings: GridLakeSettings | None = None) -> FastAPI:
    """Build the application; settings default to the environment's."""
    cfg = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await asyncio.to_thread(build_context, cfg)
        context.catalog.start()
        context.hub.start()
        app.state.ctx = context
        app.state.embed = EmbedTokens(cfg)
        app.state.settings = cfg
        app.state.feed = feed.FeedScanner(context.queries)
        app.state.feed_slots = feed.ConnectionSlots(cfg.api.feed_connections_per_user)
        app.state.alarms = AlarmStore(context.users.engine)
        await asyncio.to_thread(app.state.alarms.create_schema)
        recorder = AlarmRecorder(
            app.state.alarms, context.hub, app.state.feed, context.catalog, cfg.api.alarms,
            lambda payload: context.serving.client.publish(
                alarm_channel(cfg.redis.key_prefix), payload))
        recorder.start()
        app.state.scrape_gauges = ScrapeGauges(context, app.state.alarms)
        try:
            yield
        finally:
            await recorder.stop()
            await context.hub.stop()
            await asyncio.to_thread(context.catalog.stop)
            await context.serving.client.aclose()  # type: ignore[attr-defined]
            await context.ml.aclose()
            context.lake.close()
            context.users.close()

    app = FastAPI(
        title="GridLake API", version="1.0.0", description=DESCRIPTION,
        openapi_tags=TAGS, lifespan=lifespan, max_body_size=cfg.api.max_body_bytes,
        docs_url=None, redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    app.openapi = openapi_with_errors(app)  # type: ignore[method-assign]

    @app.exception_handler(AuthError)
    async def _unauthorized(request: Request, exc: AuthError) -> JSONResponse:
        return _error(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return _error(403, str(exc))

    @app.exception_handler(WeakPassword)
    async def _weak_password(request: Request, exc: WeakPassword) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(LastAdmin)
    async def _last_admin(request: Request, exc: LastAdmin) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(EntityNotFound)
    async def _not_found(request: Request, exc: EntityNotFound) -> JSONResponse:
        return _error(404, str(exc.args[0]))

    @app.exception_handler(QueryError)
    async def _bad_query(request: Request, exc: QueryError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, exc: RateLimited) -> JSONResponse:
        # rounded up: a client waiting exactly this long is not refused again
        return _error(429, str(exc), {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))})

    @app.exception_handler(LakeReadError)
    async def _lake_down(request: Request, exc: LakeReadError) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "5"})

    @app.exception_handler(ServingUnavailable)
    async def _serving_down(request: Request, exc: ServingUnavailable) -> JSONResponse:
        return _error(503, str(exc), {"Retry-After": "2"})

    for router in (ops.router, users.router, indicators.router, health.router,
                   images.router, devices.router, jobs.router, feed.router, alarms.router):
        app.include_router(router, prefix=PREFIX)
    app.include_router(ml.router, prefix=PREFIX, max_body_size=cfg.api.ml_max_body_bytes)
    app.include_router(images.ml_router, prefix=PREFIX, max_body_size=cfg.images.max_bytes)
    app.add_middleware(CacheFastPath)
    # an embed token is checked against its view before the fast path and routing
    app.add_middleware(EmbedGuard)
    install_metrics(app)  # last: its middleware is the outermost, counting every answer
    return app
