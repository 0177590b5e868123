"""``spark_scope``: a job stops only the Spark session it started (no JVM needed)."""

from __future__ import annotations

from typing import Any

import pytest

from infra import spark as spark_module
from infra.settings import GridLakeSettings


class _Context:
    def __init__(self) -> None:
        self.levels: list[str] = []

    def setLogLevel(self, level: str) -> None:  # noqa: N802 (pyspark's name)
        self.levels.append(level)


class _Session:
    def __init__(self) -> None:
        self.sparkContext = _Context()
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> _Session:
    """One fake session, handed back every time (as ``getOrCreate`` does)."""
    fake = _Session()
    monkeypatch.setattr(spark_module, "spark_session", lambda *a, **k: fake)
    return fake


def _running(monkeypatch: pytest.MonkeyPatch, running: bool) -> None:
    from pyspark import SparkContext

    monkeypatch.setattr(SparkContext, "_active_spark_context", object() if running else None)


def test_a_session_the_scope_started_is_stopped(settings: GridLakeSettings, session: _Session,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _running(monkeypatch, False)
    with spark_module.spark_scope(settings, "t") as got:
        assert got is session and session.stopped == 0
    assert session.stopped == 1
    assert session.sparkContext.levels == ["ERROR"]


def test_a_running_session_is_left_running(settings: GridLakeSettings, session: _Session,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug this prevents: a job "starting" Spark inside a process that already ran it
    stopped the caller's session on exit (the ML lake fixture's, an ML service's)."""
    _running(monkeypatch, True)
    with pytest.raises(RuntimeError), spark_module.spark_scope(settings, "t"):
        raise RuntimeError("the job failed")
    assert session.stopped == 0
    assert session.sparkContext.levels == []  # the caller's log level is the caller's


def test_a_given_session_is_used_and_left_alone(settings: GridLakeSettings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_module, "spark_session",
                        lambda *a, **k: pytest.fail("a session was started"))
    given: Any = _Session()
    with spark_module.spark_scope(settings, "t", given) as got:
        assert got is given
    assert given.stopped == 0
