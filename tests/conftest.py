"""Shared fixtures: isolated ``settings`` for unit tests, the live ``stack`` for integration.

The stack fixture uses ``GRIDLAKE_HOME`` when set (else the default home), so tests
share the stack that ``gridlake up`` started. It reuses a healthy stack untouched, or
starts one and, at session end, stops only the services it started itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.settings import (
    DataNodeSettings,
    GridLakeSettings,
    HdfsSettings,
    KafkaSettings,
    RedisSettings,
    WebSettings,
    load_settings,
)
from ops.bench.isolation import free_ports

logger = logging.getLogger(__name__)

pytest_plugins = ["tests.ml.fixtures"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that rewrite the session's streamed lake after all the others.

    The streamed lake (``tests/jobs/conftest.py::lake_run``) takes minutes to make; the
    read-only checks and the backfills share it, so the backfills must come last.
    """
    items.sort(key=lambda item: item.get_closest_marker("rewrites_shared_lake") is not None)


@pytest.fixture(autouse=True)
def _restore_root_logging() -> Iterator[None]:
    """Give every test the root logger's handlers and level as they were before it.

    A command-line test runs ``configure_logging`` inside ``CliRunner``, whose stderr is
    closed afterwards; a handler left on it breaks every later log call.
    """
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every ``GRIDLAKE_*`` variable for the test (restored afterwards)."""
    for var in list(os.environ):
        if var.startswith("GRIDLAKE_"):
            monkeypatch.delenv(var)


@pytest.fixture
def settings(tmp_path: Path, clean_env: None) -> GridLakeSettings:
    """Settings with a throw-away home and free ports, independent of ``GRIDLAKE_*``."""
    ports = iter(free_ports(12))
    return GridLakeSettings(  # type: ignore[call-arg]
        _env_file=None,
        home=tmp_path / "gridlake",
        kafka=KafkaSettings(bootstrap=f"127.0.0.1:{next(ports)}", controller_port=next(ports)),
        hdfs=HdfsSettings(
            namenode_rpc_port=next(ports),
            namenode_http_port=next(ports),
            datanodes=[
                DataNodeSettings(
                    name=f"slave{i}",
                    data_port=next(ports),
                    http_port=next(ports),
                    ipc_port=next(ports),
                )
                for i in (1, 2)
            ],
        ),
        redis=RedisSettings(url=f"redis://127.0.0.1:{next(ports)}/0"),
        web=WebSettings(port=next(ports)),
    )


def stack_settings() -> GridLakeSettings:
    """Settings of the shared stack (``GRIDLAKE_HOME`` or the default home)."""
    home = os.environ.get("GRIDLAKE_HOME")
    return load_settings(home=Path(home)) if home else load_settings()


@pytest.fixture(scope="session")
def stack() -> Iterator[GridLakeSettings]:
    """The running local stack's settings; starts it when it is not healthy."""
    from infra.stack.manager import Stack

    settings = stack_settings()
    st = Stack(settings)
    started: list[str] = []
    if not st.healthy():
        result = st.up()  # waits on every readiness check, no sleeps
        started = result.started
        logger.info("test session started: %s", started)
    yield settings
    try:
        _assert_fully_replicated(st)
    finally:
        if started:
            Stack(settings).down(only=started)


def _assert_fully_replicated(st: Any, wait_s: float = 30.0) -> None:
    """Every block the session's writers left on HDFS has its replicas (issue 23).

    A writer that ignores ``settings.hdfs.replication`` (the Hadoop client's default is 3)
    leaves blocks under-replicated for good on the stack's DataNodes; a block closed a
    moment ago may still wait for its last replica, hence the short wait.
    """
    deadline = time.monotonic() + wait_s
    while True:
        under = int(st.namenode.state().get("UnderReplicatedBlocks", 0))
        if under == 0 or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert under == 0, f"{under} HDFS blocks under-replicated after the tests (a writer " \
        "did not take settings.hdfs.replication)"
