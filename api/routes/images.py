"""Equipment images: the lake's image index, the files, their model results, scoring.

Reads ``ods_equipment_image`` (written by ``gridlake images import``) and
``ads_image_anomaly`` (``gridlake ml images score``) straight from the lake. Both tables
are small — one row per photo, one per photo and model — and have no serving copy: each
worker keeps a whole snapshot of each in memory (:class:`TableCopy`, read with the no-JVM
:class:`api.lake_reader.LakeReader`), checks the table's Hudi timeline at most every
:data:`RECHECK_S` seconds and reads the table again only when a commit landed. Lookups by
image id are then a dictionary access, whatever the capture date (the index is
partitioned by it).

Roles and regions as everywhere: reading needs ``indicators:read``, scoring ``ml:score``;
a region-scoped caller never sees a photo or result of an asset outside their regions —
such an image is 404, exactly like one that does not exist. The files are served with
their content type and, being content-addressed, as immutable (ETag = the image id).
Scoring is the ML service's (``POST /images/lake/{id}/predict`` and ``POST
/images/predict``), reached over HTTP through :func:`api.routes.ml.forward` after the
scope check: the API imports neither ``ml`` nor torch.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.context import AppContext, Ctx, require
from api.errors import ErrorBody
from api.lake_reader import LakeReader, LakeReadError
from api.output import JSON, dumps
from api.routes.ml import forward
from api.security import Perm, Principal
from api.validation import Instant, Offset, page_size
from infra.lake import LakeError, LakeNotFound
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import ADS_IMAGE_ANOMALY, ODS_EQUIPMENT_IMAGE
from lakehouse.time import to_ms

router = APIRouter(tags=["images"])
#: The raw-upload scoring route: its own router, for its own body limit (images.max_bytes).
ml_router = APIRouter(prefix="/ml", tags=["ml"])

RECHECK_S = 5.0
"""Seconds a worker trusts its copy of an image table before looking at the timeline."""

MEDIA_TYPES: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg",
                               "TIFF": "image/tiff", "BMP": "image/bmp",
                               "WEBP": "image/webp"}
"""Content type of each stored format (lakehouse.contracts.images.IMAGE_FORMATS)."""

#: The files never change (the path is the content's hash); private: the caller's scope
#: decided who may fetch them.
CACHE_CONTROL = "private, max-age=31536000, immutable"

Reader = Annotated[Principal, Depends(require(Perm.READ_INDICATORS))]
Scorer = Annotated[Principal, Depends(require(Perm.USE_ML))]
ImageId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the "
                              "file (hex, lower case).",
                              examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d"
                                        "6c15b0f00a08"])]
Text = Annotated[str | None, Query(min_length=1, max_length=64)]
AssetType = Literal["transformer", "substation", "feeder", "ess"]
Camera = Literal["visible", "infrared"]
Label = Literal["normal", "crack", "flashover", "rust", "oil_leak", "missing_part",
                "hot_spot"]
ModelKind = Literal["image_classifier", "image_autoencoder"]
PredictKind = Literal["classifier", "autoencoder"]
ModelId = Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,128}$",
                                      description="A registry model (default: the active "
                                      "one of the kind).")]
Limit = Annotated[int | None, Query(ge=1)]
_INDEX_FIELDS = [f for f in ODS_EQUIPMENT_IMAGE.field_names if f != "dt"]
_RESULT_FIELDS = [f for f in ADS_IMAGE_ANOMALY.field_names if f != "dt"]


class TableCopy:
    """A worker's in-memory snapshot of one small lake table (see the module docstring)."""

    def __init__(self, lake: LakeReader, table: TableContract,
                 recheck_s: float = RECHECK_S) -> None:
        self.lake = lake
        self.table = table
        self.recheck_s = recheck_s
        self.rows: list[dict[str, Any]] = []
        self.by_image: dict[str, list[dict[str, Any]]] = {}
        self.version: str | None = None
        self._checked = -float("inf")
        self._lock = asyncio.Lock()

    async def current(self) -> TableCopy:
        """The copy, brought up to date if its table changed.

        Raises:
            LakeReadError: The lake cannot be read (HTTP 503).

        """
        if time.monotonic() - self._checked < self.recheck_s:
            return self
        async with self._lock:
            if time.monotonic() - self._checked < self.recheck_s:
                return self
            version = await asyncio.to_thread(self.lake.version, self.table)
            if version != self.version:
                version, rows = await asyncio.to_thread(self.lake.read_all, self.table)
                by_image: dict[str, list[dict[str, Any]]] = defaultdict(list)
                for r in rows:
                    by_image[str(r.get("image_id"))].append(r)
                self.rows, self.by_image, self.version = rows, dict(by_image), version
            self._checked = time.monotonic()
        return self


