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

import json
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from api import service
from infra.kafka_client import Publisher
from infra.serving_store import ServingWriter, connect
from infra.settings import REPO_ROOT, GridLakeSettings
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
#: The dashboard's sources and its soak driver (``web/e2e/soak.mjs``).
WEB = REPO_ROOT / "web"
#: Debian's Chromium (the browser tests' too).
CHROMIUM = Path("/usr/bin/chromium")
#: Samples of the first minute (or tenth of the run) are the page settling, not growth.
SOAK_WARMUP_S = 60.0


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


@dataclass
class Served:
    """The dashboard of an isolated run, served by the API (gunicorn) behind Nginx."""

    settings: GridLakeSettings
    """The isolated run's settings (Redis prefix, topics)."""
    cfg: GridLakeSettings
    """The served API's and Nginx's settings (ports, admin password)."""
    end_ms: int
    """The end of the loaded data (the next 15-minute point starts here)."""
    rows_loaded: int
    password: str


@contextmanager
def served_dashboard(stack: GridLakeSettings, n_tx: int, days: int) -> Iterator[Served]:
    """Fill an isolated run, start the API and Nginx on it; stop and clean up after."""
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
        time.sleep(3)  # the workers load the device catalog
        yield Served(settings, cfg, end, rows, password)
    finally:
        nginx.stop()
        service.stop(cfg)
        client = redis.Redis.from_url(settings.redis.url)
        for stale in client.scan_iter(match=settings.redis.key_prefix + "*", count=5000):
            client.delete(stale)
        client.close()


def run_benchmark(stack: GridLakeSettings, n_tx: int = 300, days: int = 7,
                  seconds: float = 6.0, concurrency: int = 16) -> dict[str, Any]:
    """Fill an isolated run, start the API and Nginx on it and measure both routes."""
    import httpx

    with served_dashboard(stack, n_tx, days) as served:
        cfg, end, rows = served.cfg, served.end_ms, served.rows_loaded
        headers = service.admin_headers(cfg)
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


# --------------------------------------------------------------------------- soak
def heap_slope(samples: list[dict[str, Any]], warmup_s: float = SOAK_WARMUP_S,
               key: str = "heap_bytes") -> float | None:
    """Least-squares slope of ``key`` over time, per minute, after the warm-up.

    Args:
        samples: ``{"t_s": seconds since the first sample, key: value}`` in time order.
        warmup_s: Samples before this time are left out (page settling, caches filling).
        key: The measured value.

    Returns:
        The slope in ``key``'s unit per minute; ``None`` with fewer than 3 samples after
        the warm-up (too few for a trend).

    """
    pts = [(float(s["t_s"]) / 60.0, float(s[key])) for s in samples
           if float(s["t_s"]) >= warmup_s and s.get(key) is not None]
    if len(pts) < 3:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def soak_figures(got: dict[str, Any], points_written: int) -> dict[str, Any]:
    """What ``dashboard_soak`` reports of the browser's samples (``soak.mjs`` RESULT).

    Raises:
        RuntimeError: The browser run failed, threw in the page or took no samples.

    """
    if "failure" in got:
        raise RuntimeError(f"soak browser run failed: {got['failure']}")
    if got.get("errors"):
        raise RuntimeError(f"uncaught errors in the page: {got['errors']}")
    samples: list[dict[str, Any]] = got.get("samples") or []
    if not samples:
        raise RuntimeError("the soak took no samples")
    duration = float(got.get("durationS") or samples[-1]["t_s"])
    warmup = min(SOAK_WARMUP_S, duration / 10)
    heaps = [int(s["heap_bytes"]) for s in samples]
    slope = heap_slope(samples, warmup)
    nodes = heap_slope(samples, warmup, "nodes")
    return {
        "duration_s": duration,
        "sample_s": got.get("sampleS"),
        "samples": len(samples),
        "points_written": points_written,
        "chart_points_before": got.get("pointsBefore"),
        "chart_points_after": got.get("pointsAfter"),
        "heap_first_bytes": heaps[0],
        "heap_last_bytes": heaps[-1],
        "heap_max_bytes": max(heaps),
        "heap_slope_bytes_per_min": None if slope is None else round(slope, 1),
        # the growth an hour at this slope, as a share of the settled heap
        "heap_growth_pct_per_hour": None if slope is None else round(
            100 * slope * 60 / max(1, heaps[min(len(heaps) - 1, 1)]), 2),
        "dom_nodes_slope_per_min": None if nodes is None else round(nodes, 2),
        "heap_samples": [[s["t_s"], s["heap_bytes"]] for s in samples],
    }


