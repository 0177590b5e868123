"""Shared validation: the exact requests that answered 500 (issue #19) answer 4xx now.

The app has nothing behind it (no Redis, Kafka, lake or ML service): a valid request is
answered 200, 404 or 503, never 500; an invalid one is 400 or 422 naming what is wrong.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.output import MAX_FILTER_CHARS, QueryError, parse_filters, split_filter
from api.validation import MAX_OFFSET
from lakehouse.contracts.tables import ADS_TRANSFORMER_DAILY
from tests.api.conftest import Users

#: Every route taking a time range, with what else it needs.
RANGE_ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/datasets/load_curve", {}),
    ("/api/v1/entities/transformer/TX-1/indicators", {}),
    ("/api/v1/entities/feeder/F-1/load-curve", {}),
    ("/api/v1/quality/scorecards", {}),
    ("/api/v1/rankings/transformer_loading", {}),
    ("/api/v1/meters/M-1/energy/15min", {}),
]


@pytest.mark.parametrize(("path", "extra"), RANGE_ROUTES)
def test_dates_outside_years_1_to_9999_in_utc_are_422_on_every_range_route(
        client: TestClient, users: Users, path: str, extra: dict[str, str]) -> None:
    h = users.headers("viewer")
    # year 0 once taken to UTC
    r = client.get(path, headers=h, params={**extra, "start": "0001-01-01T00:00:00+01:00",
                                            "end": "0001-01-02T00:00:00Z"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("start:")
    assert r.json()["errors"][0]["loc"] == ["query", "start"]
    # year 10000 once taken to UTC
    r = client.get(path, headers=h, params={**extra, "start": "9999-12-31T00:00:00Z",
                                            "end": "9999-12-31T23:30:00-01:00"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("end:")
    # the last hours of year 9999 are fine: an answer, not a crash
    for start, end in [("9999-12-30T00:00:00Z", "9999-12-31T20:00:00-01:00"),
                       ("9999-12-31T20:00:00-01:00", "9999-12-31T22:00:00Z")]:
        r = client.get(path, headers=h, params={**extra, "start": start, "end": end})
        assert r.status_code in (200, 404, 503), (start, end, r.text)


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/audit", "/api/v1/devices",
                                  "/api/v1/jobs", "/api/v1/datasets/load_curve"])
def test_huge_offsets_are_422_not_an_overflow(client: TestClient, users: Users,
                                              path: str) -> None:
    params = {"start": "2026-03-01", "end": "2026-03-02"} if "datasets" in path else {}
    for offset in (2**63, 2**64, MAX_OFFSET + 1):
        r = client.get(path, headers=users.admin, params={**params, "offset": str(offset)})
        assert r.status_code == 422, (offset, r.text)
        assert r.json()["errors"][0]["loc"] == ["query", "offset"]
    r = client.get(path, headers=users.admin, params={**params, "offset": str(MAX_OFFSET)})
    assert r.status_code in (200, 503), r.text


def test_deeply_nested_json_is_400_on_every_body(client: TestClient, users: Users) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_object = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    h = {**users.headers("analyst"), "Content-Type": "application/json"}
    for path in ("/api/v1/ml/score", "/api/v1/ml/score/lake", "/api/v1/auth/login",
                 "/api/v1/users"):
        for body in (deep, deep_object):
            r = client.post(path, content=body, headers=h)
            assert r.status_code == 400, (path, r.text)
            assert r.json() == {"detail": "body: JSON nested too deeply"}


def test_ml_bodies_must_be_json_objects(client: TestClient, users: Users) -> None:
    h = {**users.headers("analyst"), "Content-Type": "application/json"}
    for body in (b"{not json", b"[1, 2]", b"", b'"text"'):
        r = client.post("/api/v1/ml/score", content=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"].startswith("body:")


def test_a_filter_is_parsed_in_linear_time() -> None:
    # The replaced expression took ~0.3 ms on this (quadratic in the run of spaces between
    # two values: 1.3 s at 12,000 spaces), so 30,000 parses took ~10 s; now ~50 ms.
    worst = "a=x" + " " * (MAX_FILTER_CHARS - 4) + "y"
    assert len(worst) == MAX_FILTER_CHARS
    started = time.perf_counter()
    for _ in range(30_000):
        assert split_filter(worst)[2].endswith("y")
    assert time.perf_counter() - started < 3.0
    with pytest.raises(QueryError, match=f"at most {MAX_FILTER_CHARS} characters"):
        split_filter("a=x" + " " * 12_000 + "y")


@pytest.mark.parametrize(("expr", "parsed"), [
    ("loading_rate_pct>=80", ("loading_rate_pct", ">=", "80")),
    ("  loading_rate_pct  <=  80  ", ("loading_rate_pct", "<=", "80")),
    ("transformer_id!=TX 1", ("transformer_id", "!=", "TX 1")),
    ("a=>b", ("a", "=", ">b")),
    ("a<", ("a", "<", "")),
])
def test_filter_split_keeps_the_grammar(expr: str, parsed: tuple[str, str, str]) -> None:
    assert split_filter(expr) == parsed


@pytest.mark.parametrize("expr", ["", "   ", "1a=2", "a", "a!b", "a ~ b", "=5"])
def test_filter_split_refuses_what_is_not_column_op_value(expr: str) -> None:
    with pytest.raises(QueryError, match="column<op>value"):
        split_filter(expr)


def test_parsed_filters_are_still_typed() -> None:
    [(name, op, value)] = parse_filters(ADS_TRANSFORMER_DAILY.fields, ["loading_rate_pct > 8"])
    assert name == "loading_rate_pct" and op(9.0, value) and not op(7.0, value)


def test_a_12000_space_filter_is_a_quick_422(client: TestClient, users: Users) -> None:
    # refused by its length before any parsing (the parser is linear anyway: see above)
    params = {"start": "2026-03-01", "end": "2026-03-02", "filter": "a=x" + " " * 12_000 + "y"}
    r = client.get("/api/v1/datasets/load_curve", headers=users.headers("viewer"),
                   params=params)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"][:2] == ["query", "filter"]
    assert "200 characters" in r.json()["detail"]


def test_a_lone_surrogate_in_a_body_is_4xx_not_500(client: TestClient, users: Users) -> None:
    # valid JSON ("\ud800" is a legal escape) that no UTF-8 encoder accepts: the 422 reply
    # must not try to echo it back
    h = {**users.admin, "Content-Type": "application/json"}
    for path, body in (("/api/v1/auth/login", b'{"username": "\\ud800", "password": "x"}'),
                       ("/api/v1/users", b'{"username": "a\\ud800", "password": "\\udfff"}'),
                       ("/api/v1/devices", b'{"device_id": "\\ud800"}')):
        r = client.post(path, content=body, headers=h)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        r.json()  # the error body is valid JSON
