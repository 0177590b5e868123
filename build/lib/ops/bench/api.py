"""``gridlake bench --only api``: latency and throughput of typical queries.

An isolated run (own topics and Redis prefix) is filled with a month of synthetic daily
indicators and a week of load curves for a fleet of transformers (written with the
protocol the streaming job's Redis sink runs, :class:`infra.serving_store.ServingWriter`)
and its device registry. The API runs as deployed (gunicorn, ``api.workers`` uvicorn
workers, its own database); a load generator in a second process
(:mod:`ops.bench.loadgen`) runs closed-loop clients at 1, 16 and 64 concurrent
connections against:

* ``floor``: a raw Redis GET from the load generator (one Redis round trip, no HTTP);
* ``http``: ``GET /api/v1/health`` (the HTTP stack alone: uvicorn, routing, no work);
* ``hit``: typical queries answered from the response cache (the steady state of a
  dashboard: the same questions until new data lands);
* ``miss``: the same queries made unique, so every one reads the serving copy and renders.

The queries: a transformer's daily indicators over a week, its load curve for a day, the
transformer loading ranking over a week, a page of a dataset for one transformer.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import time
import uuid
from typing import Any

from api import service
from infra.kafka_client import Publisher
from infra.serving_store import ServingWriter, connect
from infra.settings import REPO_ROOT, GridLakeSettings
from lakehouse.contracts.messages import DEVICE_REGISTRY
from lakehouse.contracts.registry import table as table_of
from lakehouse.contracts.tables import (
    ADS_LOAD_CURVE,
    ADS_LOAD_DAILY,
    ADS_TRANSFORMER_DAILY,
    SERVING_SCORE,
)
from lakehouse.time import DAY_MS, dt_of, format_time_ms
from ops.bench.isolation import free_port, isolated_run

log = logging.getLogger(__name__)

LEVELS = (1, 16, 64)


def _fleet(n_tx: int, regions: int) -> list[dict[str, Any]]:
    """Registry records: substations, feeders and transformers over ``regions`` regions."""
    now = int(time.time() * 1000)
    base = {"ts": now, "version": 1, "change_type": "create", "model": "B", "status":
            "in_service", "manufacturer": "Bench", "serial_number": "SN",
            "install_date": "2020-01-01", "latitude": 31.0, "longitude": 121.0}
    recs: list[dict[str, Any]] = []
    for r in range(regions):
        region = f"R{r + 1}"
        sub = f"SUB-{r + 1}"
        recs.append({**base, "device_id": sub, "device_type": "substation",
                     "region_id": region, "parent_id": region})
        fdr = f"F-{r + 1}"
        recs.append({**base, "device_id": fdr, "device_type": "feeder", "region_id": region,
                     "parent_id": sub, "substation_id": sub})
    for i in range(n_tx):
        r = i % regions
        recs.append({**base, "device_id": f"TX-{i:05d}", "device_type": "transformer",
                     "region_id": f"R{r + 1}", "parent_id": f"F-{r + 1}",
                     "substation_id": f"SUB-{r + 1}", "feeder_id": f"F-{r + 1}",
                     "rated_power_kva": 400.0})
    return recs


def _rows(n_tx: int, days: int, curve_days: int, day0: int, rng: random.Random
          ) -> dict[str, list[dict[str, Any]]]:
    now = int(time.time() * 1000)
    tx_daily, load_daily, curve = [], [], []
    for i in range(n_tx):
        tid = f"TX-{i:05d}"
        for d in range(days):
            day = day0 + d * DAY_MS
            dt = dt_of(day)
            peak = rng.uniform(50, 130)
            tx_daily.append({
                "transformer_id": tid, "day": day, "loading_rate_pct": peak,
                "avg_loading_pct": peak * 0.6, "overload_minutes": max(0.0, peak - 100) * 3,
                "overloaded": peak > 100, "hot_spot_max_c": 40 + peak / 3,
                "top_oil_max_c": 30 + peak / 4, "aging_hours": 0.1, "loss_of_life_pct": 1e-5,
                "readings": 1440, "updated_ts": now, "dt": dt})
            load_daily.append({
                "entity_type": "transformer", "entity_id": tid, "day": day,
                "energy_import_kwh": peak * 20, "energy_export_kwh": 1.0,
                "avg_load_kw": peak * 0.6 * 4, "peak_load_kw": peak * 4,
                "valley_load_kw": peak, "peak_valley_diff_kw": peak * 3,
                "peak_valley_rate_pct": 75.0, "load_factor_pct": 60.0, "points": 96,
                "updated_ts": now, "dt": dt})
            if d >= days - curve_days:
                for p in range(96):
                    curve.append({
                        "entity_type": "transformer", "entity_id": tid,
                        "window_start": day + p * 900_000, "point": p,
                        "load_kw": rng.uniform(10, 400), "energy_import_kwh": 1.0,
                        "devices": 10, "updated_ts": now, "dt": dt})
    return {ADS_TRANSFORMER_DAILY.name: tx_daily, ADS_LOAD_DAILY.name: load_daily,
            ADS_LOAD_CURVE.name: curve}


def _load(settings: GridLakeSettings, n_tx: int, days: int, curve_days: int,
          day0: int) -> int:
    client = connect(settings.redis.url)
    writer = ServingWriter(client, settings.redis.key_prefix)
    n = 0
    try:
        for name, rows in _rows(n_tx, days, curve_days, day0, random.Random(7)).items():
            t = table_of(name)
            for i in range(0, len(rows), 5000):
                n += writer.upsert(t, SERVING_SCORE[name], rows[i:i + 5000])
    finally:
        client.close()
    return n


def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "ops.bench.loadgen"], input=json.dumps(spec), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=float(spec["seconds"]) + 120, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_benchmark(stack: GridLakeSettings, n_tx: int = 300, days: int = 30,
                  curve_days: int = 7, seconds: float = 8.0,
                  workers: int | None = None) -> dict[str, Any]:
    """Fill an isolated run, start the API on it and measure (see the module docstring)."""
    import httpx
    import redis
    from pydantic import SecretStr

    settings, env = isolated_run(stack)
    day0 = (int(time.time() * 1000) // DAY_MS - days) * DAY_MS
    t0 = time.monotonic()
    rows = _load(settings, n_tx, days, curve_days, day0)
    pub = Publisher.from_settings(settings)
    for rec in _fleet(n_tx, 4):
        pub.send(DEVICE_REGISTRY.topic, rec["device_id"], rec)
    pub.close()
    load_s = time.monotonic() - t0

    home = stack.home / "bench" / f"api-{uuid.uuid4().hex[:6]}"
    password = uuid.uuid4().hex
    port = free_port()
    workers = workers or stack.api.workers
    api_env = {**env, "GRIDLAKE_HOME": str(home), "GRIDLAKE_API__PORT": str(port),
               "GRIDLAKE_API__WORKERS": str(workers), "GRIDLAKE_API__ADMIN_PASSWORD": password,
               "GRIDLAKE_API__RATE_LIMIT_PER_S": "1000000",
               "GRIDLAKE_API__RATE_LIMIT_BURST": "1000000"}
    cfg = settings.model_copy(update={"home": home, "api": settings.api.model_copy(update={
        "port": port, "workers": workers, "admin_password": SecretStr(password)})})
    service.start(cfg, timeout_s=120, env=api_env)
    try:
        headers = service.admin_headers(cfg)
        base = cfg.api.base_url
        time.sleep(3)  # the workers load the device catalog
        end = day0 + days * DAY_MS
        iso = format_time_ms
        week = f"start={iso(end - 7 * DAY_MS)}&end={iso(end)}"
        one_day = f"start={iso(end - DAY_MS)}&end={iso(end)}"
        month = f"start={iso(day0)}&end={iso(end)}"
        rng = random.Random(1)
        ids = [f"TX-{rng.randrange(n_tx):05d}" for _ in range(50)]
        queries = {
            "indicators": [f"{base}/api/v1/entities/transformer/{t}/indicators?grain=1d&{week}"
                           for t in ids],
            "load_curve": [f"{base}/api/v1/entities/transformer/{t}/load-curve?{one_day}"
                           for t in ids],
            "ranking": [f"{base}/api/v1/rankings/transformer_loading?{week}&limit=20"],
            "dataset_page": [f"{base}/api/v1/datasets/transformer_daily?entity_id={t}&{month}"
                             for t in ids],
        }
        mixed = [u for us in queries.values() for u in us]
        for u in mixed:  # warm the cache
            assert httpx.get(u, headers=headers, timeout=30).status_code == 200, u
        floor_keys = [f"{settings.redis.key_prefix}bench:floor:{i}" for i in range(50)]
        client = redis.Redis.from_url(settings.redis.url)
        for floor_key in floor_keys:
            client.set(floor_key, b"x" * 2000)
        client.close()
        results: dict[str, Any] = {
            "transformers": n_tx, "rows_loaded": rows, "load_s": round(load_s, 1),
            "workers": workers, "seconds_per_run": seconds}
        for n in LEVELS:
            floor = _loadgen({"kind": "redis", "redis_url": settings.redis.url,
                              "targets": floor_keys, "concurrency": n, "seconds": seconds})
            http = _loadgen({"kind": "http", "targets": [f"{base}/api/v1/health"],
                             "concurrency": n, "seconds": seconds})
            hit = _loadgen({"kind": "http", "targets": mixed, "headers": headers,
                            "concurrency": n, "seconds": seconds})
            miss = _loadgen({"kind": "http", "targets": mixed, "headers": headers,
                             "unique": True, "concurrency": n, "seconds": seconds})
            for name, res in (("floor", floor), ("http", http), ("hit", hit),
                              ("miss", miss)):
                for k, v in res.items():
                    results[f"c{n}.{name}.{k}"] = v
            log.info("api bench c=%d: floor p99 %.2f ms, hit p99 %.2f ms (%.0f rps), miss "
                     "p99 %.2f ms (%.0f rps)", n, floor["p99_ms"], hit["p99_ms"], hit["rps"],
                     miss["p99_ms"], miss["rps"])
        for name, urls in queries.items():
            res = _loadgen({"kind": "http", "targets": urls, "headers": headers,
                            "unique": True, "concurrency": 1, "seconds": 3})
            results[f"miss_by_query.{name}.p50_ms"] = res["p50_ms"]
            results[f"miss_by_query.{name}.p99_ms"] = res["p99_ms"]
        return results
    finally:
        service.stop(cfg)
        client = redis.Redis.from_url(settings.redis.url)
        for key in client.scan_iter(match=settings.redis.key_prefix + "*", count=5000):
            client.delete(key)
        client.close()