def next_points(window_start: int, updated_ms: int) -> list[dict[str, Any]]:
    """Every region's load-curve row of the window starting at ``window_start``.

    The rows have the shape of :func:`_region_curves`' rows (a live point of the chart).

    Raises:
        ValueError: ``window_start`` is not the start of a 15-minute window.

    """
    if window_start % 900_000:
        raise ValueError(f"{window_start} is not the start of a 15-minute window")
    point = (window_start // 900_000) % 96
    return [{"entity_type": "region", "entity_id": f"R{r + 1}", "window_start": window_start,
             "point": point, "load_kw": 5000.0 + 40 * point + 300 * r,
             "energy_import_kwh": 1250.0, "devices": 1000, "updated_ts": updated_ms,
             "dt": dt_of(window_start)} for r in range(REGIONS)]


def soak_options(env: Mapping[str, str] | None = None) -> dict[str, float]:
    """:func:`run_soak`'s timing from the environment.

    ``GRIDLAKE_BENCH_SOAK_S`` (default 600), ``GRIDLAKE_BENCH_SOAK_SAMPLE_S`` (30),
    ``GRIDLAKE_BENCH_SOAK_POINT_S`` (5), in seconds.

    Raises:
        ValueError: A value is not a positive number, or samples are not shorter than
            the soak.

    """
    if env is None:
        env = os.environ
    out: dict[str, float] = {}
    for key, name, default in (("seconds", "GRIDLAKE_BENCH_SOAK_S", 600.0),
                               ("sample_s", "GRIDLAKE_BENCH_SOAK_SAMPLE_S", 30.0),
                               ("point_s", "GRIDLAKE_BENCH_SOAK_POINT_S", 5.0)):
        raw = env.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number of seconds") from None
        if not value > 0:
            raise ValueError(f"{name} must be positive, not {raw}")
        out[key] = value
    if out["sample_s"] >= out["seconds"]:
        raise ValueError("GRIDLAKE_BENCH_SOAK_SAMPLE_S must be shorter than GRIDLAKE_BENCH_SOAK_S")
    return out


def run_soak(stack: GridLakeSettings, seconds: float = 600.0, sample_s: float = 30.0,
             point_s: float = 5.0, n_tx: int = 50, days: int = 2) -> dict[str, Any]:
    """The live overview's JS heap in Chromium while live points arrive (issue 25).

    The dashboard of an isolated run (:func:`served_dashboard`) is opened by
    ``web/e2e/soak.mjs``; once its stream is live, the next 15-minute load-curve point of
    every region is written into the serving copy every ``point_s`` seconds with the
    streaming sink's protocol (:class:`~infra.serving_store.ServingWriter`), which the
    API's feed turns into the SSE events the chart appends. The browser samples the heap
    after a forced garbage collection every ``sample_s`` seconds; the figure is the
    least-squares slope after the warm-up.

    Args:
        stack: The running stack's settings.
        seconds: How long the soak lasts (``GRIDLAKE_BENCH_SOAK_S`` in the harness).
        sample_s: Seconds between heap samples.
        point_s: Seconds between live points.
        n_tx: Transformers of the isolated fleet.
        days: Days of data before the live points.

    Raises:
        RuntimeError: Chromium, node or the built dashboard is missing, or the run failed.

    """
    # lazy: the dashboard build step (npm) only for this benchmark
    from ops.web import build

    node = shutil.which("node")
    if node is None or not CHROMIUM.exists():
        raise RuntimeError("dashboard_soak needs node and /usr/bin/chromium (gridlake setup)")
    built = build(WEB)
    if not (WEB / "dist" / "index.html").exists():
        raise RuntimeError(f"the dashboard is not built: {built.detail}")
    with served_dashboard(stack, n_tx, days) as served:
        env = {**os.environ, "E2E_BASE": served.cfg.web.base_url,
               "E2E_USERS": json.dumps({"admin": ["admin", served.password]}),
               "E2E_CHROMIUM": str(CHROMIUM), "SOAK_S": str(seconds),
               "SOAK_SAMPLE_S": str(sample_s)}
        proc = subprocess.Popen([node, "e2e/soak.mjs"], cwd=WEB, env=env,  # noqa: S603
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready, stop = threading.Event(), threading.Event()
        out: list[str] = []
        written = [0]

        def feed() -> None:
            client = connect(served.settings.redis.url)
            writer = ServingWriter(client, served.settings.redis.key_prefix)
            table = table_of(ADS_LOAD_CURVE.name)
            window = served.end_ms
            try:
                while not stop.wait(point_s):
                    rows = next_points(window, int(time.time() * 1000))
                    written[0] += writer.upsert(table, SERVING_SCORE[ADS_LOAD_CURVE.name], rows)
                    window += 900_000
            finally:
                client.close()

        feeder = threading.Thread(target=feed, name="soak-feed", daemon=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.append(line)
                if line.startswith("READY") and not ready.is_set():
                    ready.set()
                    feeder.start()
                    log.info("dashboard soak: live, %.0f s of points every %.0f s", seconds,
                             point_s)
                elif line.startswith("SAMPLE "):
                    log.info("dashboard soak: %s", line[7:].strip())
            proc.wait(60)
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
            if feeder.is_alive():
                feeder.join(10)
    results = [ln for ln in out if ln.startswith("RESULT ")]
    if not results:
        raise RuntimeError("no result from the soak browser run:\n" + "".join(out)[-3000:])
    figures = soak_figures(json.loads(results[-1][len("RESULT "):]), written[0])
    log.info("dashboard soak: heap %.1f → %.1f MB, slope %s bytes/min",
             figures["heap_first_bytes"] / 1e6, figures["heap_last_bytes"] / 1e6,
             figures["heap_slope_bytes_per_min"])
    return figures
