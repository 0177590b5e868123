"""Fixtures of the API tests.

Unit tests get an app on throw-away settings (nothing listens on its Redis or Kafka
ports). Integration tests share one isolated run filled with the scenario's ADS tables
(:mod:`tests.api.ads_data`) and one app on it, with a user per role and region scope.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from infra.settings import GridLakeSettings, RedisSettings
from ops.bench.isolation import free_port
from tests.api import ads_data

T = TypeVar("T")

ADMIN_PASSWORD = "admin-password-for-tests"
PASSWORD = "a-long-enough-password"


def api_settings(base: GridLakeSettings, home: Path, **api: Any) -> GridLakeSettings:
    """``base`` with an API database, secret and admin password of the test's own.

    The rate limit is out of the way (tests make requests faster than any person; the
    tests of the limit set their own).
    """
    values = {
        "database_url": f"sqlite:///{home / 'api.db'}",
        "jwt_secret": SecretStr(f"test-secret-of-{home.name}-0123456789abcdef"),
        "admin_password": SecretStr(ADMIN_PASSWORD),
        "redis_retry_s": 0.5,
        "rate_limit_per_s": 1e6,
        "rate_limit_burst": 1_000_000,
        **api,
    }
    home.mkdir(parents=True, exist_ok=True)
    return base.model_copy(update={
        "home": home, "api": base.api.model_copy(update=values)})


def concurrently(n: int, fn: Callable[[int], T]) -> list[T]:
    """``fn(0)`` … ``fn(n - 1)`` in ``n`` threads released together (real concurrency)."""
    start = threading.Barrier(n)

    def run(i: int) -> T:
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def bearer(token: str) -> dict[str, str]:
    """Authorization header of an access token."""
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, username: str, password: str) -> dict[str, Any]:
    """Sign in; the token pair."""
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@dataclass
class Users:
    """Users of one app, created on first use: ``headers("viewer", ["R1"])``."""

    client: TestClient
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def admin(self) -> dict[str, str]:
        """Headers of the bootstrap administrator (unscoped)."""
        if "admin" not in self._tokens:
            self._tokens["admin"] = login(self.client, "admin", ADMIN_PASSWORD)["access_token"]
        return bearer(self._tokens["admin"])

    def headers(self, role: str, regions: list[str] | None = None) -> dict[str, str]:
        """Headers of a user with ``role`` scoped to ``regions`` (created if needed)."""
        name = f"{role}-{'-'.join(regions or ['all'])}"
        if name not in self._tokens:
            r = self.client.post("/api/v1/users", headers=self.admin, json={
                "username": name, "password": PASSWORD, "role": role,
                "regions": regions or []})
            assert r.status_code in (201, 409), r.text
            self._tokens[name] = login(self.client, name, PASSWORD)["access_token"]
        return bearer(self._tokens[name])


@pytest.fixture
def app_settings(settings: GridLakeSettings, tmp_path: Path) -> GridLakeSettings:
    """Throw-away settings: nothing listens on the Redis or Kafka ports."""
    return api_settings(settings, tmp_path / "home")


@pytest.fixture
def client(app_settings: GridLakeSettings) -> Iterator[TestClient]:
    """An app on :func:`app_settings`."""
    with TestClient(create_app(app_settings)) as c:
        yield c


@pytest.fixture
def users(client: TestClient) -> Users:
    """Users of :func:`client`."""
    return Users(client)


@pytest.fixture(scope="session")
def world(stack: GridLakeSettings) -> ads_data.World:
    """The isolated run with the scenario's ADS tables and registry (loaded once)."""
    return ads_data.load(stack)


@pytest.fixture(scope="session")
def live(world: ads_data.World, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[TestClient]:
    """An app on the loaded run; waits until its device catalog has the registry."""
    cfg = api_settings(world.settings, tmp_path_factory.mktemp("api-live"))
    with TestClient(create_app(cfg)) as c:
        assert c.app.state.ctx.catalog.wait_loaded(60), c.app.state.ctx.catalog.error  # type: ignore[attr-defined]
        deadline = time.monotonic() + 10
        while not c.app.state.ctx.hub.listening and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)
        yield c


@pytest.fixture(scope="session")
def live_users(live: TestClient) -> Users:
    """Users of :func:`live`."""
    return Users(live)


@dataclass
class PrivateRedis:
    """A redis-server this test started (and may kill)."""

    port: int
    proc: subprocess.Popen[bytes] | None
    folder: Path

    @property
    def url(self) -> str:
        """Its URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) it and wait for PING."""
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(  # noqa: S603 - test-local server
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL it (its own pid only)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of this test on a free port."""
    r = PrivateRedis(free_port(), None, tmp_path)
    r.start()
    try:
        yield r
    finally:
        r.kill()


def with_redis(settings: GridLakeSettings, url: str) -> GridLakeSettings:
    """``settings`` pointing at another Redis (same key prefix)."""
    return settings.model_copy(update={"redis": RedisSettings(
        url=url, key_prefix=settings.redis.key_prefix, managed=False)})


def postgres_bin() -> Path | None:
    """Folder of PostgreSQL's server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of this test session in a temporary folder."""

    folder: Path
    port: int
    run_as: list[str]
    bin: Path

    @property
    def url(self) -> str:
        """SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg://gridlake@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True,  # noqa: S603
                       timeout=60)

    def stop(self) -> None:
        """Stop it and remove its folder."""
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m",
                      "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL (initdb + pg_ctl; as user ``postgres`` when run as root)."""
    import pwd
    import tempfile

    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (infra/bootstrap.sh installs it with apt)")
    folder = Path(tempfile.mkdtemp(prefix="gridlake-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        pw = pwd.getpwnam("postgres")
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    pg = PrivatePostgres(folder, free_port(), run_as, bin_dir)
    pg._run(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "gridlake",
            "--auth=trust", "-E", "UTF8", "--no-sync")
    pg._run(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "log"),
            "-w", "-o", f"-p {pg.port} -k {folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off", "start")
    try:
        yield pg
    finally:
        pg.stop()


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread of this process; yields its URL."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
