"""The FastAPI application: ADS indicators served from the Redis serving copy."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api.models import decode_row, row_model
from infra.settings import GridLakeSettings, load_settings
from lakehouse.contracts.serving import KEY_SEPARATOR, index_key, serving_key_prefix
from lakehouse.contracts.tables import ADS_METER_ENERGY_15MIN

log = logging.getLogger(__name__)

EnergyRow = row_model(ADS_METER_ENERGY_15MIN)


class EnergySeries(BaseModel):
    """15-minute energy of one meter over a time range."""

    device_id: str
    start: datetime
    end: datetime
    rows: list[EnergyRow]  # type: ignore[valid-type]


class Health(BaseModel):
    """Liveness or readiness with per-dependency detail."""

    status: str
    checks: dict[str, str] = {}


def _ms(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


def create_app(settings: GridLakeSettings | None = None) -> FastAPI:
    """Build the application; settings default to the environment's."""
    cfg = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = cfg
        app.state.redis = aioredis.from_url(cfg.redis.url, decode_responses=True)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="GridLake API",
        version="0.1.0",
        description="Indicators of the GridLake lakehouse for grid operators.",
        lifespan=lifespan,
    )

    @app.get("/api/v1/health", response_model=Health, tags=["ops"])
    async def health() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/api/v1/ready", response_model=Health, tags=["ops"])
    async def ready(request: Request) -> Any:
        """Readiness: every dependency answers."""
        checks: dict[str, str] = {}
        try:
            await request.app.state.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["redis"] = f"down: {exc}"
        ok = all(v == "ok" for v in checks.values())
        if not ok:
            return JSONResponse(
                status_code=503, content=Health(status="degraded", checks=checks).model_dump()
            )
        return Health(status="ok", checks=checks)

    @app.get(
        "/api/v1/meters/{device_id}/energy/15min",
        response_model=EnergySeries,
        tags=["indicators"],
        summary="15-minute import energy of a meter",
    )
    async def meter_energy_15min(
        request: Request,
        device_id: Annotated[str, Path(min_length=1, max_length=64, examples=["MTR-000001"])],
        start: Annotated[datetime, Query(description="Inclusive start (ISO 8601, UTC)")],
        end: Annotated[datetime, Query(description="Exclusive end (ISO 8601, UTC)")],
    ) -> EnergySeries:
        """Rows of ``ads_meter_energy_15min`` for one meter with window_start in [start, end)."""
        if _ms(end) <= _ms(start):
            raise HTTPException(status_code=422, detail="end: must be after start")
        r = request.app.state.redis
        prefix = serving_key_prefix(cfg.redis.key_prefix, ADS_METER_ENERGY_15MIN)
        members = await r.zrangebyscore(
            index_key(cfg.redis.key_prefix, ADS_METER_ENERGY_15MIN), _ms(start), _ms(end) - 1
        )
        mine = [m for m in members if m.split(KEY_SEPARATOR, 1)[0] == device_id]
        rows: list[dict[str, Any]] = []
        if mine:
            pipe = r.pipeline(transaction=False)
            for m in mine:
                pipe.hgetall(prefix + m)
            for raw in await pipe.execute():
                if raw:
                    rows.append(decode_row(ADS_METER_ENERGY_15MIN, raw))
        rows.sort(key=lambda row: row["window_start"])
        return EnergySeries(device_id=device_id, start=start, end=end, rows=rows)

    return app
