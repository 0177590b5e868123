"""Filtering, sorting, paging and rendering (JSON or CSV) of result rows.

Filters and sort keys name contract columns and are checked against them; a bad one is a
:class:`QueryError` (HTTP 422) naming the parameter and the column. Rows are plain dicts
(as :func:`api.models.decode_row` gives them), so the same code serves every dataset.
"""

from __future__ import annotations

import csv
import io
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from lakehouse.contracts.precision import rounded
from lakehouse.contracts.schema import Field, FieldType
from lakehouse.time import to_ms

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
    "<": operator.lt, "<=": operator.le,
}

JSON = "application/json"
CSV = "text/csv; charset=utf-8"


class QueryError(ValueError):
    """A bad query parameter (HTTP 422); the message starts with the parameter's name."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def parse_value(f: Field, text: str, param: str) -> Any:
    """A filter value typed as column ``f``."""
    try:
        if f.type in (FieldType.INT, FieldType.BIGINT):
            return int(text)
        if f.type is FieldType.DOUBLE:
            return float(text)
        if f.type is FieldType.BOOLEAN:
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            return text.lower() == "true"
        if f.type is FieldType.TIMESTAMP:
            t = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return t if t.tzinfo else t.replace(tzinfo=UTC)
    except ValueError:
        raise QueryError(param, f"{f.name}: {text!r} is not a {f.type.value}") from None
    return text


Filter = tuple[str, Callable[[Any, Any], bool], Any]

#: Longest filter expression parsed (the route's parameter says the same to clients).
MAX_FILTER_CHARS = 200


def split_filter(expr: str, param: str = "filter") -> tuple[str, str, str]:
    """``column<op>value`` as (column, op, value), spaces around each part dropped.

    One pass over the text with no backtracking: the regular expression this replaces
    (a lazy value group followed by optional spaces up to the end) took quadratic time on
    long runs of spaces, blocking the event loop.

    Raises:
        QueryError: Longer than :data:`MAX_FILTER_CHARS`, or not ``column<op>value``.

    """
    if len(expr) > MAX_FILTER_CHARS:
        raise QueryError(param, f"a filter is at most {MAX_FILTER_CHARS} characters")
    text = expr.strip()
    m = _NAME_RE.match(text)
    if m is None:
        raise QueryError(param, f"{expr!r} is not column<op>value (op: = != > >= < <=)")
    rest = text[m.end():].lstrip()
    op = rest[:2] if rest[:2] in _OPS else rest[:1]
    if op not in _OPS:
        raise QueryError(param, f"{expr!r} is not column<op>value (op: = != > >= < <=)")
    return m.group(), op, rest[len(op):].strip()


def parse_filters(fields: Sequence[Field], exprs: Iterable[str],
                  param: str = "filter") -> list[Filter]:
    """``column<op>value`` expressions (op: = != > >= < <=) checked against ``fields``."""
    by_name = {f.name: f for f in fields}
    out: list[Filter] = []
    for expr in exprs:
        name, op, text = split_filter(expr, param)
        if name not in by_name:
            raise QueryError(param, f"unknown column {name!r}")
        out.append((name, _OPS[op], parse_value(by_name[name], text, param)))
    return out


def apply_filters(rows: list[dict[str, Any]], filters: list[Filter]) -> list[dict[str, Any]]:
    """Rows passing every filter (a missing value passes none)."""
    if not filters:
        return rows
    return [r for r in rows
            if all(r.get(n) is not None and op(r[n], v) for n, op, v in filters)]


def parse_sort(names: Sequence[str], expr: str | None,
               param: str = "sort") -> list[tuple[str, bool]]:
    """``a,-b``: columns to sort by, ``-`` for descending, checked against ``names``."""
    keys: list[tuple[str, bool]] = []
    for part in (expr or "").split(","):
        part = part.strip()
        if not part:
            continue
        desc = part.startswith("-")
        name = part.lstrip("+-")
        if name not in names:
            raise QueryError(param, f"unknown column {name!r}")
        keys.append((name, desc))
    return keys


def sort_rows(rows: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows sorted by ``keys`` (stable; missing values last in either direction)."""
    for name, desc in reversed(keys):
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r, n=name: r[n], reverse=desc)  # type: ignore[misc]
        rows = present + missing
    return rows


def parse_fields(names: Sequence[str], expr: str | None, param: str = "fields") -> list[str]:
    """Columns to return (all when empty), checked against ``names``."""
    if not expr:
        return list(names)
    wanted = [p.strip() for p in expr.split(",") if p.strip()]
    bad = [w for w in wanted if w not in names]
    if bad:
        raise QueryError(param, f"unknown column {bad[0]!r}")
    return wanted


def finish_rows(rows: list[dict[str, Any]], roundings: Sequence[tuple[str, int]], *,
                time_field: str | None = None, grain_ms: int | None = None,
                complete_before_ms: int | None = None) -> list[dict[str, Any]]:
    """Rows as answered: values rounded to their unit's decimals, windows marked partial.

    The one place answers round (the lake and the serving copy keep full precision): NaN
    and infinities become None. With a grain, each row gets ``partial``: whether its window
    ``[time, time + grain)`` ends after ``complete_before_ms`` (see
    :meth:`api.query.QueryService.complete_before`). Rows are changed in place.

    Args:
        rows: Decoded rows.
        roundings: (column, decimals) of the double columns.
        time_field: The rows' window start column (with ``grain_ms``).
        grain_ms: Window length; None: no ``partial`` column.
        complete_before_ms: Windows ending at or before this instant are complete (None:
            no ``partial`` column).

    """
    for r in rows:
        for name, places in roundings:
            v = r.get(name)
            if v is not None:
                r[name] = rounded(v, places)
    if grain_ms is not None and time_field is not None and complete_before_ms is not None:
        for r in rows:
            t = r.get(time_field)
            start = to_ms(t) if isinstance(t, datetime) else t
            r["partial"] = start is None or start + grain_ms > complete_before_ms
    return rows


def dumps(value: Any) -> str:
    """Compact JSON (datetimes as RFC 3339 with ``Z``)."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC).decode()


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.isoformat().replace("+00:00", "Z")
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def to_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    """Rows as CSV with a header line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(fields)
    for r in rows:
        w.writerow([_cell(r.get(f)) for f in fields])
    return buf.getvalue()


def render(meta: dict[str, Any], rows: list[dict[str, Any]], fields: list[str],
           fmt: str) -> tuple[str, str]:
    """(body, media type): JSON ``{**meta, "rows": [...]}`` or CSV of the rows."""
    if fmt == "csv":
        return to_csv(rows, fields), CSV
    projected = rows if rows and list(rows[0]) == fields else [
        {f: r.get(f) for f in fields} for r in rows]
    return dumps({**meta, "rows": projected}), JSON
