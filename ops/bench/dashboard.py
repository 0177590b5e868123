"""``gridlake bench --only dashboard``: the overview's requests, direct and through Nginx.

The API benchmark's isolated run (:mod:`ops.bench.api`: a fleet of transformers in four
regions, their daily indicators and load curves) plus the regions' load curves is served
by the API as deployed (gunicorn) and by a private Nginx in front of it (the stack's
configuration, :class:`infra.stack.nginx.NginxService`, on a port of its own). The load
generator (:mod:`ops.bench.loadgen`, 16 closed-loop clients by default) sends the requests
the dashboard's overview makes when it opens (the front end's ``OverviewPage``):

* ``freshness``: ``GET /api/v1/freshness`` (serving and lake freshness per layer);
* ``system_curve``: the regions' 15-minute load curves of the last day (summed into the
  system load curve by the page);
* ``alarms``: the overloaded transformers of the last two days, worst first (the alarm
  list before the event stream adds new ones);

each alone and all three round robin, once to the API's port and once to Nginx's
(``/api/v1/...``), answered from the response cache as a dashboard's repeated requests
are (``freshness`` is never cached). The difference is what Nginx adds.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from api import service
from infra.kafka_client import Publisher
from infra.serving_store import ServingWriter, connect
from infra.settings import GridLakeSettings
from infra.stack.nginx import NginxService
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.registry import table as table_of
from lakehouse.contracts.tables import ADS_LOAD_CURVE, SERVING_SCORE
from lakehouse.time import DAY_MS, dt_of, format_time_ms
from ops.bench.api import _fleet, _load, _loadgen
from ops.bench.isolation import free_ports, isolated_run

log = logging.getLogger(__name__)

#: Regions of the benchmark fleet (``ops.bench.api._fleet``).
REGIONS = 4


def _region_curves(settings: GridLakeSettings, day0: int, days: int) -> int:
    """15-minute load curve rows of every region (what the system load curve sums)."""
    now = int(time.time() * 1000)
    rows = [{"entity_type": "region", "entity_id": f"R{r + 1}",
             "window_start": day0 + d * DAY_MS + p * 900_000, "point": p,
             "load_kw": 5000.0 + 40 * p + 300 * r, "energy_import_kwh": 1250.0,
             "devices": 1000, "updated_ts": now, "dt": dt_of(day0 + d * DAY_MS)}
            for r in range(REGIONS) for d in range(days) for p in range(96)]
    client = connect(settings.redis.url)
    try:
        return ServingWriter(client, settings.redis.key_prefix).upsert(
            table_of(ADS_LOAD_CURVE.name), SERVING_SCORE[ADS_LOAD_CURVE.name], rows)
    finally:
        client.close()


def overview_paths(end_ms: int) -> dict[str, str]:
    """The overview's requests (paths with their query) for data ending at ``end_ms``."""
    iso = format_time_ms
    day = {"start": iso(end_ms - DAY_MS), "end": iso(end_ms)}
    return {
        "freshness": "/api/v1/freshness",
        "system_curve": "/api/v1/datasets/load_curve?" + urlencode({
            **day, "entity_type": "region", "fields": "entity_id,window_start,load_kw",
            "limit": 10000}),
        "alarms": "/api/v1/datasets/transformer_daily?" + urlencode({
            "start": iso(end_ms - 2 * DAY_MS), "end": iso(end_ms),
            "filter": "loading_rate_pct>100", "sort": "-loading_rate_pct", "limit": 20,
            "fields": "transformer_id,day,loading_rate_pct"}),
    }


def run_benchmark(stack: GridLakeSettings, n_tx: int = 300, days: int = 7,
                  seconds: float = 6.0, concurrency: int = 16) -> dict[str, Any]:
    """Fill an isolated run, start the API and Nginx on it and measure both routes."""
    import httpx
    import redis
    from pydantic import SecretStr

    settings, env = isolated_run(stack)
    day0 = (int(time.time() * 1000) // DAY_MS - days) * DAY_MS
    end = day0 + days * DAY_MS
    rows = _load(settings, n_tx, days, min(days, 2), day0) + _region_curves(settings, day0,
                                                                           days)
    pub = Publisher.from_settings(settings)
    for rec in _fleet(n_tx, REGIONS):
        pub.send(DEVICE_REGISTRY.topic, rec["device_id"], rec)
    pub.close()

    home = stack.home / "bench" / f"dashboard-{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    api_port, web_port = free_ports(2)
    api_env = {**env, "GRIDLAKE_HOME": str(home), "GRIDLAKE_API__PORT": str(api_port),
               "GRIDLAKE_API__ADMIN_PASSWORD": password,
               "GRIDLAKE_API__RATE_LIMIT_PER_S": "1000000",
               "GRIDLAKE_API__RATE_LIMIT_BURST": "1000000"}
    cfg = settings.model_copy(update={
        "home": home,
        "api": settings.api.model_copy(update={"port": api_port,
                                               "admin_password": SecretStr(password)}),
        "web": settings.web.model_copy(update={"port": web_port})})
    nginx = NginxService(cfg)
    service.start(cfg, timeout_s=120, env=api_env)
    try:
        nginx.start("")
        nginx.wait_ready(20)
        headers = service.admin_headers(cfg)
        time.sleep(3)  # the workers load the device catalog
        paths = overview_paths(end)
        routes = {"direct": cfg.api.base_url, "nginx": cfg.web.base_url}
        for base in routes.values():  # warm the response cache, check both routes answer
            for p in paths.values():
                r = httpx.get(base + p, headers=headers, timeout=30)
                assert r.status_code == 200, (base + p, r.status_code, r.text[:200])
        results: dict[str, Any] = {"transformers": n_tx, "rows_loaded": rows,
                                   "concurrency": concurrency, "seconds_per_run": seconds,
                                   "api_workers": cfg.api.workers}
        cases = {**{name: [p] for name, p in paths.items()}, "overview_mix": list(paths.values())}
        for case, targets in cases.items():
            for route, base in routes.items():
                res = _loadgen({"kind": "http", "targets": [base + t for t in targets],
                                "headers": headers, "concurrency": concurrency,
                                "seconds": seconds})
                for key in ("p50_ms", "p99_ms", "rps", "errors"):
                    results[f"{case}.{route}.{key}"] = res[key]
            log.info("dashboard bench %s: direct p50 %.2f / p99 %.2f ms, nginx p50 %.2f / "
                     "p99 %.2f ms", case, results[f"{case}.direct.p50_ms"],
                     results[f"{case}.direct.p99_ms"], results[f"{case}.nginx.p50_ms"],
                     results[f"{case}.nginx.p99_ms"])
        return results
    finally:
        nginx.stop()
        service.stop(cfg)
        client = redis.Redis.from_url(settings.redis.url)
        for stale in client.scan_iter(match=settings.redis.key_prefix + "*", count=5000):
            client.delete(stale)
        client.close()
