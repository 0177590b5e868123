"""The ML microservice: score posted series with the active AnomalyBERT model.

Endpoints:

* ``GET /health`` - liveness and the active model id;
* ``GET /metrics`` - Prometheus metrics (:mod:`ml.service.metrics`);
* ``GET /models`` - every model in the registry (the active one marked);
* ``POST /models/{model_id}/activate`` - load a model and swap it in (thread-safe, no
  restart; in-flight requests finish with the model they started with);
* ``POST /score`` - anomaly probability per step of one or more series (JSON arrays of
  ``[steps][channels]`` in the model's channel order); all windows of a request are
  scored in batches. No training ever happens in a request.
* ``POST /score/lake`` - score one device over a time range read from the lake (its DWD
  table, through :class:`ml.data.lake_source.LakeSource`, as ``gridlake ml score`` reads it):
  scores, flags and anomalous intervals; nothing is written. The Spark session starts
  with the first such request and lives as long as the service.

Equipment images (issue 21), with the image models of the same registry:

* ``POST /images/predict?kind=classifier|autoencoder[&model_id=ID]`` - score the posted
  image file (raw bytes, ``image/*`` or ``application/octet-stream``);
* ``POST /images/lake/{image_id}/predict`` - score an image of ``ods_equipment_image``
  (file read from HDFS at its ``path``);
* ``GET /images/models`` - the image models, the active one of each kind marked.

The active image model of a kind is ``settings.images.active_classifier`` /
``active_autoencoder``, else the newest of that kind, resolved at the first request of
that kind (restart the service to pick up a newer model, or pass ``model_id``). Bad
images get 400 (not an image, truncated, too many pixels) or 413 (over
``settings.images.max_bytes``), no model of the kind 409 (saying how to train one), a
corrupt image model 409 with the reason, an unknown model or lake image 404.

Bad input gets a 4xx with a one-line ``detail``: wrong channel count, a series shorter
than one window, NaN/infinite/null values (422); unknown model id (404); a corrupt
checkpoint (422; the previous model stays active); no active model (409). A registry
that cannot be reached gives 503. For lake scoring: an empty range or one longer than
``MAX_TOTAL_STEPS`` steps (422 / 413), no readings of the device in the range (404), a
device without one window of readings (422), the lake unreadable (503).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from infra.lake import LakeError, LakeNotFound, WebHdfs
from infra.settings import GridLakeSettings, load_settings
from infra.spark import spark_session
from lakehouse.time import from_ms, to_ms
from ml.data.lake_source import LakeReadError, LakeSource, NoDataError
from ml.data.sources import SourceError, contract_by_name
from ml.detection import score_devices
from ml.images.data import ImageDecodeError, decode_image, lake_index
from ml.images.inference import (
    LoadedImageModel,
    NoImageModelError,
    active_image_model_id,
    load_image_model,
)
from ml.inference import InputError, Scorer
from ml.registry import (
    IMAGE_AUTOENCODER,
    IMAGE_CLASSIFIER,
    AnyModelMetadata,
    CorruptModelError,
    ImageModelMetadata,
    LoadedModel,
    ModelRegistry,
    RegistryError,
    UnknownModelError,
)
from ml.service.metrics import install_metrics, scoring

logger = logging.getLogger(__name__)

MAX_SERIES = 256
MAX_TOTAL_STEPS = 2_000_000


class SeriesIn(BaseModel):
    """One series to score."""

    values: list[list[float | None]] = Field(
        description="Readings, one row per step, one column per model channel (in the "
                    "model's channel order); no gaps (null, NaN).")
    device_id: str | None = Field(default=None, description="Echoed back.")


class ScoreRequest(BaseModel):
    """Series to score with the active model."""

    series: list[SeriesIn] = Field(min_length=1, max_length=MAX_SERIES)


class SeriesScore(BaseModel):
    """Scores of one series."""

    device_id: str | None
    scores: list[float] = Field(description="Anomaly probability per step.")
    anomalous: list[bool] | None = Field(
        description="scores >= threshold per step; null when the model has no threshold.")
    anomalous_steps: int


class ScoreResponse(BaseModel):
    """Scores of every posted series."""

    model_id: str
    threshold: float | None
    channels: list[str]
    results: list[SeriesScore]


class LakeScoreRequest(BaseModel):
    """A device and time range to score from the lake."""

    device_id: str = Field(min_length=1, max_length=64, examples=["ESS-01"])
    start: datetime = Field(description="Inclusive start (ISO 8601; naive means UTC).")
    end: datetime = Field(description="Exclusive end.")


class IntervalOut(BaseModel):
    """An anomalous interval (a run of steps scoring at or above the threshold)."""

    start: datetime
    end: datetime = Field(description="Last anomalous step + one grid step (exclusive).")
    steps: int
    peak_score: float
    mean_score: float
    ongoing: bool = Field(description="Reaches the last scored step: it may continue.")


class LakeScoreResponse(BaseModel):
    """Scores of one device's lake series on the model's grid."""

    model_id: str
    device_id: str
    contract: str
    channels: list[str]
    step_ms: int
    threshold: float | None
    ts_ms: list[int] = Field(description="Grid instants (epoch ms UTC).")
    scores: list[float | None] = Field(
        description="Anomaly probability per step; null where unscored (a gap longer than "
                    "max_gap, or a stretch shorter than one window).")
    imputed: list[bool] = Field(description="The step's reading was interpolated.")
    anomalous: list[bool] | None
    intervals: list[IntervalOut]


class ModelInfo(BaseModel):
    """A model in the registry (series fields are null for image models)."""

    model_id: str
    kind: str = Field(description="anomalybert, image_classifier or image_autoencoder.")
    created: str
    active: bool
    contract: str | None
    channels: list[str]
    step_ms: int | None
    site: str | None
    window: int | None
    parent_id: str | None
    threshold: float | None
    f1: float | None
    pa_f1: float | None
    auc_pr: float | None


class ImageModelInfo(BaseModel):
    """An image model in the registry."""

    model_id: str
    kind: str
    created: str
    active: bool = Field(description="The model the predict endpoints use for its kind.")
    image_size: int
    threshold: float | None
    metrics: dict[str, Any] | None = Field(description="Test-split metrics: accuracy, "
                                           "roc_auc, pr_auc, f1, precision, recall.")
    data: dict[str, Any] = Field(description="Training data lineage.")


class ImagePrediction(BaseModel):
    """Result of scoring one image."""

    image_id: str | None
    model_id: str
    model_kind: str
    score: float
    threshold: float
    defect: bool
    label: str = Field(description="defect or normal.")
    heatmap: list[list[float]] | None = Field(
        description="Autoencoder: anomaly per cell of a coarse grid, 0..1 (row-major).")
    heatmap_shape: list[int] | None


class HealthOut(BaseModel):
    """Liveness."""

    status: str
    active_model: str | None


def model_info(meta: AnyModelMetadata, active_id: str | None) -> ModelInfo:
    """The public summary of a model."""
    metrics = meta.metrics or {}
    cfg = meta.model_config
    if isinstance(meta, ImageModelMetadata):
        return ModelInfo(
            model_id=meta.model_id, kind=meta.kind, created=meta.created,
            active=meta.model_id == active_id, contract=None, channels=[], step_ms=None,
            site=None, window=None, parent_id=None, threshold=meta.threshold,
            f1=metrics.get("f1"), pa_f1=None, auc_pr=metrics.get("pr_auc"))
    return ModelInfo(
        model_id=meta.model_id, kind=meta.kind, created=meta.created,
        active=meta.model_id == active_id,
        contract=meta.data.contract, channels=list(meta.data.channels),
        step_ms=meta.data.step_ms, site=meta.data.site,
        window=int(cfg.get("patch_size", 0)) * int(cfg.get("n_patches", 0)),
        parent_id=meta.parent_id, threshold=meta.threshold, f1=metrics.get("f1"),
        pa_f1=metrics.get("pa_f1"), auc_pr=metrics.get("auc_pr"),
    )


class ModelManager:
    """Holds the active model; activation swaps it atomically.

    Loading happens outside the lock (a slow or failing load never blocks scoring);
    only the reference swap is locked. A scoring request takes a snapshot of the active
    model and its scorer and uses it to the end.
    """

    def __init__(self, registry: ModelRegistry, batch_size: int = 64) -> None:
        self.registry = registry
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._active: tuple[LoadedModel, Scorer] | None = None

    def activate(self, model_id: str) -> LoadedModel:
        """Load ``model_id`` and make it active (raises registry errors)."""
        loaded = self.registry.load(model_id)
        scorer = loaded.scorer(batch_size=self.batch_size)
        with self._lock:
            self._active = (loaded, scorer)
        logger.info("active model: %s", model_id)
        return loaded

    def snapshot(self) -> tuple[LoadedModel, Scorer] | None:
        """The active model and its scorer (or None)."""
        with self._lock:
            return self._active

    @property
    def active_id(self) -> str | None:
        """Id of the active model."""
        snap = self.snapshot()
        return None if snap is None else snap[0].model_id


class ImageModels:
    """Loaded image models by id, and the active id of each kind (resolved once)."""

    def __init__(self, registry: ModelRegistry, settings: GridLakeSettings) -> None:
        self.registry = registry
        self.configured = {IMAGE_CLASSIFIER: settings.images.active_classifier,
                           IMAGE_AUTOENCODER: settings.images.active_autoencoder}
        self.batch_size = settings.ml.batch_size
        self._lock = threading.Lock()
        self._loaded: dict[str, LoadedImageModel] = {}
        self._active: dict[str, str] = {}

    def active_id(self, kind: str) -> str:
        """The active model of ``kind`` (raises NoImageModelError / UnknownModelError)."""
        with self._lock:
            known = self._active.get(kind)
        if known is not None:
            return known
        mid = active_image_model_id(self.registry, kind, self.configured[kind])
        with self._lock:
            self._active[kind] = mid
        return mid

    def active_ids(self) -> set[str]:
        """Ids resolved as active so far (and the configured ones)."""
        with self._lock:
            return set(self._active.values()) | {v for v in self.configured.values() if v}

    def get(self, kind: str, model_id: str | None) -> LoadedImageModel:
        """The model to score with (loaded on first use, then kept).

        Raises:
            HTTPException: 409 no model of the kind, or a corrupt model (with the reason).
            UnknownModelError: No such image model (404).

        """
        try:
            mid = model_id or self.active_id(kind)
            with self._lock:
                loaded = self._loaded.get(mid)
            if loaded is None:
                loaded = load_image_model(self.registry, mid, self.batch_size)
                with self._lock:
                    self._loaded[mid] = loaded
        except NoImageModelError as err:
            raise HTTPException(409, str(err)) from None
        except CorruptModelError as err:
            raise HTTPException(409, f"image model unusable: {err}") from None
        if loaded.metadata.kind != kind:
            raise HTTPException(422, f"model {loaded.model_id} is an "
                                     f"{loaded.metadata.kind}, not an {kind} (kind=...)")
        return loaded


def image_prediction(loaded: LoadedImageModel, image: np.ndarray,
                     image_id: str | None) -> ImagePrediction:
    """Score one decoded image ``(S, S, 3)``."""
    pred = loaded.model.predict(image[None])
    score = float(pred.scores[0])
    th = loaded.threshold
    heat = None if pred.heatmaps is None else pred.heatmaps[0]
    return ImagePrediction(
        image_id=image_id, model_id=loaded.model_id, model_kind=loaded.metadata.kind,
        score=score, threshold=th, defect=score >= th,
        label="defect" if score >= th else "normal",
        heatmap=None if heat is None else heat.astype(float).tolist(),
        heatmap_shape=None if heat is None else list(heat.shape))


def _image_kind(kind: str) -> str:
    if kind in ("classifier", IMAGE_CLASSIFIER):
        return IMAGE_CLASSIFIER
    if kind in ("autoencoder", IMAGE_AUTOENCODER):
        return IMAGE_AUTOENCODER
    raise HTTPException(422, f"kind: classifier or autoencoder, not {kind!r}")


def _to_array(index: int, s: SeriesIn, n_channels: int) -> np.ndarray:
    rows = s.values
    bad = [i for i, r in enumerate(rows) if len(r) != n_channels]
    if bad:
        raise InputError(f"series {index}: expected {n_channels} channels per step, step "
                         f"{bad[0]} has {len(rows[bad[0]])}")
    arr = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    return arr.reshape(len(rows), n_channels)


def _ms(name: str, t: datetime) -> int:
    try:
        return to_ms(t)
    except ValueError as err:  # e.g. 0001-01-01T00:00+05:00: before year 1 in UTC
        raise HTTPException(422, f"{name}: {err}") from None


def _lazy_spark(settings: GridLakeSettings, given: Any) -> Callable[[], Any]:
    """The session to read the lake with: ``given``, or one started on first use."""
    lock = threading.Lock()
    holder: list[Any] = [given]

    def get() -> Any:
        with lock:
            if holder[0] is None:
                try:
                    session = spark_session(settings, "gridlake-ml-service")
                except Exception as err:  # missing jars, JVM failing to start
                    raise LakeReadError(f"cannot start Spark: {err}") from err
                session.sparkContext.setLogLevel("ERROR")
                holder[0] = session
            return holder[0]

    return get


#: HTTP status of each library error the endpoints let through (a clear 4xx/503, never a 500).
ERROR_STATUS: dict[type[Exception], int] = {
    InputError: 422,
    UnknownModelError: 404,
    CorruptModelError: 422,
    NoDataError: 404,
    ImageDecodeError: 400,
    NoImageModelError: 409,
    LakeReadError: 503,
    SourceError: 422,
    RegistryError: 503,
}


def create_app(
    settings: GridLakeSettings | None = None,
    registry: ModelRegistry | None = None,
    activate: str | None = None,
    spark: Any = None,
) -> FastAPI:
    """Build the service.

    Args:
        settings: Settings (default: the environment's).
        registry: Model registry (default: the one ``settings.ml`` describes).
        activate: Model to activate at start; default ``settings.ml.active_model``, else
            the newest model. A failure is logged and the service starts without one.
        spark: Spark session for ``/score/lake`` (default: started on first use).

    """
    cfg = settings or load_settings()
    reg = registry or ModelRegistry.from_settings(cfg)
    manager = ModelManager(reg, cfg.ml.batch_size)
    lake_spark = _lazy_spark(cfg, spark)
    app = FastAPI(title="GridLake ML", version="0.1.0",
                  description="Equipment anomaly detection (AnomalyBERT).")
    app.state.manager = manager
    images = ImageModels(reg, cfg)
    app.state.images = images

    wanted = activate or cfg.ml.active_model
    try:
        if wanted is None:
            models = reg.series_models()
            wanted = models[-1].model_id if models else None
        if wanted is not None:
            manager.activate(wanted)
    except (RegistryError, OSError) as err:
        logger.warning("no model activated at start: %s", err)

    async def _as_status(request: Request, exc: Exception) -> JSONResponse:
        # the most specific class wins: UnknownModelError (404) is also a RegistryError (503)
        status = next(ERROR_STATUS[c] for c in type(exc).__mro__ if c in ERROR_STATUS)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    for error in ERROR_STATUS:
        app.add_exception_handler(error, _as_status)

    @app.get("/health", response_model=HealthOut)
    def health() -> HealthOut:
        """Liveness and the active model."""
        return HealthOut(status="ok", active_model=manager.active_id)

    @app.get("/models", response_model=list[ModelInfo])
    def list_models() -> list[ModelInfo]:
        """Every model in the registry, oldest first."""
        try:
            metas = reg.list_models()
        except OSError as err:
            raise HTTPException(503, f"model registry unreachable: {err}") from err
        active = manager.active_id
        image_active = images.active_ids()
        return [model_info(m, m.model_id if m.model_id in image_active else active)
                for m in metas]

    @app.post("/models/{model_id}/activate", response_model=ModelInfo)
    def activate_model(
        model_id: Annotated[str, Path(min_length=1, max_length=128)],
    ) -> ModelInfo:
        """Load a model and make it the active one (hot swap)."""
        try:
            loaded = manager.activate(model_id)
        except OSError as err:
            raise HTTPException(503, f"model registry unreachable: {err}") from err
        return model_info(loaded.metadata, loaded.model_id)

    @app.post("/score", response_model=ScoreResponse)
    def score(request: ScoreRequest) -> ScoreResponse:
        """Anomaly probability per step of every posted series (batched)."""
        snap = manager.snapshot()
        if snap is None:
            raise HTTPException(409, "no active model; POST /models/{model_id}/activate")
        loaded, scorer = snap
        total = sum(len(s.values) for s in request.series)
        if total > MAX_TOTAL_STEPS:
            raise HTTPException(413, f"at most {MAX_TOTAL_STEPS} steps per request")
        arrays = [_to_array(i, s, scorer.n_channels) for i, s in enumerate(request.series)]
        for i, arr in enumerate(arrays):
            try:
                scorer.check(arr)
            except InputError as err:
                raise InputError(f"series {i}: {err}") from None
        with scoring(loaded.metadata.kind, "score") as scored:
            scores = scorer.score(arrays)
            scored(total)
        th = loaded.metadata.threshold
        results = []
        for s, sc in zip(request.series, scores, strict=True):
            flags = None if th is None else (sc >= th)
            results.append(SeriesScore(
                device_id=s.device_id, scores=sc.tolist(),
                anomalous=None if flags is None else flags.tolist(),
                anomalous_steps=0 if flags is None else int(flags.sum()),
            ))
        return ScoreResponse(model_id=loaded.model_id, threshold=th,
                             channels=list(loaded.metadata.data.channels), results=results)

    @app.post("/score/lake", response_model=LakeScoreResponse)
    def score_lake(request: LakeScoreRequest) -> LakeScoreResponse:
        """Score one device over a time range read from the lake (nothing is written)."""
        snap = manager.snapshot()
        if snap is None:
            raise HTTPException(409, "no active model; POST /models/{model_id}/activate")
        loaded, scorer = snap
        data = loaded.metadata.data
        start_ms, end_ms = _ms("start", request.start), _ms("end", request.end)
        if end_ms <= start_ms:
            raise HTTPException(422, "end: must be after start")
        if (end_ms - start_ms) // data.step_ms > MAX_TOTAL_STEPS:
            raise HTTPException(413, f"at most {MAX_TOTAL_STEPS} steps of "
                                     f"{data.step_ms} ms per request")
        source = LakeSource(cfg, start_ms, end_ms, contract_by_name(data.contract),
                            (request.device_id,), channels=data.channels,
                            step_ms=data.step_ms, spark=lake_spark())
        th = loaded.metadata.threshold
        with scoring(loaded.metadata.kind, "score_lake") as scored:
            series = source.load()
            # without a threshold nothing is flagged: the scores alone are returned
            result = score_devices(scorer, series, float("inf") if th is None else th,
                                   data.step_ms)[0]
            scored(len(result.ts_ms))
        return LakeScoreResponse(
            model_id=loaded.model_id, device_id=request.device_id, contract=data.contract,
            channels=list(data.channels), step_ms=data.step_ms, threshold=th,
            ts_ms=result.ts_ms.tolist(),
            scores=[None if not np.isfinite(v) else float(v) for v in result.scores],
            imputed=result.imputed.tolist(),
            anomalous=None if th is None else result.anomalous.tolist(),
            intervals=[IntervalOut(start=from_ms(i.start_ms), end=from_ms(i.end_ms),
                                   steps=i.steps, peak_score=i.peak_score,
                                   mean_score=i.mean_score, ongoing=i.ongoing)
                       for i in result.intervals],
        )

    @app.get("/images/models", response_model=list[ImageModelInfo])
    def image_models() -> list[ImageModelInfo]:
        """The image models in the registry, oldest first, the active ones marked."""
        try:
            metas = reg.image_models()
        except OSError as err:
            raise HTTPException(503, f"model registry unreachable: {err}") from err
        active = set()
        for kind in (IMAGE_CLASSIFIER, IMAGE_AUTOENCODER):
            try:
                active.add(images.active_id(kind))
            except (NoImageModelError, UnknownModelError):
                pass  # no model of that kind: nothing to mark
        return [ImageModelInfo(model_id=m.model_id, kind=m.kind, created=m.created,
                               active=m.model_id in active,
                               image_size=int(m.preprocess.get("image_size", 0)),
                               threshold=m.threshold, metrics=m.metrics, data=m.data)
                for m in metas]

    async def _body(request: Request) -> bytes:
        ctype = request.headers.get("content-type", "application/octet-stream").lower()
        if not (ctype.startswith("image/") or ctype.startswith("application/octet-stream")):
            raise HTTPException(400, f"not an image: Content-Type {ctype!r} (send the raw "
                                     "file as image/* or application/octet-stream)")
        limit = cfg.images.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"image too large: {declared} bytes (limit {limit})")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"image too large: over {limit} bytes")
            chunks.append(chunk)
        if not size:
            raise HTTPException(400, "not an image: empty body")
        return b"".join(chunks)

    @app.post("/images/predict", response_model=ImagePrediction)
    async def predict_image(
        request: Request,
        kind: Annotated[str, Query(description="classifier or autoencoder")] = "classifier",
        model_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> ImagePrediction:
        """Score an uploaded image (raw bytes) with the active or given image model."""
        wanted = _image_kind(kind)
        data = await _body(request)
        loaded = await run_in_threadpool(images.get, wanted, model_id)
        image = await run_in_threadpool(decode_image, data, loaded.model.image_size,
                                        cfg.images.max_pixels)
        return await run_in_threadpool(image_prediction, loaded, image, None)

    def _lake_image(image_id: str, size: int) -> np.ndarray:
        index = lake_index(lake_spark(), cfg, image_ids=[image_id])
        if not len(index):
            raise HTTPException(404, f"no image {image_id} in ods_equipment_image")
        path = str(index.iloc[0]["path"])
        try:
            with WebHdfs.from_settings(cfg, timeout=60.0) as fs:
                data = fs.read(path)
        except LakeNotFound:
            raise HTTPException(404, f"image {image_id}: file {path} is missing on HDFS") \
                from None
        except LakeError as err:
            raise HTTPException(503, f"HDFS unreadable: {err}") from None
        try:
            return decode_image(data, size, cfg.images.max_pixels)
        except ImageDecodeError as err:
            raise HTTPException(422, f"image {image_id} in the lake is unusable: {err}") \
                from None

    @app.post("/images/lake/{image_id}/predict", response_model=ImagePrediction)
    def predict_lake_image(
        image_id: Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$")],
        kind: Annotated[str, Query(description="classifier or autoencoder")] = "classifier",
        model_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> ImagePrediction:
        """Score an image already imported into the lake."""
        loaded = images.get(_image_kind(kind), model_id)
        image = _lake_image(image_id.lower(), loaded.model.image_size)
        return image_prediction(loaded, image, image_id.lower())

    install_metrics(app, cfg.ml.metrics_public, manager.snapshot)
    return app
