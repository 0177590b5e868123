"""``gridlake bench --only api_filter_stall``: whether a worst-case filter stalls the API.

The filter parser once used a regular expression that backtracked quadratically on runs of
spaces, on the event loop: one request with a 12,000-space filter held ``/health`` for 2 s.
This measures ``GET /api/v1/health`` latency on one uvicorn worker: idle; while other
clients keep sending the same query with one short filter (the control: what any busy
client costs); and while they send the worst filters the API accepts
(:data:`api.validation.MAX_FILTERS` filters of :data:`api.output.MAX_FILTER_CHARS`
characters, mostly spaces, each parsed in full). Also the cost of the replaced expression
on the 12,000-space filter, for comparison.

The API runs in this process on throw-away settings (free ports, nothing behind it: the
query itself ends in a 503 after parsing), so it needs no stack.
"""

from __future__ import annotations

import logging
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from api.app import create_app
from api.output import MAX_FILTER_CHARS
from api.validation import MAX_FILTERS
from infra.settings import GridLakeSettings, HdfsSettings, KafkaSettings, RedisSettings
from ops.bench.isolation import free_port, free_ports

log = logging.getLogger(__name__)

#: The filter expression the parser used before (kept here only to measure it).
OLD_FILTER_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*$")
ADMIN_PASSWORD = "bench-admin-password"


def offline_settings(base: GridLakeSettings, home: Path) -> GridLakeSettings:
    """``base`` with a home of its own and every dependency on a free (silent) port."""
    ports = iter(free_ports(5))
    api = base.api.model_copy(update={
        "database_url": f"sqlite:///{home / 'api.db'}",
        "jwt_secret": SecretStr("bench-secret-0123456789abcdef0123456789"),
        "admin_password": SecretStr(ADMIN_PASSWORD), "workers": 1,
        "rate_limit_per_s": 1e6, "rate_limit_burst": 1_000_000,
        "ml_url": f"http://127.0.0.1:{next(ports)}"})
    return base.model_copy(update={
        "home": home, "api": api,
        "kafka": KafkaSettings(bootstrap=f"127.0.0.1:{next(ports)}"),
        "hdfs": HdfsSettings(namenode_rpc_port=next(ports), namenode_http_port=next(ports)),
        "redis": RedisSettings(url=f"redis://127.0.0.1:{next(ports)}/0")})


def stall_filter(length: int, name: str = "a") -> str:
    """``<name>=x<spaces>y`` of ``length`` characters.

    The shape the replaced expression was quadratic on: a run of spaces between two parts
    of the value.
    """
    return f"{name}=x" + " " * (length - len(name) - 3) + "y"


def worst_filters() -> list[str]:
    """The most parsing work one request may ask for (every filter at the length cap)."""
    return [stall_filter(MAX_FILTER_CHARS, "entity_id")] * MAX_FILTERS


def _quantiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100)
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(q[98], 3),
            "max_ms": round(max(ms), 3), "n": len(ms)}


def _health(client: httpx.Client, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get("/api/v1/health")
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def run_benchmark(settings: GridLakeSettings, probes: int = 2000,
                  load_clients: int = 2) -> dict[str, Any]:
    """Health latency idle and under worst-case filters; the old expression's cost."""
    with tempfile.TemporaryDirectory(prefix="gridlake-stall-") as tmp:
        cfg = offline_settings(settings, Path(tmp))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, name="stall-api", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        try:
            return _measure(url, probes, load_clients)
        finally:
            server.should_exit = True
            thread.join(15)


def _measure(url: str, probes: int, load_clients: int) -> dict[str, Any]:
    token = httpx.post(f"{url}/api/v1/auth/login", json={
        "username": "admin", "password": ADMIN_PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    Params = list[tuple[str, str | int | float | bool | None]]
    base: Params = [("start", "2026-03-01"), ("end", "2026-03-02")]
    worst: Params = base + [("filter", f) for f in worst_filters()]
    plain: Params = [*base, ("filter", "entity_id=x")]

    def under_load(params: Params, client: httpx.Client
                   ) -> tuple[list[float], list[float], set[int]]:
        """Health latencies while ``load_clients`` send ``params``; their own latencies."""
        stop = threading.Event()
        loaded: list[float] = []
        statuses: set[int] = set()

        def load() -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                while not stop.is_set():
                    t0 = time.perf_counter()
                    r = c.get("/api/v1/datasets/load_curve", params=params)
                    loaded.append((time.perf_counter() - t0) * 1000)
                    statuses.add(r.status_code)

        workers = [threading.Thread(target=load, daemon=True) for _ in range(load_clients)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        busy = _health(client, probes)
        stop.set()
        for w in workers:
            w.join(30)
        return busy, loaded, statuses

    with httpx.Client(base_url=url, timeout=30) as client:
        _health(client, 200)  # warm up
        idle = _health(client, probes)
        control, control_loaded, _ = under_load(plain, client)
        busy, loaded, statuses = under_load(worst, client)
        rejected = client.get("/api/v1/datasets/load_curve", headers=headers, params={
            "start": "2026-03-01", "end": "2026-03-02", "filter": stall_filter(12_000)})
    t0 = time.perf_counter()
    OLD_FILTER_RE.match(stall_filter(12_000))
    old_s = time.perf_counter() - t0
    result = {
        "health_idle": _quantiles(idle),
        "health_under_one_short_filter": _quantiles(control),
        "one_short_filter_requests": _quantiles(control_loaded),
        "health_under_worst_filters": _quantiles(busy),
        "worst_filter_requests": {**_quantiles(loaded), "statuses": sorted(statuses),
                                  "clients": load_clients},
        "filter_12000_spaces_status": rejected.status_code,
        "old_regex_12000_spaces_s": round(old_s, 3),
    }
    log.info("filter stall: %s", result)
    return result
