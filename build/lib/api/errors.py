"""One error body for every error the API answers, and its documentation in OpenAPI.

Every 4xx and 5xx answer is :class:`ErrorBody`: ``{"detail": "<field>: <what is wrong>"}``,
plus ``errors`` (one item per problem, ``loc`` naming where) on a 422. FastAPI's own
validation errors (``detail`` as a list) are turned into the same shape, so a client reads
one schema. 429 and 503 always carry ``Retry-After``.

Which error statuses an operation documents is derived from the operation itself
(:func:`document_errors`), never listed by hand per route:

* a request body: 400 (unparsable body, e.g. nested deeper than the JSON parser allows),
  413 (larger than the limit) and 422;
* parameters: 422;
* a bearer token (or a login/refresh): 401 and 429 (rate limit);
* a bearer token: 403 (role or region) and 503 (a dependency down: database, Redis and
  the lake, Kafka, the ML service);
* path parameters: 404 (unknown id).

Routes add the statuses only they answer (409 on create, 502/504 of the ML proxy) with
FastAPI's ``responses=``; those keep their own description and get the same schema.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

#: ``Retry-After`` of a 503 or 429 raised without one (seconds).
DEFAULT_RETRY_AFTER_S = {429: 1, 503: 5}


class ErrorItem(BaseModel):
    """One problem of a request."""

    loc: list[str | int] = Field(description="Where: `query`, `path`, `header` or `body`, "
                                 "then the parameter or field.", examples=[["query", "end"]])
    msg: str = Field(examples=["must be after start"])
    type: str = Field(examples=["value_error"])


class ErrorBody(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="What is wrong, starting with the parameter or field "
                        "it is about when there is one.", examples=["end: must be after start"])
    errors: list[ErrorItem] | None = Field(
        default=None, description="On a 422: each problem, with where it is.")


def field_name(loc: Sequence[str | int]) -> str:
    """The field a ``loc`` is about: ``("query", "start")`` → ``start``."""
    rest = [str(p) for p in loc[1:]]
    return ".".join(rest) if rest else str(loc[0]) if loc else "request"


def validation_items(errors: Sequence[dict[str, Any]]) -> list[ErrorItem]:
    """Pydantic/FastAPI error dicts as :class:`ErrorItem` (their ``input`` left out).

    The input is never echoed: it may be a password or megabytes of body.
    """
    items = []
    for e in errors:
        loc = [p if isinstance(p, int) else str(p) for p in e.get("loc", ())]
        msg = str(e.get("msg", "invalid"))
        # pydantic prefixes a validator's own ValueError with this; the field is named anyway
        msg = msg.removeprefix("Value error, ")
        items.append(ErrorItem(loc=loc, msg=msg, type=str(e.get("type", "value_error"))))
    return items


def _item_of(detail: str) -> ErrorItem:
    """The item of a ``"<field>: <message>"`` detail (a 422 raised by a route)."""
    field, sep, msg = detail.partition(": ")
    if sep and field and " " not in field:
        return ErrorItem(loc=["request", field], msg=msg, type="value_error")
    return ErrorItem(loc=["request"], msg=detail, type="value_error")


def error_response(status: int, detail: str, headers: dict[str, str] | None = None,
                   errors: list[ErrorItem] | None = None) -> JSONResponse:
    """An :class:`ErrorBody` answer; a 422 always lists its errors, 429/503 retry later."""
    if status == 422 and not errors:
        errors = [_item_of(detail)]
    body: dict[str, Any] = {"detail": detail}
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    out = dict(headers or {})
    if status in DEFAULT_RETRY_AFTER_S and not any(k.lower() == "retry-after" for k in out):
        out["Retry-After"] = str(DEFAULT_RETRY_AFTER_S[status])
    return JSONResponse(status_code=status, content=body, headers=out or None)


def _detail_text(detail: Any, status: int) -> str:
    if isinstance(detail, str):
        return detail
    if detail is None:
        return HTTPStatus(status).phrase
    return str(detail)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = validation_items(exc.errors())
    detail = "; ".join(f"{field_name(i.loc)}: {i.msg}" for i in items) or "invalid request"
    return error_response(422, detail, errors=items)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = _detail_text(exc.detail, exc.status_code)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI's own body parsing: json.loads gave up on the nesting
        detail = "body: JSON nested too deeply"
    elif exc.status_code == 400 and detail == "There was an error parsing the body":
        detail = "body: cannot be parsed"
    return error_response(exc.status_code, detail, dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Answer FastAPI's and Starlette's own errors with :class:`ErrorBody`."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)


# ------------------------------------------------------------------------- OpenAPI
_DESCRIPTIONS = {
    400: "The body cannot be parsed (e.g. JSON nested deeper than the parser allows).",
    401: "Missing, expired or invalid credentials.",
    403: "Your role lacks the permission, or the entity is outside your regions.",
    404: "Unknown id.",
    409: "Conflict with the current state.",
    413: "Body larger than the limit.",
    422: "A parameter or body field is invalid; `detail` and `errors` name it.",
    429: "Too many requests: retry after `Retry-After` seconds.",
    502: "A dependency answered with an error.",
    503: "A dependency is down: retry after `Retry-After` seconds.",
    504: "A dependency did not answer in time.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer"}}}
_SCHEMA_REF = "#/components/schemas/ErrorBody"


def error_statuses(operation: dict[str, Any], tags: Sequence[str] = ()) -> set[int]:
    """The error statuses an OpenAPI operation can answer (see the module docstring)."""
    params = operation.get("parameters", [])
    codes: set[int] = set()
    if "requestBody" in operation:
        codes |= {400, 413, 422}
    if params:
        codes.add(422)
    secured = bool(operation.get("security"))
    if secured or "auth" in tags:
        codes |= {401, 429}
    if secured:
        codes |= {403, 503}
    if any(p.get("in") == "path" for p in params):
        codes.add(404)
    return codes


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every operation's error answers documented with :class:`ErrorBody`."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorItem, ErrorBody):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[model.__name__] = schema
    # FastAPI's list-shaped validation error is never answered
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            codes = error_statuses(op, op.get("tags", ()))
            codes |= {int(c) for c in responses if c.isdigit() and int(c) >= 400}
            for code in sorted(codes):
                entry = responses.setdefault(str(code), {})
                if entry.get("description") in (None, "", "Validation Error"):
                    entry["description"] = _DESCRIPTIONS.get(code, HTTPStatus(code).phrase)
                if not _keeps_own_schema(entry.get("content", {})):
                    entry["content"] = {"application/json": {"schema": {"$ref": _SCHEMA_REF}}}
                if code in (429, 503):
                    entry.setdefault("headers", {}).update(_RETRY_AFTER)
    return spec


def _keeps_own_schema(content: dict[str, Any]) -> bool:
    """Whether a declared error answer has a schema of its own (e.g. /ready's 503)."""
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return bool(schema) and not ref.endswith(("/HTTPValidationError", "/ErrorBody"))


def openapi_with_errors(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` replacement: FastAPI's document plus :func:`document_errors`."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                summary=app.summary, description=app.description, routes=app.routes,
                tags=app.openapi_tags, servers=app.servers))
        return app.openapi_schema

    return build
