import csv
import io
from datetime import UTC, datetime

import orjson
import pytest

from api.output import (
    QueryError,
    apply_filters,
    parse_fields,
    parse_filters,
    parse_sort,
    render,
    sort_rows,
)
from lakehouse.contracts.tables import ADS_TRANSFORMER_DAILY

FIELDS = ADS_TRANSFORMER_DAILY.fields
NAMES = ADS_TRANSFORMER_DAILY.field_names
D1, D2 = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
ROWS = [
    {"transformer_id": "TX-1", "day": D1, "loading_rate_pct": 80.0, "overloaded": False},
    {"transformer_id": "TX-2", "day": D1, "loading_rate_pct": 120.5, "overloaded": True},
    {"transformer_id": "TX-3", "day": D2, "loading_rate_pct": None, "overloaded": False},
    {"transformer_id": "TX-1", "day": D2, "loading_rate_pct": 95.0, "overloaded": False},
]


def test_filters_are_typed_by_the_contract() -> None:
    f = parse_filters(FIELDS, ["loading_rate_pct>=90", "overloaded=false"])
    assert [r["transformer_id"] for r in apply_filters(ROWS, f)] == ["TX-1"]
    f = parse_filters(FIELDS, ["day<2026-03-02T00:00:00Z"])
    assert {r["transformer_id"] for r in apply_filters(ROWS, f)} == {"TX-1", "TX-2"}
    # naive timestamps mean UTC
    assert apply_filters(ROWS, parse_filters(FIELDS, ["day>=2026-03-02T00:00"])) == ROWS[2:]
    # a row without the value never passes a filter on it
    assert all(r["loading_rate_pct"] is not None
               for r in apply_filters(ROWS, parse_filters(FIELDS, ["loading_rate_pct!=1"])))


@pytest.mark.parametrize(("expr", "names"), [
    ("bogus>1", "unknown column 'bogus'"),
    ("loading_rate_pct>=abc", "loading_rate_pct"),
    ("overloaded=maybe", "overloaded"),
    ("loading_rate_pct", "column<op>value"),
    ("day>yesterday", "day"),
])
def test_bad_filters_name_the_parameter_and_column(expr: str, names: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_filters(FIELDS, [expr])
    assert str(err.value).startswith("filter: ") and names in str(err.value)


def test_sort_descending_with_missing_last_and_stable_ties() -> None:
    keys = parse_sort(NAMES, "-loading_rate_pct")
    assert [r["loading_rate_pct"] for r in sort_rows(ROWS, keys)] == [120.5, 95.0, 80.0, None]
    asc = sort_rows(ROWS, parse_sort(NAMES, "loading_rate_pct"))
    assert [r["loading_rate_pct"] for r in asc] == [80.0, 95.0, 120.5, None]
    two = sort_rows(ROWS, parse_sort(NAMES, "transformer_id,-day"))
    assert [(r["transformer_id"], r["day"]) for r in two] == [
        ("TX-1", D2), ("TX-1", D1), ("TX-2", D1), ("TX-3", D2)]
    with pytest.raises(QueryError, match="^sort: unknown column 'nope'"):
        parse_sort(NAMES, "nope")


def test_fields_projection_checked() -> None:
    assert parse_fields(NAMES, None) == NAMES
    assert parse_fields(NAMES, "day, transformer_id") == ["day", "transformer_id"]
    with pytest.raises(QueryError, match="^fields: unknown column 'x'"):
        parse_fields(NAMES, "day,x")


def test_render_json_and_csv() -> None:
    cols = ["transformer_id", "day", "loading_rate_pct", "overloaded"]
    body, media = render({"total": 4}, ROWS, cols, "json")
    doc = orjson.loads(body)
    assert media == "application/json" and doc["total"] == 4
    assert doc["rows"][1] == {"transformer_id": "TX-2", "day": "2026-03-01T00:00:00Z",
                              "loading_rate_pct": 120.5, "overloaded": True}
    body, media = render({"total": 4}, ROWS, ["day", "loading_rate_pct"], "json")
    assert orjson.loads(body)["rows"][2] == {"day": "2026-03-02T00:00:00Z",
                                             "loading_rate_pct": None}
    body, media = render({}, ROWS, cols, "csv")
    assert media.startswith("text/csv")
    lines = list(csv.reader(io.StringIO(body)))
    assert lines[0] == cols
    assert lines[2] == ["TX-2", "2026-03-01T00:00:00Z", "120.5", "true"]
    assert lines[3] == ["TX-3", "2026-03-02T00:00:00Z", "", "false"]
