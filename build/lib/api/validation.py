"""Shared validation of what requests carry: time ranges, paging, filters, JSON bodies.

Every route takes these from here, so a bound is decided once and the OpenAPI document
states it (``minimum``/``maximum``/``maxLength``), which lets clients and the fuzzer know
it too. A value outside a bound is a 422 naming the parameter, never a 500 further down
(SQLite's 64-bit integers, orjson's, ``datetime``'s years 1–9999). A JSON body is 400
when nested too deeply for the parser and 422 when otherwise invalid, whether FastAPI
parses it for a model (:mod:`api.errors` words the 400) or a route reads it itself
(:func:`json_object`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Query
from pydantic import AfterValidator, StringConstraints

from api.output import MAX_FILTER_CHARS
from infra.settings import ApiSettings
from lakehouse.time import DAY_MS, to_ms

#: Largest ``offset`` of any listing: far beyond any table the API pages through, and well
#: inside the 64-bit integers of SQLite and orjson.
MAX_OFFSET = 10_000_000
#: Filters one request may carry.
MAX_FILTERS = 20


def _instant(t: datetime) -> datetime:
    """``t`` if it is an instant of years 1–9999 once taken to UTC (naive means UTC)."""
    to_ms(t)  # raises ValueError naming the value: a 422 for the parameter
    return t


#: A date-time query parameter: ISO 8601, naive means UTC, within years 1–9999 in UTC.
Instant = Annotated[datetime, AfterValidator(_instant)]

Start = Annotated[Instant, Query(description="Inclusive start (ISO 8601; naive means UTC).",
                                 examples=["2026-03-02T00:00:00Z"])]
End = Annotated[Instant, Query(description="Exclusive end (ISO 8601).",
                               examples=["2026-03-03T00:00:00Z"])]

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip.")]

#: Repeatable ``filter=column<op>value``, each at most :data:`MAX_FILTER_CHARS` long.
Filters = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_FILTER_CHARS)]],
    Query(alias="filter", max_length=MAX_FILTERS, description=(
        "Repeatable `column<op>value` with op one of = != > >= < <=, e.g. "
        f"`filter=loading_rate_pct>=80`; at most {MAX_FILTERS} filters of "
        f"{MAX_FILTER_CHARS} characters."))]


def time_range(cfg: ApiSettings, start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` as epoch ms, checked: ordered and at most ``max_range_days`` long.

    Raises:
        HTTPException: 422 naming ``start`` or ``end``.

    """
    try:
        s = to_ms(start)
    except ValueError as err:  # callers that did not declare the parameter as Instant
        raise HTTPException(422, f"start: {err}") from None
    try:
        e = to_ms(end)
    except ValueError as err:
        raise HTTPException(422, f"end: {err}") from None
    if e <= s:
        raise HTTPException(422, "end: must be after start")
    if e - s > cfg.max_range_days * DAY_MS:
        raise HTTPException(422, f"end: the range is longer than {cfg.max_range_days} days")
    return s, e


def page_size(cfg: ApiSettings, limit: int | None, default: int = 1000) -> int:
    """Rows per page: ``limit``, or ``default``, at most ``max_page_size``.

    Raises:
        HTTPException: 422 when ``limit`` is over ``max_page_size``.

    """
    most = cfg.max_page_size
    if limit is not None and limit > most:
        raise HTTPException(422, f"limit: at most {most}")
    return limit or min(default, most)


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object, parsed as FastAPI parses its models' bodies.

    For routes that read their body themselves (after authenticating the caller, so that
    nobody unauthenticated makes the API parse a large body).

    Raises:
        HTTPException: 400 when nested too deeply for the parser (FastAPI's answer to the
            same body), 422 when not JSON or not an object.

    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise HTTPException(400, "body: JSON nested too deeply") from None
    except ValueError:
        raise HTTPException(422, "body: not JSON") from None
    if not isinstance(value, dict):
        raise HTTPException(422, "body: a JSON object is required")
    return value


def object_body(description: str, example: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting a required JSON-object body read by :func:`json_object`."""
    return {"requestBody": {"required": True, "description": description, "content": {
        "application/json": {"schema": {"type": "object"}, "example": example}}}}
