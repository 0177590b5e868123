"""Prometheus metrics of the API: ``GET /metrics`` (docs/operations.md lists every series).

Per request (:class:`infra.metrics.RequestMetrics`' middleware, outermost, so cached
answers of the fast path count too): ``gridlake_api_requests_total{method,route,status}`` and
``gridlake_api_request_duration_seconds{method,route}`` by route *template*
(``/api/v1/alarms/{alarm_id}``: bounded label values; an unknown path is ``unmatched``),
``gridlake_api_cache_total{result}`` (the answer cache's ``X-Cache``: hit, miss, bypass)
and ``gridlake_api_reads_total{source}`` (``X-GridLake-Source`` of the answers: serving copy
or lake).

Computed on scrape (:class:`ScrapeGauges`, reused for ``api.metrics_cache_s``; a scrape
waits at most ``api.metrics_timeout_s`` and otherwise sends the previous values while the
refresh goes on): ``gridlake_alarms_open{source,severity}``,
``gridlake_kafka_consumer_lag{group,topic}``, ``gridlake_lake_last_commit_timestamp_seconds
{layer,table}``, ``gridlake_serving_newest_timestamp_seconds{dataset}`` (newest event time
in the serving copy) and ``gridlake_metrics_refresh_timestamp_seconds{part}``.

**Several workers.** gunicorn runs ``api.workers`` processes and a scrape reaches one of
them. :mod:`api.service` starts the server with ``PROMETHEUS_MULTIPROC_DIR`` (an emptied
folder under ``home/run``): prometheus_client then keeps each worker's counters and
histograms in files there and every worker's ``/metrics`` answers the sum over all of
them. Started another way (``uvicorn api.main:app``, tests), the figures are the one
process's.

**Access.** ``/metrics`` is outside ``/api/v1`` and the OpenAPI document. With
``api.metrics_public`` (the default: the API binds loopback) it needs no credentials; else
it wants ``Authorization: Bearer <api.metrics_token>`` (401 without, 404 when no token is
configured). The series hold route names, counts, alarm counts and table names: no row,
user or token.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Message, Scope

from api.datasets import DATASETS
from api.routes.ops import _lake_freshness
from infra.kafka_client import KafkaUnavailableError
from infra.kafka_lag import consumer_lag
from infra.metrics import RequestMetrics
from infra.serving_store import ServingUnavailable
from jobs.streaming.monitor import JOB_SOURCES

log = logging.getLogger(__name__)

#: Environment variable that turns on prometheus_client's multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HTTP = RequestMetrics("gridlake_api", "API")
CACHE = Counter("gridlake_api_cache_total", "Cacheable answers by the answer cache's "
                "verdict (hit, miss, bypass).", ["result"])
READS = Counter("gridlake_api_reads_total", "Answers by where their rows came from "
                "(serving, lake; both count for a split read).", ["source"])


def _answer_headers(scope: Scope, message: Message, route: str) -> None:
    """Count the answer cache's verdict and the rows' source from the response headers."""
    headers = {k.lower(): v for k, v in message.get("headers", [])}
    cache = headers.get(b"x-cache")
    if cache in (b"hit", b"miss", b"bypass"):
        CACHE.labels(cache.decode()).inc()
    source = headers.get(b"x-gridlake-source")
    if source:
        for part in source.decode("latin-1").split("+"):
            if part in ("serving", "lake"):
                READS.labels(part).inc()


class ScrapeGauges:
    """Gauges computed on scrape from the worker's context, with a short cache."""

    def __init__(self, context: Any, alarms: Any) -> None:
        self.context = context
        self.alarms = alarms
        cfg = context.settings.api
        self.cache_s = cfg.metrics_cache_s
        self.timeout_s = cfg.metrics_timeout_s
        self._parts: dict[str, list[Metric]] = {}
        self._stamps: dict[str, float] = {}
        self._done = 0.0
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Recompute when older than the cache; wait at most ``metrics_timeout_s``."""
        if time.monotonic() - self._done < self.cache_s and self._parts:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._compute())
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.timeout_s)
        except TimeoutError:
            log.warning("metrics: gauges not refreshed within %.1f s; sending the previous "
                        "values", self.timeout_s)

    async def _compute(self) -> None:
        # each part is exposed as soon as it is computed: a slow one (Kafka down) does not
        # hold back the others, and keeps its previous values meanwhile
        timeout = self.timeout_s

        async def part(name: str, fn: Callable[[], Awaitable[list[Metric]]]) -> None:
            try:
                self._parts[name] = await fn()
                self._stamps[name] = time.time()
            except Exception as err:  # noqa: BLE001 - one part down must not empty the rest
                log.debug("metrics: %s unavailable: %s", name, err)

        await asyncio.gather(part("alarms", self._alarms), part("serving", self._serving),
                             part("lake", lambda: asyncio.to_thread(self._lake)),
                             part("kafka", lambda: asyncio.to_thread(self._kafka, timeout)))
        self._done = time.monotonic()

    async def _alarms(self) -> list[Metric]:
        counts = await asyncio.to_thread(self.alarms.open_counts)
        g = GaugeMetricFamily("gridlake_alarms_open", "Alarms open or acknowledged (not "
                              "closed), by source and severity.", labels=["source", "severity"])
        for (source, severity), n in sorted(counts.items()):
            g.add_metric([source, severity], n)
        return [g]

    async def _serving(self) -> list[Metric]:
        g = GaugeMetricFamily("gridlake_serving_newest_timestamp_seconds", "Newest event "
                              "time (the time column) held in the serving copy, per dataset.",
                              labels=["dataset"])
        rows = GaugeMetricFamily("gridlake_serving_rows", "Rows in the serving copy, per "
                                 "dataset.", labels=["dataset"])
        for ds in DATASETS.values():
            try:
                cov = await self.context.serving.coverage(ds.table, max_age_s=self.cache_s)
            except ServingUnavailable:
                raise
            if cov.last_ms is not None:
                g.add_metric([ds.name], cov.last_ms / 1000)
            if cov.rows is not None:
                rows.add_metric([ds.name], cov.rows)
        return [g, rows]

    def _lake(self) -> list[Metric]:
        g = GaugeMetricFamily("gridlake_lake_last_commit_timestamp_seconds", "Completion "
                              "of the newest data commit of each lake table.",
                              labels=["layer", "table"])
        for t in _lake_freshness(self.context):
            if t.last_commit is not None:
                g.add_metric([t.layer, t.table], t.last_commit.timestamp())
        return [g]

    def _kafka(self, timeout_s: float) -> list[Metric]:
        g = GaugeMetricFamily("gridlake_kafka_consumer_lag", "Records the streaming job's "
                              "consumer group has not consumed, per topic.",
                              labels=["group", "topic"])
        cfg = self.context.settings
        for source in JOB_SOURCES.values():
            group = source.group_id(cfg)
            try:
                lags = consumer_lag(cfg, group, source.topic_names(cfg), timeout_s)
            except KafkaUnavailableError:
                raise
            for lag in lags:
                if lag.exists:
                    g.add_metric([group, lag.topic], lag.lag)
        return [g]

    def collect(self) -> Iterator[Metric]:
        """The last computed families (prometheus_client collector protocol)."""
        for name in sorted(self._parts):
            yield from self._parts[name]
        refreshed = GaugeMetricFamily("gridlake_metrics_refresh_timestamp_seconds",
                                      "When each part of the scrape-time gauges was last "
                                      "computed (a part missing: its source is down).",
                                      labels=["part"])
        for name, ts in sorted(self._stamps.items()):
            refreshed.add_metric([name], ts)
        yield refreshed


class _Exposed:
    """What one scrape exposes.

    The counters (every worker's in multiprocess mode) and the gauges computed on scrape.
    """

    def __init__(self, gauges: ScrapeGauges | None) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
        if self.gauges is not None:
            yield from self.gauges.collect()


def _allowed(request: Request) -> Response | None:
    """None when the caller may scrape, else the refusal (see the module docstring)."""
    cfg = request.app.state.settings.api
    if cfg.metrics_public:
        return None
    if cfg.metrics_token is None:
        return Response(status_code=404)
    given = request.headers.get("authorization", "")
    expected = f"Bearer {cfg.metrics_token.get_secret_value()}"
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return Response("metrics token required\n", status_code=401,
                    headers={"WWW-Authenticate": "Bearer"})


def install_metrics(app: FastAPI) -> None:
    """Add the request middleware and ``GET /metrics`` to the application."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        refused = _allowed(request)
        if refused is not None:
            return refused
        gauges: ScrapeGauges | None = getattr(request.app.state, "scrape_gauges", None)
        if gauges is not None:
            await gauges.refresh()
        body = await asyncio.to_thread(generate_latest, _Exposed(gauges))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(HTTP.middleware(app, _answer_headers))
