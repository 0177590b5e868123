"""The service as deployed: gunicorn supervising uvicorn workers."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest
from gunicorn.config import Config

from api import service
from infra.settings import GridLakeSettings
from ops.bench.isolation import free_port
from tests.api.ads_data import World
from tests.api.conftest import ADMIN_PASSWORD, api_settings


def test_command_is_gunicorn_with_uvicorn_workers(settings: GridLakeSettings) -> None:
    settings.api.workers, settings.api.port = 3, 8123
    cmd = service.command(settings)
    assert cmd[1:4] == ["-m", "gunicorn", "api.main:app"]
    assert cmd[cmd.index("--worker-class") + 1] == "uvicorn_worker.UvicornWorker"
    assert cmd[cmd.index("--workers") + 1] == "3"
    assert cmd[cmd.index("--bind") + 1] == f"{settings.api.host}:8123"
    # uvicorn's default would believe X-Forwarded-For from loopback: no one, unless set
    assert cmd[cmd.index("--forwarded-allow-ips") + 1] == ""
    settings.api.trusted_proxies = ["10.0.0.0/8", "::1/128"]
    cmd = service.command(settings)
    assert cmd[cmd.index("--forwarded-allow-ips") + 1] == "10.0.0.0/8,::1/128"


def test_gunicorn_reads_the_empty_list_as_no_trusted_proxy(
        settings: GridLakeSettings) -> None:
    # what the worker hands to uvicorn's ProxyHeadersMiddleware (uvicorn_worker's config)
    cfg = Config()
    args = cfg.parser().parse_args(service.command(settings)[3:])
    cfg.set("forwarded_allow_ips", args.forwarded_allow_ips)
    assert cfg.forwarded_allow_ips == []


@pytest.mark.integration
@pytest.mark.slow
def test_gunicorn_serves_with_two_workers(world: World, tmp_path: Path) -> None:
    cfg = api_settings(world.settings, tmp_path / "home")
    cfg = cfg.model_copy(update={"api": cfg.api.model_copy(update={
        "port": free_port(), "workers": 2})})
    env = {**world.env, "GRIDLAKE_HOME": str(cfg.home),
           "GRIDLAKE_API__PORT": str(cfg.api.port), "GRIDLAKE_API__WORKERS": "2",
           "GRIDLAKE_API__DATABASE_URL": str(cfg.api.database_url),
           "GRIDLAKE_API__ADMIN_PASSWORD": ADMIN_PASSWORD}
    pid = service.start(cfg, timeout_s=90, env=env)
    try:
        master = psutil.Process(pid)
        assert "gunicorn" in " ".join(master.cmdline())
        assert len(master.children()) == 2
        headers = service.admin_headers(cfg)
        base = cfg.api.base_url
        # both workers answer (several requests spread over them), with the run's data
        for _ in range(6):
            r = httpx.get(f"{base}/api/v1/rankings/transformer_loading", headers=headers,
                          params={"start": "2026-03-01", "end": "2026-03-04"}, timeout=10)
            assert r.status_code == 200 and r.json()["rows"][0]["entity_id"] == "TX-2"
        assert httpx.get(f"{base}/api/v1/ready", timeout=10).json()["checks"]["redis"] == "ok"
    finally:
        assert service.stop(cfg)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
