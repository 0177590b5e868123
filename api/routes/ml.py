"""The ML microservice, reached through the API with the caller's identity and roles.

The ML service (``gridlake ml serve``, :mod:`ml.service.app`) keeps its own endpoints; here
each is proxied after the API has authenticated the caller and checked the role (and, for
requests naming a device, its region). The caller's identity travels in the
``X-GridLake-User``, ``X-GridLake-Role`` and ``X-GridLake-Regions`` headers, and a request
id in ``X-Request-ID``. The ML service's answer (status and JSON body) is passed back, its
error bodies in the API's one error schema (:class:`api.errors.ErrorBody`); an unreachable
service is a 503 with ``Retry-After`` (as is the service's own 503), a failing one a 502,
a slow one a 504. Bodies are parsed by FastAPI like every other body (400 when nested too
deeply, 422 when not a JSON object) before anything is forwarded.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import Response

from api.context import Ctx, request_id, require
from api.errors import ErrorBody, error_response, field_name, validation_items
from api.security import Perm, Principal
from api.validation import json_object, object_body

log = logging.getLogger(__name__)

#: Seconds a client is told to wait when the ML service is unavailable.
RETRY_AFTER_S = 5

router = APIRouter(prefix="/ml", tags=["ml"], responses={
    404: {"model": ErrorBody, "description": "Unknown model or device (the ML service's "
          "answer, or a device outside the catalog)."},
    409: {"model": ErrorBody, "description": "The ML service refuses in its current state "
          "(e.g. no active model)."},
    502: {"model": ErrorBody, "description": "The ML service failed."},
    504: {"model": ErrorBody, "description": "The ML service did not answer in time."},
})

Scorer = Annotated[Principal, Depends(require(Perm.USE_ML))]
Manager = Annotated[Principal, Depends(require(Perm.MANAGE_ML))]


def identity_headers(who: Principal, rid: str) -> dict[str, str]:
    """Headers telling the ML service who is asking."""
    return {"X-GridLake-User": who.username, "X-GridLake-Role": who.role.value,
            "X-GridLake-Regions": ",".join(sorted(who.regions)), "X-Request-ID": rid}


async def forward(c: Any, who: Principal, method: str, path: str,
                  body: bytes | None = None, *, content_type: str = "application/json",
                  params: dict[str, str] | None = None) -> Response:
    """Send a request to the ML service as ``who``; its answer, errors mapped.

    Args:
        c: The worker's context.
        who: The caller (identity headers).
        method: HTTP method.
        path: Path on the ML service.
        body: Body to send, if any.
        content_type: Its content type.
        params: Query parameters.

    Raises:
        HTTPException: 503 unreachable, 504 too slow, 502 failing.

    """
    rid = request_id()
    headers = identity_headers(who, rid)
    if body is not None:
        headers["Content-Type"] = content_type
    try:
        resp = await c.ml.request(method, path, content=body, headers=headers,
                                  params=params)
    except httpx.TimeoutException:
        raise HTTPException(504, "the ML service did not answer in time") from None
    except httpx.TransportError as err:
        raise HTTPException(503, f"the ML service is unreachable: {err}",
                            {"Retry-After": str(RETRY_AFTER_S)}) from None
    if resp.status_code >= 500 and resp.status_code != 503:
        log.warning("ML service %s %s → %d (request %s)", method, path, resp.status_code, rid)
        raise HTTPException(502, f"the ML service failed (HTTP {resp.status_code})")
    if resp.status_code >= 400:
        return ml_error(resp)
    return Response(resp.content, status_code=resp.status_code,
                    media_type=resp.headers.get("content-type", "application/json"))


def ml_error(resp: httpx.Response) -> Response:
    """An error answer of the ML service in the API's error schema.

    The service is a FastAPI app too: its ``detail`` is a string, or a list of validation
    errors on a 422. A 503 keeps (or gets) ``Retry-After``.
    """
    status = resp.status_code
    try:
        detail = orjson.loads(resp.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    headers = {}
    if status == 503:
        headers["Retry-After"] = resp.headers.get("retry-after", str(RETRY_AFTER_S))
    if isinstance(detail, list):
        items = validation_items([e for e in detail if isinstance(e, dict)])
        text = "; ".join(f"{field_name(i.loc)}: {i.msg}" for i in items)
        return error_response(status, text or "invalid request", headers, items or None)
    text = detail if isinstance(detail, str) else \
        f"the ML service answered HTTP {status}"
    return error_response(status, text, headers)


def _devices_in(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return []
    ids = [payload.get("device_id")]
    series = payload.get("series")
    if isinstance(series, list):
        ids += [s.get("device_id") for s in series if isinstance(s, dict)]
    return [i for i in ids if isinstance(i, str)]


async def _scoped_body(c: Any, who: Principal, request: Request) -> bytes:
    """The request body as sent, after checking that every device it names is in scope.

    Read only now, once the caller is authenticated (up to ``api.ml_max_body_bytes``).
    """
    body = await request.body()
    for device in _devices_in(json_object(body)):
        rec = c.catalog.get(device)
        if rec is None:
            if not who.unscoped:
                raise HTTPException(404, f"device {device!r} not found")
        else:
            who.require_region(rec.get("region_id"), f"device {device!r}")
    return body


@router.get("/health", summary="The ML service's liveness and active model")
async def ml_health(c: Ctx, who: Scorer) -> Response:
    """``GET /health`` of the ML service."""
    return await forward(c, who, "GET", "/health")


@router.get("/models", summary="Models in the registry")
async def ml_models(c: Ctx, who: Scorer) -> Response:
    """``GET /models`` of the ML service: every model, the active one marked."""
    return await forward(c, who, "GET", "/models")


@router.post("/models/{model_id}/activate", summary="Activate a model (admin)")
async def ml_activate(c: Ctx, who: Manager,
                      model_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")],
                      ) -> Response:
    """``POST /models/{id}/activate`` of the ML service (audited).

    Success is audited as ``ml_activate``; a refusal of the ML service (its 4xx) and a
    failure to reach it (503, 504) or of it (502) as ``ml_activate_failed`` with the status.
    """
    try:
        resp = await forward(c, who, "POST", f"/models/{model_id}/activate")
    except HTTPException as err:
        c.audit(who, "ml_activate_failed", model_id, status=err.status_code,
                reason=str(err.detail))
        raise
    if resp.status_code >= 400:
        c.audit(who, "ml_activate_failed", model_id, status=resp.status_code,
                reason=bytes(resp.body[:500]).decode("utf-8", "replace"))
    else:
        c.audit(who, "ml_activate", model_id, status=resp.status_code)
    return resp


@router.post("/score", summary="Score posted series with the active model",
             openapi_extra=object_body(
                 "The ML service's scoring request: `series` of `{device_id, values}`.",
                 {"series": [{"device_id": "ESS-01", "values": [[1.0, 2.0], [1.1, 2.1]]}]}))
async def ml_score(request: Request, c: Ctx, who: Scorer) -> Response:
    """``POST /score`` of the ML service.

    Series naming a ``device_id`` outside your regions are refused (403).
    """
    body = await _scoped_body(c, who, request)
    return await forward(c, who, "POST", "/score", body)


@router.post("/score/lake", summary="Score a device's lake series",
             openapi_extra=object_body(
                 "The ML service's lake scoring request: a device and a range.",
                 {"device_id": "ESS-01", "start": "2026-03-01T00:00:00Z",
                  "end": "2026-03-02T00:00:00Z"}))
async def ml_score_lake(request: Request, c: Ctx, who: Scorer) -> Response:
    """``POST /score/lake`` of the ML service, for a device of your regions."""
    body = await _scoped_body(c, who, request)
    return await forward(c, who, "POST", "/score/lake", body)
