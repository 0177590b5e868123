"""Liveness, readiness (every dependency), table freshness and the role table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.context import Ctx, optional_principal, require
from api.datasets import DATASETS
from api.security import ROLE_PERMISSIONS, Perm, Principal, Role
from infra.lake import LakeError, LakeNotFound, lake_path, last_instant
from infra.serving_store import ServingUnavailable
from lakehouse.contracts.tables import TABLES
from lakehouse.time import from_ms

router = APIRouter(tags=["ops"])

#: Dependencies without which the API cannot do its job (readiness fails: 503).
REQUIRED = ("database", "redis", "kafka")
#: Roles shown why a dependency is down; anyone else sees ``ok`` or ``unavailable`` (error
#: text names hosts, paths and versions).
READY_DETAIL_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})


class Health(BaseModel):
    """Liveness or readiness with per-dependency detail."""

    status: str = Field(examples=["ok"])
    checks: dict[str, str] = Field(default_factory=dict, examples=[{
        "database": "ok", "redis": "ok", "kafka": "ok (3118 devices)", "lake": "ok",
        "events": "ok", "ml": "down: ConnectError"}])
    required: list[str] = Field(default_factory=list)


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """The process answers (no dependency is checked)."""
    return Health(status="ok")


async def _check(fn: Callable[[], Awaitable[str]], timeout: float) -> str:
    try:
        return await asyncio.wait_for(fn(), timeout)
    except TimeoutError:
        return f"down: no answer in {timeout:.1f} s"
    except Exception as err:  # noqa: BLE001 - any failure is reported, never raised
        return f"down: {type(err).__name__}: {err}"


@router.get("/ready", response_model=Health, summary="Readiness of every dependency",
            responses={503: {"model": Health, "description": "A required dependency is down"}})
async def ready(
    c: Ctx, who: Annotated[Principal | None, Depends(optional_principal)],
) -> Any:
    """Check each dependency.

    Database, Redis (serving copy), Kafka (device catalog), the lake (WebHDFS), the
    change-event subscription and the ML service.

    ``status`` is ``ok`` when every check passes, else ``degraded``. HTTP 503 when one of
    the required dependencies (database, Redis, Kafka) is down: queries still answer from
    the lake while Redis is down, but slower. Each check reads ``ok`` or ``unavailable``;
    with the token of an administrator or operator it says why (``down: <error>``) and
    what was found (``ok (3118 devices)``).
    """
    async def redis() -> str:
        await c.serving.ping()
        return "ok"

    async def database() -> str:
        await asyncio.to_thread(c.users.ping)
        return "ok"

    async def kafka() -> str:
        if c.catalog.error:
            return f"down: {c.catalog.error}"
        return f"ok ({len(c.catalog)} devices)" if c.catalog.loaded else "down: loading"

    async def lake() -> str:
        root = c.settings.hdfs.lake_root
        found = await asyncio.to_thread(c.lake.fs.status, root)
        return "ok" if found is not None else f"ok (no {root} yet)"

    async def events() -> str:
        return "ok" if c.hub.listening else f"down: {c.hub.error}"

    async def ml() -> str:
        resp = await c.ml.get("/health", timeout=2.0)
        return "ok" if resp.status_code == 200 else f"down: HTTP {resp.status_code}"

    names = ("database", "redis", "kafka", "lake", "events", "ml")
    fns = (database, redis, kafka, lake, events, ml)
    results = await asyncio.gather(*(_check(f, 3.0) for f in fns))
    checks = dict(zip(names, results, strict=True))
    ok = all(v.startswith("ok") for v in checks.values())
    if who is None or who.role not in READY_DETAIL_ROLES:
        checks = {n: "ok" if v.startswith("ok") else "unavailable" for n, v in checks.items()}
    body = Health(status="ok" if ok else "degraded", checks=checks, required=list(REQUIRED))
    if any(not checks[n].startswith("ok") for n in REQUIRED):
        return JSONResponse(status_code=503, content=body.model_dump())
    return body


class ServingFreshness(BaseModel):
    """What the serving copy holds of a dataset."""

    dataset: str
    rows: int | None = Field(description="Rows in the serving copy (null: Redis down).")
    first: datetime | None = Field(description="Oldest time served from Redis; older ranges "
                                   "are read from the lake.")
    last: datetime | None = Field(description="Newest time in the serving copy.")
    generation: int = Field(description="Change events seen by this worker (cache "
                            "generation).")


class TableFreshness(BaseModel):
    """Last commit of a lake table."""

    table: str
    layer: str
    last_commit: datetime | None = Field(description="Completion of the newest data commit.")
    age_s: float | None = Field(description="Seconds since then.")
    state: str = Field(description="ok, missing (no table yet) or unavailable.")


class Freshness(BaseModel):
    """Freshness of every table: the serving copy and the lake."""

    checked: datetime
    serving: list[ServingFreshness]
    lake: list[TableFreshness]


def _instant_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text[:17].ljust(17, "0"), "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)


_FRESHNESS_TTL_S = 5.0
_lake_cache: dict[str, tuple[float, list[TableFreshness]]] = {}


@router.get("/freshness", response_model=Freshness, summary="Freshness of each table")
async def freshness(
    c: Ctx, who: Annotated[Principal, Depends(require(Perm.READ_INDICATORS))],
) -> Freshness:
    """Freshness of the serving copy and of every lake table.

    For each served dataset: rows and time span in Redis. For every lake table (all
    layers): when its newest data commit completed and how long ago (lake figures are
    cached for 5 s).
    """
    serving: list[ServingFreshness] = []
    rows: int | None
    first: int | None
    last: int | None
    for ds in DATASETS.values():
        try:
            cov = await c.serving.coverage(ds.table, max_age_s=0)
            rows, first, last = cov.rows, cov.first_ms, cov.last_ms
        except ServingUnavailable:
            rows = first = last = None
        serving.append(ServingFreshness(
            dataset=ds.name, rows=rows, first=None if first is None else from_ms(first),
            last=None if last is None else from_ms(last),
            generation=c.hub.generations.get(ds.name, 0)))
    root = c.settings.hdfs.lake_root
    hit = _lake_cache.get(root)
    if hit is None or time.monotonic() - hit[0] > _FRESHNESS_TTL_S:
        lake = await asyncio.to_thread(_lake_freshness, c)
        _lake_cache[root] = (time.monotonic(), lake)
    else:
        lake = hit[1]
    now = datetime.now(UTC)
    lake = [t.model_copy(update={"age_s": round((now - t.last_commit).total_seconds(), 1)})
            if t.last_commit else t for t in lake]
    return Freshness(checked=now, serving=serving, lake=lake)


def _lake_freshness(c: Any) -> list[TableFreshness]:
    out: list[TableFreshness] = []
    for t in TABLES:
        base = lake_path(c.settings, t.layer, t.name)
        try:
            inst = last_instant(c.lake.fs, base)
            done = _instant_time(inst.completed or inst.requested) if inst else None
            out.append(TableFreshness(table=t.name, layer=t.layer, last_commit=done,
                                      age_s=None, state="ok"))
        except LakeNotFound:
            out.append(TableFreshness(table=t.name, layer=t.layer, last_commit=None,
                                      age_s=None, state="missing"))
        except LakeError:
            out.append(TableFreshness(table=t.name, layer=t.layer, last_commit=None,
                                      age_s=None, state="unavailable"))
    return out


class RoleInfo(BaseModel):
    """A role and what it may do."""

    role: str
    permissions: list[str]


@router.get("/roles", response_model=list[RoleInfo], summary="Roles and their permissions")
async def roles(
    who: Annotated[Principal, Depends(require(Perm.READ_INDICATORS))],
) -> list[RoleInfo]:
    """The documented role → permission table (any signed-in user may read it)."""
    return [RoleInfo(role=r.value, permissions=sorted(p.value for p in perms))
            for r, perms in ROLE_PERMISSIONS.items()]
