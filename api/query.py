"""Where the rows of a query come from: serving copy, lake, or both; and the cache.

A range is split at the first time the serving copy holds for the dataset: what lies
before it is read from the Hudi table (:mod:`api.lake_reader`), the rest from Redis
(:class:`infra.serving_store.ServingStore`). While Redis is down, or holds nothing of the
dataset (new, flushed, restarted without its data), the whole range comes from the lake.
Region scope is applied to index members before any hash is read, and to lake rows as
they are decoded. A query for one entity computes its keys from the dataset's grain (no
index scan); a query over many entities scans the index for the range.

Responses are cached in Redis under a key made of the generations of the datasets they
read (:class:`api.events.EventHub`), the request and the caller's region scope; see
:meth:`QueryService.cached`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.catalog import DeviceCatalog
from api.datasets import Dataset
from api.events import EventHub
from api.lake_reader import LakeReader
from api.models import decode_row
from api.output import finish_rows
from api.security import Principal
from infra.serving_store import ServingStore, ServingUnavailable
from infra.settings import GridLakeSettings
from lakehouse.contracts.tables import GRAINS

log = logging.getLogger(__name__)

QUARTER_MS = GRAINS["15min"]


class EntityNotFound(LookupError):
    """An entity neither registered nor present in the data (HTTP 404)."""


@dataclass
class Rows:
    """Rows of one dataset and where they came from."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)
    frontier_ms: int | None = None
    """Start of the newest window the serving copy holds of the dataset (None: unknown)."""


@dataclass
class Rendered:
    """A computed response body."""

    body: str
    media_type: str
    sources: set[str]


async def serving_rows(store: ServingStore, ds: Dataset,
                       members: Iterable[str]) -> list[dict[str, Any]]:
    """The decoded rows of index ``members`` (members whose hash is gone are skipped)."""
    return [decode_row(ds.table, raw) for raw in await store.hashes(ds.table, members)]


