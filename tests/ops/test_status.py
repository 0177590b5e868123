"""``gridlake status``: every part of the platform, with what to do when one is down."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.settings import GridLakeSettings
from ops.cli.main import app
from ops.status import ml_part, platform_status

PARTS = {"redis", "namenode", "datanode-slave1", "datanode-slave2", "kafka", "nginx",
         "stream", "api", "ml", "simulator"}


class _Stub:
    """A one-path JSON HTTP server on a free port (a stand-in API or ML service)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        answers_ = answers

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = json.dumps(answers_.get(self.path, {})).encode()
                self.send_response(200 if self.path in answers_ else 404)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Any]:
    made: list[_Stub] = []

    def make(answers: dict[str, Any]) -> _Stub:
        made.append(_Stub(answers))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _with_ports(settings: GridLakeSettings, api: int, ml: int) -> GridLakeSettings:
    return settings.model_copy(update={
        "api": settings.api.model_copy(update={"port": api}),
        "ml": settings.ml.model_copy(update={"port": ml}),
        "flink": settings.flink.model_copy(update={"rest_port": ml}),  # answers 404: no job
    })


def test_every_part_is_listed_and_a_stopped_platform_says_what_to_do(
    settings: GridLakeSettings, stub: Any
) -> None:
    closed = stub({})
    port = closed.port
    closed.close()  # nothing listens there any more
    parts = {p.name: p for p in platform_status(_with_ports(settings, port, port), 0.5)}
    assert set(parts) == PARTS
    assert not any(p.healthy for p in parts.values())
    assert "make run" in parts["ml"].detail
    assert "gridlake stream start" in parts["stream"].detail
    assert "make run" in parts["simulator"].detail
    assert "gridlake api start" in parts["api"].detail


def test_ml_service_without_a_model_says_how_to_train_one(
    settings: GridLakeSettings, stub: Any
) -> None:
    empty = stub({"/health": {"status": "ok", "active_model": None}})
    part = ml_part(_with_ports(settings, empty.port, empty.port))
    assert not part.healthy
    assert "gridlake ml train" in part.detail
    active = stub({"/health": {"status": "ok", "active_model": "ess-20260101-abc"}})
    part = ml_part(_with_ports(settings, active.port, active.port))
    assert part.healthy and "ess-20260101-abc" in part.detail


def test_status_json_shows_the_api_readiness(
    settings: GridLakeSettings, stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = stub({"/api/v1/ready": {"status": "degraded",
                                  "checks": {"redis": "ok", "ml": "unavailable"}}})
    s = _with_ports(settings, api.port, api.port)
    monkeypatch.setenv("GRIDLAKE_HOME", str(s.home))
    monkeypatch.setenv("GRIDLAKE_API__PORT", str(api.port))
    monkeypatch.setenv("GRIDLAKE_ML__PORT", str(api.port))
    monkeypatch.setenv("GRIDLAKE_KAFKA__BOOTSTRAP", s.kafka.bootstrap)
    monkeypatch.setenv("GRIDLAKE_HDFS__NAMENODE_HTTP_PORT", str(s.hdfs.namenode_http_port))
    monkeypatch.setenv("GRIDLAKE_REDIS__URL", s.redis.url)
    monkeypatch.setenv("GRIDLAKE_WEB__PORT", str(s.web.port))
    res = CliRunner().invoke(app, ["status", "--json", "--timeout", "0.5"])
    assert res.exit_code == 1  # the stack is down
    parts = {p["name"]: p for p in json.loads(res.stdout)}
    assert set(parts) == PARTS
    assert parts["api"]["healthy"] is True
    assert parts["api"]["detail"] == "ready: degraded (ml down)"
    assert parts["ml"]["healthy"] is False


def test_the_api_probe_imports_no_web_stack() -> None:
    """The API probe reads the API's pid file through ``api.service``; importing FastAPI,
    SQLAlchemy and the routes with it cost `gridlake status` 4 s on a busy machine."""
    import subprocess
    import sys

    from infra.settings import REPO_ROOT

    heavy = ("fastapi", "sqlalchemy", "starlette", "prometheus_client", "kafka")
    code = ("import sys, api.service, ops.status; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
