"""Session fixtures shared by the job tests: the seeded scenario streamed through the
lakehouse job once (the streaming tests check it against the oracle, the backfill tests
recompute it with Spark)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infra.settings import GridLakeSettings
from jobs.streaming import control
from tests.jobs.lake_run import JOB, LAKE_SERVICES, missed_retractions, wait_consumed
from tests.jobs.streaming import lakehouse_data
from tests.jobs.streaming.conftest import make_isolated, publish_to

STREAM_ENVS: dict[str, dict[str, str]] = {}
"""Job environment of each streamed lake, by topic prefix (to start its job again)."""

MISSED: dict[str, int] = {}
"""Retractions the job's sink materializers could not match, by topic prefix (read from the
job's log before it stops: the next local job overwrites the log)."""


@pytest.fixture(scope="session")
def scenario() -> lakehouse_data.Scenario:
    """The seeded scenario."""
    return lakehouse_data.scenario(7)


@pytest.fixture(scope="session")
def lake_run(
    stack: GridLakeSettings, scenario: lakehouse_data.Scenario
) -> Iterator[tuple[GridLakeSettings, str]]:
    """The scenario streamed once for the session's read-only checks (see stream_scenario)."""
    yield from stream_scenario(stack, scenario)


def stream_scenario(
    stack: GridLakeSettings, scenario: lakehouse_data.Scenario
) -> Iterator[tuple[GridLakeSettings, str]]:
    """Run the job over both phases of the scenario; yields settings and the ingest date.

    Each call streams into a lake of its own: tests that rewrite tables (backfills) take a
    separate run so that the read-only checks keep seeing what the stream wrote.

    The job is stopped once everything is committed (the tables stay): later tests do not
    share the two cores with an idle job. It resumes from its committed offsets if
    started again on these settings.
    """
    # One partition per topic: the oracle's arrival order is the publish order.
    # Table services every other commit, so that compaction and cleaning run within the scenario.
    settings, env = make_isolated(
        stack, lake=LAKE_SERVICES, watermark_delay_ms=scenario.watermark_delay_ms,
        allowed_lateness_ms=scenario.allowed_lateness_ms,
    )
    STREAM_ENVS[settings.kafka.topic_prefix] = env
    control.start(settings, JOB, extra_env=env, resume=False)
    try:
        control.wait_running(settings, JOB, timeout=400)
        ingest_dt = datetime.now(UTC).strftime("%Y-%m-%d")
        # In chunks, each consumed (committed) before the next: every table gets several
        # commits, so compaction and cleaning run. The oracle does not depend on it: the
        # result of the SQL depends on arrival order only, not on checkpoint boundaries.
        for phase, chunks in ((scenario.phase1, 3), (scenario.phase2, 2)):
            size = -(-len(phase) // chunks)
            for i in range(0, len(phase), size):
                publish_to(settings, phase[i:i + size])
                wait_consumed(settings)
        MISSED[settings.kafka.topic_prefix] = missed_retractions(settings)
    finally:
        control.stop(settings, JOB, savepoint=False)
    yield settings, ingest_dt