def copies(c: AppContext, request: Request) -> tuple[TableCopy, TableCopy]:
    """The worker's copies of the index and the results (made on first use)."""
    state = request.app.state
    got: tuple[TableCopy, TableCopy] | None = getattr(state, "image_tables", None)
    if got is None or got[0].lake is not c.lake:
        got = (TableCopy(c.lake, ODS_EQUIPMENT_IMAGE), TableCopy(c.lake, ADS_IMAGE_ANOMALY))
        state.image_tables = got
    return got


def visible(who: Principal, row: dict[str, Any]) -> bool:
    """Whether the caller's regions include the row's asset's region."""
    return who.sees_region(row.get("region_id"))


def in_range(row: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    """Whether ``captured_ts`` is in ``[start, end)`` (an open side: no bound)."""
    t = row.get("captured_ts")
    if t is None:
        return start is None and end is None
    ms = to_ms(t)
    return (start is None or ms >= to_ms(start)) and (end is None or ms < to_ms(end))


def _bounds(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and to_ms(end) <= to_ms(start):
        raise HTTPException(422, "end: must be after start")


def _matching(rows: list[dict[str, Any]], who: Principal, start: datetime | None,
              end: datetime | None, want: dict[str, Any]) -> list[dict[str, Any]]:
    """The caller's rows captured in ``[start, end)`` matching ``want`` (``None``: any)."""
    return [r for r in rows if visible(who, r) and in_range(r, start, end)
            and all(v is None or r.get(k) == v for k, v in want.items())]


def _newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-(to_ms(r["captured_ts"]) if r.get("captured_ts")
                                         else 0), str(r.get("image_id")),
                                       str(r.get("model_id", ""))))


def _image(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in _INDEX_FIELDS}
    out["content_url"] = f"/api/v1/images/{row.get('image_id')}/content"
    return out


async def _find(c: AppContext, request: Request, who: Principal,
                image_id: str) -> dict[str, Any]:
    """The index row of an image the caller may see.

    Raises:
        HTTPException: 404 unknown, or outside the caller's regions (the same answer).

    """
    index, _ = copies(c, request)
    rows = (await index.current()).by_image.get(image_id, [])
    if not rows or not visible(who, rows[0]):
        raise HTTPException(404, f"image {image_id} not found")
    return rows[0]


class ImagePage(BaseModel):
    """A page of images, newest capture first."""

    total: int = Field(description="Images matching, before paging.")
    limit: int
    offset: int
    rows: list[dict[str, Any]] = Field(examples=[[{
        "image_id": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "path": "/gridlake/images/9f/9f86…a08.png", "bytes": 48213, "format": "PNG",
        "width": 512, "height": 384, "asset_id": "TX-00042", "asset_type": "transformer",
        "region_id": "RGN-01", "substation_id": "SUB-03",
        "captured_ts": "2026-03-02T09:30:00Z", "camera": "infrared", "label": "hot_spot",
        "content_url": "/api/v1/images/9f86…a08/content"}]])