async def entity_rows(store: ServingStore, ds: Dataset, entity_type: str, entity_id: str,
                      start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """Rows of one entity in ``[start_ms, end_ms)``, keys computed from the grain."""
    if ds.keyed_by_entity_and_time:
        members = [ds.member(entity_type, entity_id, t) for t in ds.aligned(start_ms, end_ms)]
    else:
        members = [m for m in await store.members(ds.table, start_ms, end_ms)
                   if ds.member_entity(m)[1] == entity_id]
    return await serving_rows(store, ds, members)


class QueryService:
    """Reads datasets for a caller, from the serving copy and the lake."""

    def __init__(self, settings: GridLakeSettings, serving: ServingStore, lake: LakeReader,
                 catalog: DeviceCatalog, hub: EventHub,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.serving = serving
        self.lake = lake
        self.catalog = catalog
        self.hub = hub
        self.cache_prefix = f"{settings.redis.key_prefix}api:cache:"

    # ---------------------------------------------------------------------- scope
    def check_entity(self, who: Principal, entity_type: str, entity_id: str) -> bool:
        """Authorise access to one entity; returns whether the catalog knows it.

        An unregistered entity (e.g. a meter that reports but was never registered) is
        visible to unscoped users only, as its region is unknown.

        Raises:
            EntityNotFound: Unknown to the catalog and the caller is region-scoped.
            Forbidden: Registered in a region outside the caller's scope.

        """
        known, region = self.catalog.entity(entity_type, entity_id)
        if not known:
            if not who.unscoped:
                raise EntityNotFound(f"{entity_type} {entity_id!r} not found")
            return False
        who.require_region(region, f"{entity_type} {entity_id!r}")
        return True

    def member_filter(self, ds: Dataset, who: Principal,
                      entity_types: set[str] | None) -> Callable[[str], bool] | None:
        """A test on index members: entity type wanted and region in scope."""
        if who.unscoped and not entity_types:
            return None
        region_of = self.catalog.region_of

        def ok(member: str) -> bool:
            etype, eid = ds.member_entity(member)
            if entity_types and etype is not None and etype not in entity_types:
                return False
            return who.unscoped or region_of(etype, eid) in who.regions

        return ok

    def row_filter(self, ds: Dataset, who: Principal,
                   entity_types: set[str] | None) -> Callable[[dict[str, Any]], bool] | None:
        """The same test on decoded rows (lake rows, tables without entity in the key)."""
        if who.unscoped and not entity_types:
            return None
        region_of = self.catalog.region_of

        def ok(row: dict[str, Any]) -> bool:
            etype, eid = ds.row_entity(row)
            if etype is None and entity_types:
                dev = self.catalog.get(eid)
                etype = dev.get("device_type") if dev else None
            if entity_types and etype not in entity_types:
                return False
            if who.unscoped:
                return True
            region = row.get(ds.region_field) if ds.region_field else None
            return (region or region_of(etype, eid)) in who.regions

        return ok

    # ----------------------------------------------------------------------- reads
    async def read(self, ds: Dataset, start_ms: int, end_ms: int, who: Principal, *,
                   entity: tuple[str, str] | None = None,
                   entity_types: set[str] | None = None) -> Rows:
        """Rows of ``ds`` in ``[start_ms, end_ms)`` the caller may see.

        Args:
            ds: Dataset.
            start_ms: Inclusive start.
            end_ms: Exclusive end.
            who: The caller (region scope).
            entity: Only this (type, id) (already authorised by :meth:`check_entity`).
            entity_types: Only entities of these types.

        Raises:
            ServingUnavailable: Never: a Redis failure sends the read to the lake.
            LakeReadError: The part of the range that must come from the lake cannot.

        """
        out = Rows()
        lake_until = start_ms
        serving_from = start_ms
        try:
            cov = await self.serving.coverage(ds.table)
            if cov.first_ms is None:  # nothing served (new, flushed or restarted empty)
                lake_until = serving_from = end_ms
            elif cov.first_ms > start_ms:
                lake_until = serving_from = min(end_ms, cov.first_ms)
            out.frontier_ms = cov.last_ms
            if serving_from < end_ms:
                out.rows = await self._serving(ds, serving_from, end_ms, who, entity,
                                               entity_types)
                out.sources.add("serving")
        except ServingUnavailable as err:
            log.debug("%s from the lake: %s", ds.name, err)
            lake_until = end_ms
        if lake_until > start_ms:
            out.rows += await self._lake(ds, start_ms, lake_until, who, entity, entity_types)
            out.sources.add("lake")
        return out

    async def _serving(self, ds: Dataset, start_ms: int, end_ms: int, who: Principal,
                       entity: tuple[str, str] | None,
                       entity_types: set[str] | None) -> list[dict[str, Any]]:
        if entity is not None:
            return await entity_rows(self.serving, ds, entity[0], entity[1], start_ms, end_ms)
        members = await self.serving.members(ds.table, start_ms, end_ms)
        ok = self.member_filter(ds, who, entity_types)
        if ok is not None:
            members = [m for m in members if ok(m)]
        rows = await serving_rows(self.serving, ds, members)
        if ds.entity_type_field is None and len(ds.entity_types) > 1:
            row_ok = self.row_filter(ds, who, entity_types)
            if row_ok is not None:
                rows = [r for r in rows if row_ok(r)]
        return rows

    async def _lake(self, ds: Dataset, start_ms: int, end_ms: int, who: Principal,
                    entity: tuple[str, str] | None,
                    entity_types: set[str] | None) -> list[dict[str, Any]]:
        equals: dict[str, set[str]] = {}
        if entity is not None:
            equals[ds.entity_id_field] = {entity[1]}
            if ds.entity_type_field:
                equals[ds.entity_type_field] = {entity[0]}
        elif entity_types and ds.entity_type_field:
            equals[ds.entity_type_field] = set(entity_types)
        rows = await asyncio.to_thread(self.lake.read, ds, start_ms, end_ms, equals)
        row_ok = None if entity is not None else self.row_filter(ds, who, entity_types)
        return rows if row_ok is None else [r for r in rows if row_ok(r)]

    # ---------------------------------------------------------------------- answers
    def settled_before(self) -> int:
        """The instant the stream's watermark has passed: now − ``flink.watermark_delay``."""
        return int(self.clock() * 1000) - self.settings.flink.watermark_delay_ms

    def complete_before(self, ds: Dataset, frontier_ms: int | None) -> int:
        """Windows ending at or before this instant are complete (not ``partial``).

        A window is complete once the watermark has passed its end (its readings are in,
        bar late ones, which are flagged ``late``) and the stream has written a later
        window (the serving copy's newest window is still filling: in a replay of history
        "now" is far ahead of the data). The second test applies to the streaming job's
        datasets only: a batch job (health) writes whole days.
        """
        settled = self.settled_before()
        if frontier_ms is None or not ds.streamed:
            return settled
        return min(settled, frontier_ms)

    def answer(self, ds: Dataset, got: Rows) -> list[dict[str, Any]]:
        """The rows of ``got`` as answered: rounded, and marked partial (with a grain)."""
        return finish_rows(got.rows, ds.roundings, time_field=ds.time_field,
                           grain_ms=ds.grain_ms,
                           complete_before_ms=self.complete_before(ds, got.frontier_ms))

    # ----------------------------------------------------------------------- cache
    def cache_key(self, path: str, query: list[tuple[str, str]], who: Principal) -> str:
        """Key of a response: worker, request, caller's region scope and watermark quarter.

        ``partial`` marks change when the watermark enters a new quarter hour, data or not.
        """
        scope = "*" if who.unscoped else ",".join(sorted(who.regions))
        quarter = self.settled_before() // QUARTER_MS
        digest = hashlib.sha1(  # noqa: S324 - a cache key, not a security hash
            f"{path}?{sorted(query)}|{scope}|{quarter}".encode()).hexdigest()
        return f"{self.cache_prefix}{self.hub.nonce}:{digest}"

    async def cache_lookup(self, key: str) -> Response | None:
        """The cached response under ``key`` if the data it was computed from is current.

        An entry starts with the datasets it read and their generations then; it is valid
        while those generations have not moved.
        """
        raw = await self.serving.cache_get(key)
        if raw is None:
            return None
        head, _, rest = raw.partition("\n")
        names, _, generation = head.partition(" ")
        try:
            if self.hub.generation_key(names.split(",")) != generation:
                return None
        except KeyError:
            return None
        meta, _, body = rest.partition("\n")
        source, _, media_type = meta.partition(" ")
        return Response(body, media_type=media_type,
                        headers={"X-Cache": "hit", "X-GridLake-Source": source})

    async def cached(self, request: Request, who: Principal, datasets: list[str],
                     compute: Callable[[], Awaitable[Rendered]]) -> Response:
        """The response of ``compute``, from the cache when the data has not changed.

        The generations of ``datasets`` are taken *before* computing: an event arriving
        meanwhile makes the stored entry invalid, never stale. Nothing is cached while the
        change subscription is down, nor an answer read from the lake because Redis was
        down. Hits are usually answered before routing (:mod:`api.fastpath`).
        """
        key = None
        if self.hub.listening and self.serving.available:
            key = self.cache_key(request.url.path, request.query_params.multi_items(), who)
            generation = self.hub.generation_key(datasets)
            hit = await self.cache_lookup(key)
            if hit is not None:
                return hit
        result = await compute()
        source = "+".join(sorted(result.sources)) or "none"
        if key is not None and self.serving.available:
            entry = (f"{','.join(sorted(datasets))} {generation}\n"
                     f"{source} {result.media_type}\n{result.body}")
            await self.serving.cache_set(key, entry, self.settings.api.cache_ttl_s)
        return Response(result.body, media_type=result.media_type,
                        headers={"X-Cache": "miss" if key else "bypass",
                                 "X-GridLake-Source": source})
