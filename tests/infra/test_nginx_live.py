"""Nginx started by the stack manager in front of a running API (integration).

A home of the test's own whose Redis, HDFS and Kafka are the shared stack's (unmanaged
here), so ``Stack.up()`` starts exactly one process: Nginx, on a free port, serving a
built-looking app (an ``index.html`` and a hashed asset in a temporary ``web.dist_dir``)
and proxying to an API served in this process. Checked through Nginx: the page, the
history fallback, gzip and cache headers, the frame-ancestors of ``/embed/*`` and of the
rest, the API under ``/api`` (both path forms), the event stream arriving unbuffered, an
embed token's limits, and the "not built" page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.embed import NOT_ALLOWED, embed_secret, sign
from infra.settings import GridLakeSettings
from infra.stack.manager import Stack
from ops.bench.isolation import free_ports
from tests.api.conftest import ADMIN_PASSWORD, api_settings
from tests.conftest import stack_settings

pytestmark = pytest.mark.integration

PORTAL = "https://portal.example.com"
ASSET = "assets/index-3f9a1c.js"
SCRIPT = "export const answer = 42;\n" * 200


@dataclass
class Web:
    """Nginx in front of the test's API."""

    url: str
    settings: GridLakeSettings
    dist: Path


def _serve_api(cfg: GridLakeSettings) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host=cfg.api.host,
                                           port=cfg.api.port, log_level="warning",
                                           lifespan="on", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="api-behind-nginx", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "API did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    """Nginx (started by ``Stack.up``) and an API behind it.

    The shared stack's Redis, HDFS and Kafka must be running; its own Nginx is neither
    needed nor started (not the ``stack`` fixture, which would start it on the default
    port).
    """
    stack = stack_settings()
    down = [s for s in Stack(stack).status() if not s.healthy and s.name != "nginx"]
    assert not down, f"the local stack is not running ({down}): `gridlake up`"
    root = tmp_path_factory.mktemp("nginx-live")
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>GridLake</title><div id=app>"
                                     "</div>\n")
    (dist / ASSET).write_text(SCRIPT)
    web_port, api_port = free_ports(2)
    base = stack.model_copy(update={
        "jars_dir": stack.jars,
        "redis": stack.redis.model_copy(update={"managed": False}),
        "hdfs": stack.hdfs.model_copy(update={"managed": False}),
        "kafka": stack.kafka.model_copy(update={"managed": False}),
        "api": stack.api.model_copy(update={"port": api_port}),
        "web": stack.web.model_copy(update={
            "port": web_port, "dist_dir": dist, "embed_allowed_origins": [PORTAL]}),
    })
    cfg = api_settings(base, root / "home")
    st = Stack(cfg)
    result = st.up(timeout_s=60)
    assert result.started == ["nginx"], result.started
    try:
        yield from _with_api(cfg, dist)
    finally:
        assert st.down() == ["nginx"]
        assert st.nginx.pid() is None


def _with_api(cfg: GridLakeSettings, dist: Path) -> Iterator[Web]:
    for _ in _serve_api(cfg):
        yield Web(cfg.web.base_url, cfg, dist)


def test_status_lists_nginx_healthy(web: Web) -> None:
    row = next(s for s in Stack(web.settings).status() if s.name == "nginx")
    assert row.healthy and row.pid is not None and row.address == web.url
    assert row.detail == "serving the dashboard"


def test_page_history_fallback_and_headers(web: Web) -> None:
    for path in ("/", "/index.html", "/regions/R1/feeders/FDR-0001"):
        r = httpx.get(web.url + path)
        assert r.status_code == 200 and "<div id=app>" in r.text, path
        assert r.headers["cache-control"] == "no-cache"
        assert r.headers["content-security-policy"] == "frame-ancestors 'self'"
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_assets_are_immutable_and_gzipped(web: Web) -> None:
    r = httpx.get(f"{web.url}/{ASSET}", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.text == SCRIPT  # httpx decodes the gzip
    assert r.headers["content-encoding"] == "gzip"
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    # a missing asset is a 404 (never the page), and not cached for a year
    r = httpx.get(f"{web.url}/assets/index-missing.js")
    assert r.status_code == 404 and "cache-control" not in r.headers


def test_embed_pages_may_be_framed_by_the_portal_only(web: Web) -> None:
    r = httpx.get(f"{web.url}/embed/load_curve", params={"token": "x"})
    assert r.status_code == 200 and "<div id=app>" in r.text
    assert r.headers["content-security-policy"] == f"frame-ancestors 'self' {PORTAL}"
    assert "x-frame-options" not in r.headers
    assert httpx.get(web.url + "/").headers["content-security-policy"] == \
        "frame-ancestors 'self'"


def _admin(web: Web) -> dict[str, str]:
    r = httpx.post(f"{web.url}/api/v1/auth/login",
                   json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_api_through_nginx(web: Web) -> None:
    r = httpx.get(f"{web.url}/api/v1/health", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["status"] == "ok"
    # another /api/<path> reaches the API as /<path>
    r = httpx.get(f"{web.url}/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["info"]["title"] == "GridLake API"
    assert r.headers["content-encoding"] == "gzip"
    roles = httpx.get(f"{web.url}/api/v1/roles", headers=_admin(web))
    assert roles.status_code == 200 and {x["role"] for x in roles.json()} >= {"admin"}
    # identity headers meant for the ML service are not passed on from browsers
    assert httpx.get(f"{web.url}/ml/models").status_code == 401


def test_event_stream_arrives_unbuffered(web: Web) -> None:
    headers = {**_admin(web), "Accept-Encoding": "gzip"}
    t0 = time.monotonic()
    with httpx.stream("GET", f"{web.url}/api/v1/feed", headers=headers,
                      timeout=httpx.Timeout(10.0)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in r.headers
        first = ""
        for line in r.iter_lines():  # the stream never ends: the first event must come
            first += line + "\n"
            if line == "" and "event:" in first:
                break
        assert "event: status" in first and '"serving"' in first, first
    assert time.monotonic() - t0 < 8


def test_embed_token_through_nginx(web: Web) -> None:
    key = embed_secret(web.settings)
    tok = sign(key, "overview", {}, regions=["R1"], ttl_s=60, subject="portal-user")
    h = {"Authorization": f"Bearer {tok}"}
    assert httpx.get(f"{web.url}/api/v1/freshness", headers=h).status_code == 200
    r = httpx.get(f"{web.url}/api/v1/users", headers=h)
    assert r.status_code == 403 and r.json()["detail"] == NOT_ALLOWED
    assert httpx.get(f"{web.url}/api/api/v1/jobs", headers=h).status_code == 403
    assert httpx.delete(f"{web.url}/api/v1/freshness", headers=h).status_code == 403


def test_not_built_page_until_the_app_exists(web: Web) -> None:
    index = web.dist / "index.html"
    moved = web.dist / "index.html.bak"
    index.rename(moved)
    try:
        for path in ("/", "/embed/overview"):
            r = httpx.get(web.url + path)
            assert r.status_code == 503 and "not built" in r.text and "npm ci" in r.text
        assert httpx.get(f"{web.url}/api/v1/health").status_code == 200
    finally:
        moved.rename(index)
    assert httpx.get(web.url + "/").status_code == 200