@router.get("/images", response_model=ImagePage, summary="Equipment images (the lake index)")
async def list_images(
    request: Request, c: Ctx, who: Reader,
    asset_id: Text = None, asset_type: Annotated[AssetType | None, Query()] = None,
    region_id: Text = None, substation_id: Text = None,
    camera: Annotated[Camera | None, Query()] = None,
    label: Annotated[Label | None, Query()] = None,
    start: Annotated[Instant | None, Query(description="Captured at or after (ISO 8601).")]
    = None,
    end: Annotated[Instant | None, Query(description="Captured before (ISO 8601).")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> Response:
    """Images of your regions, newest capture first, filtered and paged.

    Asking for a region outside yours is 403.
    """
    _bounds(start, end)
    size = page_size(c.settings.api, limit, default=100)
    if region_id is not None:
        who.require_region(region_id, f"region {region_id!r}")
    index, _ = copies(c, request)
    want = {"asset_id": asset_id, "asset_type": asset_type, "region_id": region_id,
            "substation_id": substation_id, "camera": camera, "label": label}
    rows = _matching((await index.current()).rows, who, start, end, want)
    page = [_image(r) for r in _newest_first(rows)[offset:offset + size]]
    return Response(dumps({"total": len(rows), "limit": size, "offset": offset,
                           "rows": page}), media_type=JSON)


class ImageRecord(BaseModel):
    """One image's index row."""

    image_id: str
    path: str
    bytes: int
    format: str
    width: int
    height: int
    asset_id: str
    asset_type: str
    region_id: str | None
    substation_id: str | None
    captured_ts: Any
    camera: str
    inspector: str | None
    component: str | None
    label: str | None
    source_file: str
    import_batch: str
    imported_ts: Any
    content_url: str


@router.get("/images/{image_id}", response_model=ImageRecord, summary="One image's metadata")
async def get_image(request: Request, c: Ctx, who: Reader, image_id: ImageId) -> Response:
    """Its index row: file, size, format, asset, capture, label, import batch.

    404 when unknown or outside your regions.
    """
    return Response(dumps(_image(await _find(c, request, who, image_id))), media_type=JSON)


@router.get(
    "/images/{image_id}/content", response_class=Response, summary="The image file",
    responses={
        200: {"description": "The file's bytes, with its format's content type.",
              "content": {mt: {"schema": {"type": "string", "format": "binary"}}
                          for mt in MEDIA_TYPES.values()},
              "headers": {"ETag": {"description": "The image id, quoted.",
                                   "schema": {"type": "string"}},
                          "Cache-Control": {"description": "Immutable: the content never "
                                            "changes.", "schema": {"type": "string"}}}},
        304: {"description": "Not modified (`If-None-Match` names this image)."},
    })
async def image_content(request: Request, c: Ctx, who: Reader,
                        image_id: ImageId) -> Response:
    """The file as imported (read from HDFS), cacheable forever by its ETag.

    404 when unknown, outside your regions, or missing from the image store; 503 when
    HDFS cannot be reached.
    """
    row = await _find(c, request, who, image_id)
    etag = f'"{image_id}"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    try:
        data = await asyncio.to_thread(c.lake.fs.read, str(row["path"]))
    except LakeNotFound:
        raise HTTPException(404, f"image {image_id} is indexed but its file is missing "
                            "from the image store") from None
    except LakeError as err:
        raise LakeReadError(f"lake unavailable: {err}") from err
    media = MEDIA_TYPES.get(str(row.get("format")), "application/octet-stream")
    return Response(data, media_type=media, headers=headers)


class ResultPage(BaseModel):
    """Image model results."""

    total: int = Field(description="Rows matching, before paging.")
    limit: int
    offset: int
    rows: list[dict[str, Any]] = Field(examples=[[{
        "image_id": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "model_id": "image_classifier-20260302-01", "asset_id": "TX-00042",
        "asset_type": "transformer", "region_id": "RGN-01", "camera": "infrared",
        "captured_ts": "2026-03-02T09:30:00Z", "model_kind": "image_classifier",
        "score": 0.93, "threshold": 0.41, "defect": True}]])


def _page(rows: list[dict[str, Any]], size: int, offset: int) -> Response:
    page = [{k: r.get(k) for k in _RESULT_FIELDS}
            for r in _newest_first(rows)[offset:offset + size]]
    return Response(dumps({"total": len(rows), "limit": size, "offset": offset,
                           "rows": page}), media_type=JSON)


@router.get("/images/{image_id}/results", response_model=ResultPage,
            summary="Model results of one image")
async def image_results(request: Request, c: Ctx, who: Reader, image_id: ImageId,
                        limit: Limit = None, offset: Offset = 0) -> Response:
    """Every score of this image (one per model) from ``ads_image_anomaly``.

    404 when the image is unknown or outside your regions.
    """
    await _find(c, request, who, image_id)
    size = page_size(c.settings.api, limit, default=100)
    _, results = copies(c, request)
    rows = [r for r in (await results.current()).by_image.get(image_id, [])
            if visible(who, r)]
    return _page(rows, size, offset)


@router.get("/image-anomalies", response_model=ResultPage,
            summary="Scored images (image anomaly models)")
async def image_anomalies(
    request: Request, c: Ctx, who: Reader,
    defect: Annotated[bool | None, Query(description="Only defects (true) or only "
                                         "normal verdicts (false).")] = None,
    model_kind: Annotated[ModelKind | None, Query()] = None,
    model_id: Text = None, asset_id: Text = None, region_id: Text = None,
    camera: Annotated[Camera | None, Query()] = None,
    start: Annotated[Instant | None, Query(description="Captured at or after (ISO 8601).")]
    = None,
    end: Annotated[Instant | None, Query(description="Captured before (ISO 8601).")] = None,
    limit: Limit = None, offset: Offset = 0,
) -> Response:
    """Rows of ``ads_image_anomaly`` of your regions, newest capture first.

    Asking for a region outside yours is 403.
    """
    _bounds(start, end)
    size = page_size(c.settings.api, limit, default=100)
    if region_id is not None:
        who.require_region(region_id, f"region {region_id!r}")
    _, results = copies(c, request)
    want = {"defect": defect, "model_kind": model_kind, "model_id": model_id,
            "asset_id": asset_id, "region_id": region_id, "camera": camera}
    rows = _matching((await results.current()).rows, who, start, end, want)
    return _page(rows, size, offset)


_ML_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Not an image, truncated (the ML service)."},
    409: {"model": ErrorBody, "description": "No image model of that kind in the registry "
          "(train one with `gridlake ml images train`)."},
    413: {"model": ErrorBody, "description": "Over images.max_bytes."},
    502: {"model": ErrorBody, "description": "The ML service failed."},
    504: {"model": ErrorBody, "description": "The ML service did not answer in time."},
}


class Prediction(BaseModel):
    """The ML service's verdict on one image."""

    image_id: str | None
    model_id: str
    model_kind: str
    score: float
    threshold: float
    defect: bool
    label: str
    heatmap: list[list[float]] | None = None
    heatmap_shape: list[int] | None = None


def _params(kind: str, model_id: str | None) -> dict[str, str]:
    return {"kind": kind, **({"model_id": model_id} if model_id else {})}


@router.post("/images/{image_id}/predict", response_model=Prediction, responses=_ML_ERRORS,
             summary="Score an imported image with an image model")
async def predict_image(request: Request, c: Ctx, who: Scorer, image_id: ImageId,
                        kind: Annotated[PredictKind, Query()] = "classifier",
                        model_id: ModelId = None) -> Response:
    """The ML service's ``POST /images/lake/{image_id}/predict`` for an image of yours.

    404 when the image is unknown or outside your regions (checked here first).
    """
    await _find(c, request, who, image_id)
    return await forward(c, who, "POST", f"/images/lake/{image_id}/predict",
                         params=_params(kind, model_id))


_UPLOAD = {"requestBody": {"required": True, "description": "The image file's bytes "
                           "(no multipart).", "content": {
    mt: {"schema": {"type": "string", "format": "binary"}}
    for mt in (*MEDIA_TYPES.values(), "application/octet-stream")}}}


@ml_router.post("/images/predict", response_model=Prediction, responses=_ML_ERRORS,
                openapi_extra=_UPLOAD, summary="Score an uploaded image with an image model")
async def ml_predict_upload(request: Request, c: Ctx, who: Scorer,
                            kind: Annotated[PredictKind, Query()] = "classifier",
                            model_id: ModelId = None) -> Response:
    """The ML service's ``POST /images/predict``: the body is the raw image file.

    Bodies over ``images.max_bytes`` are refused (413) before reaching the service.
    """
    body = await request.body()
    if not body:
        raise HTTPException(400, "empty body: send the image file's bytes")
    media = request.headers.get("content-type", "application/octet-stream")
    if not (media.startswith("image/") or media.startswith("application/octet-stream")):
        media = "application/octet-stream"
    return await forward(c, who, "POST", "/images/predict", body, content_type=media,
                         params=_params(kind, model_id))
