"""The dashboard in a real browser (Debian's Chromium driven by playwright-core).

The stack under test: the API (uvicorn, on the scenario's isolated run of
:mod:`tests.api.ads_data`) behind a private Nginx of this test (``infra.stack.nginx``,
serving ``web/dist``, proxying ``/api``) — what ``gridlake run`` starts, on free ports.
``web/e2e/run.mjs`` drives the browser; each scenario returns what it saw as JSON and the
assertions are here. The live chart is fed the way the streaming job feeds it: a row of
``ads_load_curve`` written to the serving copy with the sink's protocol
(:class:`~infra.serving_store.ServingWriter`), whose change event the API's feed turns into
an SSE ``value`` event (the Flink job itself is not started: the other tests share the
stack). Screenshots land in the test's folder; ``GRIDLAKE_SCREENSHOTS=1`` also copies the
best ones to ``docs/images/dashboard-*.png``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from api.datasets import DATASETS
from infra.serving_store import ServingWriter
from infra.settings import REPO_ROOT, GridLakeSettings
from infra.stack.nginx import HEALTH_PATH, NginxService, nginx_path
from lakehouse.contracts.serving import row_member
from ops.bench.isolation import free_port
from ops.web import build
from tests.api.ads_data import UPDATED_MS, World
from tests.api.conftest import ADMIN_PASSWORD, PASSWORD, api_settings, served, world  # noqa: F401

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEB = REPO_ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
DOC_IMAGES = REPO_ROOT / "docs" / "images"
#: Screenshots copied to docs/images (test name → doc name).
BEST = {"overview-live": "overview", "drill": "drill", "devices": "devices", "ess": "ess"}
MAX_DOC_IMAGE_BYTES = 250_000


@dataclass
class Site:
    """The dashboard under test."""

    base: str
    api: str
    settings: GridLakeSettings
    users: dict[str, tuple[str, str]]
    out: Path
    portal_port: int


def _wait(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - local test server
                if r.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def site(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:  # noqa: F811
    if not CHROMIUM.exists() or shutil.which("node") is None or nginx_path() is None:
        pytest.skip("chromium, node or nginx missing (gridlake setup installs them)")
    built = build(WEB)
    assert (WEB / "dist" / "index.html").exists(), built.detail
    home = tmp_path_factory.mktemp("web-e2e")
    cfg = api_settings(world.settings, home / "home")
    with served(create_app(cfg)) as api:
        port = int(api.rsplit(":", 1)[1])
        web_port, portal_port = free_port(), free_port()
        nginx_cfg = cfg.model_copy(update={
            "api": cfg.api.model_copy(update={"host": "127.0.0.1", "port": port}),
            "web": cfg.web.model_copy(update={
                "host": "127.0.0.1", "port": web_port, "dist_dir": WEB / "dist",
                "embed_allowed_origins": [f"http://127.0.0.1:{portal_port}"]})})
        svc = NginxService(nginx_cfg)
        svc.prepare("")
        proc = subprocess.Popen(svc.command(""), stdout=subprocess.DEVNULL,  # noqa: S603
                                stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{web_port}"
            _wait(base + HEALTH_PATH)
            admin = _token(api, "admin", ADMIN_PASSWORD)
            users = {"admin": ("admin", ADMIN_PASSWORD)}
            for role, name, regions in (("operator", "e2e-operator", []),
                                        ("analyst", "e2e-analyst", []),
                                        ("viewer", "e2e-viewer", []),
                                        ("operator", "e2e-scoped", ["R1"])):
                r = httpx.post(f"{api}/api/v1/users", headers=_bearer(admin), json={
                    "username": name, "password": PASSWORD, "role": role, "regions": regions})
                assert r.status_code in (201, 409), r.text
                users["scoped" if regions else role] = (name, PASSWORD)
            out = home / "screens"
            yield Site(base, api, cfg, users, out, portal_port)
        finally:
            proc.terminate()
            proc.wait(15)


def _token(api: str, user: str, password: str) -> str:
    r = httpx.post(f"{api}/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _env(site: Site, **extra: Any) -> dict[str, str]:
    env = {**os.environ, "E2E_BASE": site.base, "E2E_OUT": str(site.out),
           "E2E_USERS": json.dumps(site.users), "E2E_CHROMIUM": str(CHROMIUM)}
    env.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    return env


def _result(stdout: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    assert lines, f"no result from the browser run:\n{stdout[-3000:]}"
    got: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    assert "failure" not in got, got["failure"]
    assert got["errors"] == [], f"uncaught errors in the page: {got['errors']}"
    return got


def run(site: Site, scenario: str, timeout: float = 240, **extra: Any) -> dict[str, Any]:
    """Run one scenario of ``web/e2e/run.mjs``; what it saw."""
    done = subprocess.run(["node", "e2e/run.mjs", scenario], cwd=WEB,  # noqa: S607
                          env=_env(site, **extra), capture_output=True, text=True,
                          timeout=timeout, check=False)
    return _result(done.stdout + done.stderr)


def test_each_role_sees_only_its_pages_and_actions(site: Site) -> None:
    got = run(site, "roles")["roles"]
    assert got["admin"]["menu"] == ["overview", "drill", "ess", "health", "images", "quality",
                                    "devices", "jobs", "users"]
    assert got["admin"]["usersPage"] == "shown"
    for role in ("operator", "analyst", "viewer", "scoped"):
        assert "users" not in got[role]["menu"], role
        assert got[role]["usersPage"] == "forbidden", role
    assert got["operator"]["newDeviceButton"] and got["operator"]["launchForm"]
    assert not got["analyst"]["newDeviceButton"] and not got["analyst"]["launchForm"]
    assert "jobs" in got["analyst"]["menu"] and "jobs" not in got["viewer"]["menu"]
    assert not got["viewer"]["newDeviceButton"]
    # what the UI hides, the API refuses
    viewer = _token(site.api, *site.users["viewer"])
    assert httpx.get(f"{site.base}/api/v1/users", headers=_bearer(viewer)).status_code == 403
    assert httpx.get(f"{site.base}/api/v1/jobs", headers=_bearer(viewer)).status_code == 403
    assert httpx.post(f"{site.base}/api/v1/devices", headers=_bearer(viewer),
                      json={}).status_code in (403, 422)


def test_pages_render_and_drill_down_to_a_transformer(site: Site) -> None:
    got = run(site, "pages")
    assert got["pages"]["overview"]["points"] > 0
    for name in ("quality", "ess", "health", "devices", "users", "jobs"):
        assert got["pages"][name]["error"] is None, (name, got["pages"][name])
    # the images page renders its grid or its empty state (never both, never neither),
    # unless it shows the API's error in place
    img = got["pages"]["images"]
    assert img["error"] or (img["cards"] > 0) != img["empty"], img
    path = got["drill"]["path"]
    assert len(path) == 4 and path[0] in ("R1", "R2")
    assert got["drill"]["url"].endswith("/grid/" + "/".join(
        f"{lvl}/{i}" for lvl, i in zip(("region", "substation", "feeder", "transformer"), path,
                                        strict=True)))
    assert got["drill"]["daily"] > 0
    assert "not found" in got["drillError"] and "404" in got["drillError"]
    for shot in ("overview", "drill", "devices", "jobs", "users"):
        assert (site.out / f"{shot}.png").stat().st_size > 10_000, shot


def test_operator_creates_a_device_and_launches_a_backfill(site: Site, world: World,  # noqa: F811
                                                           ) -> None:
    meter = next(r for _, r in sorted(world.registry.items())
                 if r["device_type"] == "meter" and r["region_id"] == "R1")
    new_id = f"MTR-E2E-{int(time.time()) % 100000:05d}"
    fields = ("model", "manufacturer", "serial_number", "install_date", "region_id", "latitude",
              "longitude", "parent_id", "substation_id", "feeder_id", "transformer_id")
    device = {"device_id": new_id, **{k: meter[k] for k in fields if meter.get(k) is not None}}
    got = run(site, "actions", E2E_DEVICE=device,
              E2E_BACKFILL={"start": "2026-03-01", "end": "2026-03-02", "region": "R1"},
              E2E_OTHER_REGION="R2")
    assert got["deviceCreate"] == f"Created {new_id}" and got["deviceListed"]
    admin = _token(site.api, "admin", ADMIN_PASSWORD)
    r = httpx.get(f"{site.api}/api/v1/devices/{new_id}", headers=_bearer(admin))
    assert r.status_code == 200 and r.json()["parent_id"] == meter["parent_id"]
    assert got["backfill"].startswith("Launched "), got["backfill"]
    job_id = got["backfill"].split()[-1]
    job = httpx.get(f"{site.api}/api/v1/jobs/{job_id}", headers=_bearer(admin)).json()
    assert job["request"]["region"] == "R1"
    assert got["scopedRegions"] == ["R1"]
    assert "403" in got["scopedBackfill"] and "R2" in got["scopedBackfill"]
    assert "403" in got["scopedDrill"]


def test_session_end_returns_to_sign_in_and_back(site: Site) -> None:
    got = run(site, "session", E2E_REGION="R1")
    assert "/login?next=%2Fgrid%2Fregion%2FR1" in got["expiredUrl"]
    assert "session has ended" in got["notice"]
    assert got["backAt"].endswith("/grid/region/R1")
    assert "wrong username or password" in got["badLogin"] and "401" in got["badLogin"]


def test_live_chart_gains_a_point_when_a_reading_lands(site: Site, world: World,  # noqa: F811
                                                        ) -> None:
    ds = DATASETS["load_curve"]
    rows = [r for r in world.rows(ds.table.name) if r["entity_type"] == "region"]
    newest = max(r["window_start"] for r in rows)
    # the next 15-minute point of every region, 5 % above the last one
    new_rows = [{**r, "window_start": newest + 900_000, "point": (r["point"] + 1) % 96,
                 "load_kw": round(r["load_kw"] * 1.05, 3), "updated_ts": UPDATED_MS + 30}
                for r in rows if r["window_start"] == newest]
    total = sum(r["load_kw"] for r in new_rows)
    client = redis.Redis.from_url(world.settings.redis.url, decode_responses=True)
    writer = ServingWriter(client, world.settings.redis.key_prefix)
    proc = subprocess.Popen(["node", "e2e/run.mjs", "live"], cwd=WEB,  # noqa: S607
                            env=_env(site, E2E_TOTAL=str(total)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True)
    out: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.append(line)
            if line.startswith("READY"):
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(120), "".join(out)[-3000:]
        assert writer.upsert(ds.table, ds.time_field, new_rows) == len(new_rows)
        proc.wait(120)
        reader.join(10)
        got = _result("".join(out))
    finally:
        if proc.poll() is None:
            proc.kill()
        writer.delete(ds.table, [row_member(ds.table, r) for r in new_rows], None)
        client.close()
    assert got["pointsAfter"] == got["pointsBefore"] + 1
    # the new point is the sum of the regions (whichever of their events came first, the
    # browser waited for the point; the total is checked when every region has arrived)
    assert got["lastAfter"] != got["lastBefore"]
    shown = re.search(r": ([-\d.]+) kW", got["lastTotal"])
    assert shown and abs(float(shown.group(1)) - total) < 0.1, (total, got["lastTotal"])
    assert "Live updates interrupted" in got["banner"] and "reconnecting in" in got["banner"]
    # first view on the local stack (the overview with its data)
    assert got["firstViewMs"] < 2000, got
    assert got["coldSignInToOverviewMs"] < 2000, got
    (site.out / "timings.json").write_text(json.dumps(
        {k: got[k] for k in ("coldLoginMs", "coldSignInToOverviewMs", "coldTransferBytes",
                             "firstViewMs")} | got["navigation"], indent=2))
    _publish_screens(site)


def _publish_screens(site: Site) -> None:
    """Copy the best screenshots to docs/images when asked (GRIDLAKE_SCREENSHOTS=1)."""
    if os.environ.get("GRIDLAKE_SCREENSHOTS") != "1":
        return
    # lazy: Pillow only when the screenshots are published
    from PIL import Image

    DOC_IMAGES.mkdir(parents=True, exist_ok=True)
    for src, name in BEST.items():
        path = site.out / f"{src}.png"
        if not path.exists():
            continue
        dst = DOC_IMAGES / f"dashboard-{name}.png"
        img = Image.open(path).convert("RGB")
        img.quantize(colors=128).save(dst, optimize=True)
        assert dst.stat().st_size <= MAX_DOC_IMAGE_BYTES, dst


def _static_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603 - a local static server of the test
        [shutil.which("python3") or "python3", "-m", "http.server", str(port),
         "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(f"http://127.0.0.1:{port}/portal.html")
    return proc


def test_embed_view_in_iframes_of_allowed_and_other_origins(site: Site) -> None:
    """``/embed/*`` may be framed by the allowed portal origin only (header and browser).

    The token here is JWT-shaped but not signed with the embed secret: the front end shows
    the view it names (and refuses another view, an expired token, none at all) and the
    API refuses its data, which the frame shows in place. Signed tokens and what the API
    lets them read are tested in tests/api/test_embed.py.
    """
    now = int(time.time())
    claims = {"view": "load_curve", "params": {"entity_type": "region", "entity_id": "R1"},
              "regions": ["R1"], "iat": now, "exp": now + 300, "aud": "gridlake-embed",
              "typ": "embed", "sub": "portal-user"}
    token = _unsigned_embed_token(claims)
    embed_url = f"{site.base}/embed/load_curve?token={token}"
    allowed_origin = f"http://127.0.0.1:{site.portal_port}"
    head = httpx.get(embed_url)
    assert head.status_code == 200
    assert head.headers["content-security-policy"] == f"frame-ancestors 'self' {allowed_origin}"
    assert "x-frame-options" not in head.headers
    other = httpx.get(site.base + "/devices")
    assert other.headers["content-security-policy"] == "frame-ancestors 'self'"
    assert other.headers["x-frame-options"] == "SAMEORIGIN"

    portal = site.out.parent / "portal"
    portal.mkdir(parents=True, exist_ok=True)
    (portal / "portal.html").write_text(
        f'<html><body><h3>Utility portal</h3><iframe src="{embed_url}" width="1000" '
        'height="420"></iframe></body></html>')
    stranger_port = free_port()
    servers = [_static_server(portal, site.portal_port), _static_server(portal, stranger_port)]
    try:
        got = run(site, "embed", E2E_PORTALS={
            "allowed": f"{allowed_origin}/portal.html",
            "stranger": f"http://127.0.0.1:{stranger_port}/portal.html",
        }, E2E_EMBED_CHECKS={
            "other_view": f"{site.base}/embed/overview?token={token}",
            "expired": f"{site.base}/embed/load_curve?token="
                       + _unsigned_embed_token({**claims, "exp": now - 10}),
            "no_token": f"{site.base}/embed/load_curve",
            "unsigned": embed_url,
        })
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(10)
    frames = got["frames"]
    assert frames["allowed"]["rendered"] and not frames["allowed"]["refused"], frames
    assert not frames["stranger"]["rendered"] and frames["stranger"]["refused"], frames
    checks = got["embedChecks"]
    assert 'for the view "load_curve"' in checks["other_view"]
    assert "expired" in checks["expired"]
    assert "no valid token" in checks["no_token"]
    assert "401" in checks["unsigned"], checks


def _unsigned_embed_token(claims: dict[str, Any]) -> str:
    """A JWT-shaped token with a wrong signature (the API must refuse it)."""
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"


def test_signed_embed_token_shows_its_view_and_nothing_else(site: Site) -> None:
    """A token signed with the embed secret: its view renders; nothing else is allowed.

    Needs the API's side of signed embedding (``api.embed``); skipped without it.
    """
    embed = pytest.importorskip("api.embed")
    secret = embed.embed_secret(site.settings)
    window = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-03T00:00:00Z"}

    def token(view: str, params: dict[str, str], regions: list[str] | None) -> str:
        return str(embed.sign(secret, view, params, regions=regions, ttl_s=300,
                              subject="portal-user"))

    r1 = token("load_curve", {"entity_type": "region", "entity_id": "R1"}, ["R1"])
    r2 = token("load_curve", {"entity_type": "region", "entity_id": "R2"}, ["R1"])
    tampered = r1[:-2] + ("AA" if not r1.endswith("AA") else "BB")
    got = run(site, "embed", E2E_EMBED_CHECKS={
        "r1": f"{site.base}/embed/load_curve?token={r1}",
        "other_region": f"{site.base}/embed/load_curve?token={r2}",
        "tampered": f"{site.base}/embed/load_curve?token={tampered}",
        "other_view": f"{site.base}/embed/overview?token={r1}",
    })["embedChecks"]
    assert got["r1"] == "rendered", got
    assert "403" in got["other_region"], got
    assert "401" in got["tampered"], got
    assert 'for the view "load_curve"' in got["other_view"], got
    # the API beyond the view: another endpoint, another entity, a write, the ML proxy
    bearer = _bearer(r1)
    q = window
    assert httpx.get(f"{site.base}/api/v1/entities/region/R1/load-curve", params=q,
                     headers=bearer).status_code == 200
    for method, path in (("GET", "/api/v1/entities/region/R2/load-curve"),
                         ("GET", "/api/v1/users"), ("GET", "/api/v1/devices"),
                         ("POST", "/api/v1/devices"), ("GET", "/api/v1/ml/models")):
        r = httpx.request(method, f"{site.base}{path}", params=q, headers=bearer, json=None)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
