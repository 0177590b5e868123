"""Property-based fuzzing of the whole API from its own OpenAPI document (Schemathesis).

Every operation gets positive and negative cases (valid and invalid parameters and bodies,
generated from the spec) as several identities — admin, operator scoped to a region,
viewer, and nobody — against the in-process app with nothing listening on its Redis,
Kafka, WebHDFS or ML ports. Each answer must be no server error, have a documented status
and match the documented schema (headers and content type included). The run's figures
are in docs/api.md ("Fuzzing").
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from infra.settings import GridLakeSettings
from jobs.batch.tracking import JobState
from tests.api.conftest import Users, api_settings

pytestmark = [pytest.mark.slow,
              # schemathesis draws from `random` inside its strategies (its own affair)
              pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")]

log = logging.getLogger(__name__)

CHECKS = [status_code_conformance, response_schema_conformance, response_headers_conformance,
          content_type_conformance]
#: 5xx answers that are not server errors: a dependency down or failing (documented).
DEPENDENCY_DOWN = (502, 503, 504)
#: The feed streams until the client leaves; tests/api/routes/test_feed_limits.py has it.
SKIPPED = {("GET", "/api/v1/feed")}
#: Cases per operation, identity and mode (positive, negative).
EXAMPLES = 12


def _launch_nothing(job: JobState) -> JobState:
    """Stands in for JobStore.launch: a fuzzed backfill must never start Spark."""
    return job


@pytest.fixture
def fuzz_client(settings: GridLakeSettings, tmp_path: Path) -> Iterator[TestClient]:
    # settings on free ports: nothing listens (a shared stack may be up on the defaults)
    cfg = api_settings(settings, tmp_path / "home")  # no rate limit: 429s would hide the rest
    with TestClient(create_app(cfg), raise_server_exceptions=False) as c:
        c.app.state.ctx.jobs.launch = _launch_nothing  # type: ignore[attr-defined]
        yield c


def _send(client: TestClient, kwargs: dict[str, Any]) -> Any:
    """Send requests-style keyword arguments (Schemathesis's) through the test client."""
    kw = {k: v for k, v in kwargs.items() if k in ("method", "url", "headers", "params",
                                                    "json", "cookies")}
    if "data" in kwargs:
        data = kwargs["data"]
        kw["content" if isinstance(data, str | bytes) else "data"] = data
    if "files" in kwargs:
        kw["files"] = kwargs["files"]
    if kw.get("cookies"):
        client.cookies.clear()
    return client.request(**kw)


def _fuzz(client: TestClient, op: Any, mode: GenerationMode, who: str,
          headers: dict[str, str], statuses: Counter[int], failures: list[str],
          by_who: Counter[tuple[str, int]]) -> None:
    """Run :data:`EXAMPLES` cases of ``op`` as ``who``, collecting statuses and failures."""

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        sent = {**(case.headers or {}), **headers}
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=sent)
        response = _send(client, kwargs)
        statuses[response.status_code] += 1
        by_who[who, response.status_code] += 1
        where = f"{who} {mode.value} {op.method.upper()} {op.path} -> {response.status_code}"
        if response.status_code >= 500 and response.status_code not in DEPENDENCY_DOWN:
            failures.append(f"{where}: server error: {response.text[:500]}")
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except (FailureGroup, AssertionError) as err:  # collected, reported by the test
            failures.append(f"{where}: {str(err)[:1500]}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
        assert mode is GenerationMode.NEGATIVE, (op.method, op.path)


def test_fuzz_every_operation(fuzz_client: TestClient) -> None:
    users = Users(fuzz_client)
    identities: dict[str, dict[str, str]] = {
        "admin": users.admin, "operator-R1": users.headers("operator", ["R1"]),
        "viewer": users.headers("viewer"), "anonymous": {}}
    spec = fuzz_client.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    statuses: Counter[int] = Counter()
    by_who: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIPPED:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for who, headers in identities.items():
                _fuzz(fuzz_client, op, mode, who, headers, statuses, failures, by_who)
    elapsed = time.monotonic() - started
    cases = sum(statuses.values())
    # the figures of docs/api.md ("Fuzzing"): pytest tests/api/test_fuzz.py -o log_cli=true
    log.warning("fuzzed %d operations, %d cases in %.0f s: statuses %s; %d failures; "
                "by identity %s", operations, cases, elapsed, dict(sorted(statuses.items())),
                len(failures), dict(sorted(by_who.items())))
    assert not failures, f"{len(failures)} failures:\n" + "\n\n".join(failures[:20])
    assert operations >= 30 and statuses[200] > 0 and statuses[422] > 0
    assert not [s for s in statuses if s >= 500 and s not in (502, 503, 504)]

