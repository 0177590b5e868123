"""The model store: one directory per model with ``model.pt`` and ``metadata.json``.

Two families of models share it, told apart by ``metadata.json``'s ``kind``: AnomalyBERT
series models (``anomalybert``, :class:`ModelMetadata`, loaded by :meth:`ModelRegistry.load`)
and image models (``image_classifier``, ``image_autoencoder``: :class:`ImageModelMetadata`,
stored with :meth:`ModelRegistry.save_image` and read back by
:meth:`ModelRegistry.image_weights`; :mod:`ml.images.inference` rebuilds the network).
:meth:`ModelRegistry.list_models` lists both; :meth:`ModelRegistry.metadata` and
:meth:`ModelRegistry.load` are AnomalyBERT's and refuse an image model by id.

``model.pt`` holds only the network's ``state_dict`` (loaded with
``torch.load(weights_only=True)``); ``metadata.json`` holds everything needed to use
and judge it: the data description (contract, channels, units, step, site), the fitted
scaler, the network and training hyper-parameters, the evaluation metrics and decision
threshold, the parent model id (for transferred models) and the SHA-256 of
``model.pt``, checked on every load so that a corrupt or truncated checkpoint is
reported as :class:`CorruptModelError` instead of crashing its user.

Backends: :class:`LocalBackend` (a directory) and :class:`HdfsBackend` (through
GridLake's WebHDFS client, ``infra.lake.WebHdfs``; downloaded checkpoints are cached locally).
The metadata file is written last, so a model without it is invisible.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import torch

from infra.lake import LakeNotFound, WebHdfs
from infra.settings import GridLakeSettings
from ml.data.scaling import Scaler
from ml.data.sources import DataDescription
from ml.evaluation import Evaluation
from ml.inference import Scorer
from ml.models.anomalybert import AnomalyBert, AnomalyBertConfig

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
META_FILE = "metadata.json"
FORMAT_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RegistryError(Exception):
    """A registry operation failed."""


class UnknownModelError(RegistryError):
    """No model with that id (or the id is malformed)."""


class CorruptModelError(RegistryError):
    """A model's files exist but cannot be loaded (checksum, format, shapes)."""


class WrongKindError(UnknownModelError):
    """The model exists but is of another kind than the operation needs."""


ANOMALYBERT = "anomalybert"
IMAGE_CLASSIFIER = "image_classifier"
IMAGE_AUTOENCODER = "image_autoencoder"
IMAGE_KINDS: tuple[str, ...] = (IMAGE_CLASSIFIER, IMAGE_AUTOENCODER)
"""Kinds of image model (``ImageModelMetadata.kind``)."""


def valid_model_id(model_id: str) -> bool:
    """Whether ``model_id`` is a well-formed id (no path separators, no dot-dot)."""
    return bool(_ID.match(model_id)) and ".." not in model_id


def new_model_id(prefix: str = "anomalybert") -> str:
    """A fresh, sortable id: ``<prefix>-<UTC time>-<random hex>``."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", prefix).strip("-.") or "model"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{clean}-{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class ModelMetadata:
    """Everything stored next to a model's weights.

    Attributes:
        model_id: Id (directory name).
        created: Creation time, ISO-8601 UTC.
        data: What it was trained on.
        scaler: The fitted scaler (:meth:`Scaler.to_dict`).
        model_config: Network hyper-parameters.
        train_config: Training hyper-parameters.
        sha256: Checksum of ``model.pt``.
        kind: Model kind.
        metrics: Evaluation (:meth:`Evaluation.to_dict`), if evaluated.
        threshold: Decision threshold on the anomaly probability, if chosen.
        parent_id: Model this one was fine-tuned from.
        extra: Free-form additions (training time, losses).
        format_version: Layout version of the stored files.

    """

    model_id: str
    created: str
    data: DataDescription
    scaler: dict[str, Any]
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    sha256: str
    kind: str = "anomalybert"
    metrics: dict[str, Any] | None = None
    threshold: float | None = None
    parent_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def evaluation(self) -> Evaluation | None:
        """The stored evaluation, if any."""
        return None if self.metrics is None else Evaluation.from_dict(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model_id": self.model_id, "created": self.created, "kind": self.kind,
            "data": self.data.to_dict(), "scaler": self.scaler,
            "model_config": self.model_config, "train_config": self.train_config,
            "sha256": self.sha256, "metrics": self.metrics, "threshold": self.threshold,
            "parent_id": self.parent_id, "extra": self.extra,
            "format_version": self.format_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMetadata:
        """Inverse of :meth:`to_dict`."""
        return cls(
            model_id=str(d["model_id"]), created=str(d["created"]),
            data=DataDescription.from_dict(d["data"]), scaler=dict(d["scaler"]),
            model_config=dict(d["model_config"]), train_config=dict(d["train_config"]),
            sha256=str(d["sha256"]), kind=str(d.get("kind", "anomalybert")),
            metrics=d.get("metrics"), threshold=d.get("threshold"),
            parent_id=d.get("parent_id"), extra=dict(d.get("extra") or {}),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
        )


@dataclass(frozen=True)
class ImageModelMetadata:
    """Everything stored next to an image model's weights.

    Attributes:
        model_id: Id (directory name).
        created: Creation time, ISO-8601 UTC.
        kind: ``image_classifier`` or ``image_autoencoder``.
        data: Lineage of the training data: ``source`` (``folder`` or ``lake``), the
            description file and its SHA-256 or the lake selection and the SHA-256 of its
            sorted image ids, image counts per split and class, the split seed.
        preprocess: How an image becomes the network's input (``image_size``, ``resize``).
        model_config: Network hyper-parameters.
        train_config: Training hyper-parameters.
        sha256: Checksum of ``model.pt``.
        calibration: Score normalisation and heat-map scale fitted on validation
            normals (autoencoder); empty for the classifier.
        metrics: Test-split metrics (accuracy, ROC AUC, PR AUC, F1, ...), if evaluated.
        threshold: Decision threshold on the score, chosen on the validation split.
        extra: Free-form additions (training time, images/s, losses).
        format_version: Layout version of the stored files.

    """

    model_id: str
    created: str
    kind: str
    data: dict[str, Any]
    preprocess: dict[str, Any]
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    sha256: str
    calibration: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    threshold: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def parent_id(self) -> str | None:
        """Image models are never fine-tuned from another (kept for uniform listings)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageModelMetadata:
        """Inverse of :meth:`to_dict`."""
        kind = str(d["kind"])
        if kind not in IMAGE_KINDS:
            raise ValueError(f"not an image model kind: {kind!r}")
        return cls(
            model_id=str(d["model_id"]), created=str(d["created"]), kind=kind,
            data=dict(d["data"]), preprocess=dict(d["preprocess"]),
            model_config=dict(d["model_config"]), train_config=dict(d["train_config"]),
            sha256=str(d["sha256"]),
            calibration={str(k): float(v) for k, v in (d.get("calibration") or {}).items()},
            metrics=d.get("metrics"), threshold=d.get("threshold"),
            extra=dict(d.get("extra") or {}),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
        )


AnyModelMetadata = ModelMetadata | ImageModelMetadata
"""Metadata of a model of any kind."""


def metadata_from_dict(d: dict[str, Any]) -> AnyModelMetadata:
    """The metadata class of ``d``'s kind (no kind: AnomalyBERT, the first stored models)."""
    if d.get("kind") in IMAGE_KINDS:
        return ImageModelMetadata.from_dict(d)
    return ModelMetadata.from_dict(d)


@dataclass
class LoadedModel:
    """A model ready to score."""

    metadata: ModelMetadata
    model: AnomalyBert
    scaler: Scaler

    @property
    def model_id(self) -> str:
        """The model's id."""
        return self.metadata.model_id

    def scorer(self, batch_size: int = 64, stride: int | None = None) -> Scorer:
        """A :class:`Scorer` for this model."""
        return Scorer(self.model, self.scaler, batch_size=batch_size, stride=stride)


class StorageBackend(Protocol):
    """Byte storage addressed by ``<model id>/<file name>`` under a root."""

    def write(self, path: str, data: bytes) -> None:
        """Write (replace) a file."""
        ...

    def read(self, path: str) -> bytes:
        """Read a file; raises FileNotFoundError when absent."""
        ...

    def exists(self, path: str) -> bool:
        """Whether a file exists."""
        ...

    def list_ids(self) -> list[str]:
        """Names of the directories under the root."""
        ...

    def describe(self) -> str:
        """Human-readable location."""
        ...


class LocalBackend:
    """A local directory (writes are atomic renames)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def write(self, path: str, data: bytes) -> None:
        """Write (replace) a file."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)

    def read(self, path: str) -> bytes:
        """Read a file."""
        return (self.root / path).read_bytes()

    def exists(self, path: str) -> bool:
        """Whether a file exists."""
        return (self.root / path).is_file()

    def list_ids(self) -> list[str]:
        """Directories under the root."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def describe(self) -> str:
        """The directory."""
        return str(self.root)


class HdfsBackend:
    """A directory on HDFS, through WebHDFS (:class:`infra.lake.WebHdfs`).

    Args:
        url: WebHDFS address (``settings.hdfs.webhdfs_url``).
        user: HDFS user (``settings.hdfs.user``).
        root: Registry root on HDFS (``settings.ml.hdfs_root``).
        timeout: Seconds per request.
        replication: Replication factor of written files (``settings.hdfs.replication``).

    """

    def __init__(self, url: str, user: str, root: str, timeout: float = 30.0,
                 replication: int | None = None) -> None:
        self.url = url
        self.root = root.rstrip("/") or "/"
        self.client = WebHdfs(url, user, timeout, replication=replication)

    def _path(self, path: str) -> str:
        return f"{self.root}/{path}"

    def write(self, path: str, data: bytes) -> None:
        """Write (replace) a file."""
        self.client.write(self._path(path), data)

    def read(self, path: str) -> bytes:
        """Read a file."""
        try:
            return self.client.read(self._path(path))
        except LakeNotFound as err:
            raise FileNotFoundError(self._path(path)) from err

    def exists(self, path: str) -> bool:
        """Whether a file exists."""
        return self.client.exists(self._path(path))

    def list_ids(self) -> list[str]:
        """Directories under the root."""
        if not self.client.exists(self.root):
            return []
        return sorted(st.name for st in self.client.list_status(self.root) if st.is_dir)

    def describe(self) -> str:
        """``webhdfs-url/root``."""
        return f"{self.url}{self.root}"


class ModelRegistry:
    """Save, list and load models on a storage backend.

    Args:
        backend: Where the files live.
        cache_dir: Local cache of downloaded checkpoints (for remote backends).

    """

    def __init__(self, backend: StorageBackend, cache_dir: Path | None = None) -> None:
        self.backend = backend
        self.cache_dir = cache_dir

    @classmethod
    def from_settings(cls, settings: GridLakeSettings) -> ModelRegistry:
        """The registry ``settings.ml`` describes (HDFS with a local cache, or local)."""
        local = settings.ml.local_dir or settings.home / "models"
        if settings.ml.registry == "local":
            return cls(LocalBackend(local / "registry"))
        if settings.ml.registry != "hdfs":
            raise RegistryError(f"unknown registry backend {settings.ml.registry!r}")
        backend = HdfsBackend(settings.hdfs.webhdfs_url, settings.hdfs.user,
                              settings.ml.hdfs_root, replication=settings.hdfs.replication)
        return cls(backend, cache_dir=local / "cache")

    def save(
        self,
        model: AnomalyBert,
        scaler: Scaler,
        data: DataDescription,
        train_config: dict[str, Any],
        metrics: Evaluation | None = None,
        threshold: float | None = None,
        parent_id: str | None = None,
        extra: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> ModelMetadata:
        """Store a model; returns its metadata (with the new id).

        Raises:
            RegistryError: Malformed or already used id, or mismatched channels.

        """
        mid = model_id or new_model_id(f"anomalybert-{data.contract}")
        self._check_new(mid)
        if scaler.n_channels != model.config.n_channels or data.n_channels != scaler.n_channels:
            raise RegistryError("model, scaler and data disagree on the channel count")
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        blob = buf.getvalue()
        meta = ModelMetadata(
            model_id=mid, created=datetime.now(UTC).isoformat(timespec="microseconds"),
            data=data, scaler=scaler.to_dict(), model_config=model.config.to_dict(),
            train_config=train_config, sha256=hashlib.sha256(blob).hexdigest(),
            metrics=None if metrics is None else metrics.to_dict(), threshold=threshold,
            parent_id=parent_id, extra=extra or {},
        )
        self.backend.write(f"{mid}/{MODEL_FILE}", blob)
        self._write_meta(meta)
        logger.info("saved model %s to %s", mid, self.backend.describe())
        return meta

    def _check_new(self, mid: str) -> None:
        if not valid_model_id(mid):
            raise RegistryError(f"malformed model id {mid!r}")
        if self.backend.exists(f"{mid}/{META_FILE}"):
            raise RegistryError(f"model {mid} already exists")

    def save_image(
        self,
        model: torch.nn.Module,
        kind: str,
        model_config: dict[str, Any],
        data: dict[str, Any],
        preprocess: dict[str, Any],
        train_config: dict[str, Any],
        calibration: dict[str, float] | None = None,
        metrics: dict[str, Any] | None = None,
        threshold: float | None = None,
        extra: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> ImageModelMetadata:
        """Store an image model (its ``state_dict``); returns its metadata (with the new id).

        Raises:
            RegistryError: Unknown kind, malformed or already used id.

        """
        if kind not in IMAGE_KINDS:
            raise RegistryError(f"unknown image model kind {kind!r}")
        mid = model_id or new_model_id(kind.replace("_", "-"))
        self._check_new(mid)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        blob = buf.getvalue()
        meta = ImageModelMetadata(
            model_id=mid, created=datetime.now(UTC).isoformat(timespec="microseconds"),
            kind=kind, data=data, preprocess=preprocess, model_config=model_config,
            train_config=train_config, sha256=hashlib.sha256(blob).hexdigest(),
            calibration=calibration or {}, metrics=metrics, threshold=threshold,
            extra=extra or {},
        )
        self.backend.write(f"{mid}/{MODEL_FILE}", blob)
        self._write_meta(meta)
        logger.info("saved %s model %s to %s", kind, mid, self.backend.describe())
        return meta

    def _write_meta(self, meta: AnyModelMetadata) -> None:
        text = json.dumps(meta.to_dict(), indent=2, sort_keys=True, allow_nan=True)
        self.backend.write(f"{meta.model_id}/{META_FILE}", text.encode())

    def info(self, model_id: str) -> AnyModelMetadata:
        """A model's metadata, whatever its kind.

        Raises:
            UnknownModelError: No such model.
            CorruptModelError: Unreadable metadata.

        """
        if not valid_model_id(model_id):
            raise UnknownModelError(f"malformed model id {model_id!r}")
        try:
            raw = self.backend.read(f"{model_id}/{META_FILE}")
        except FileNotFoundError:
            raise UnknownModelError(f"no model {model_id!r}") from None
        try:
            return metadata_from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError) as err:
            raise CorruptModelError(f"model {model_id}: unreadable metadata ({err})") from err

    def metadata(self, model_id: str) -> ModelMetadata:
        """An AnomalyBERT model's metadata.

        Raises:
            UnknownModelError: No such model.
            WrongKindError: The model is an image model.
            CorruptModelError: Unreadable metadata.

        """
        meta = self.info(model_id)
        if not isinstance(meta, ModelMetadata):
            raise WrongKindError(f"model {model_id} is an {meta.kind} model, not AnomalyBERT")
        return meta

    def image_metadata(self, model_id: str) -> ImageModelMetadata:
        """An image model's metadata.

        Raises:
            UnknownModelError: No such model.
            WrongKindError: The model is not an image model.
            CorruptModelError: Unreadable metadata.

        """
        meta = self.info(model_id)
        if not isinstance(meta, ImageModelMetadata):
            raise WrongKindError(f"model {model_id} is an AnomalyBERT model, not an image "
                                 "model")
        return meta

    def list_models(self) -> list[AnyModelMetadata]:
        """Metadata of every readable model of any kind, oldest first.

        Unreadable ones are logged and left out.
        """
        out: list[AnyModelMetadata] = []
        for mid in self.backend.list_ids():
            if not valid_model_id(mid):
                continue
            try:
                out.append(self.info(mid))
            except RegistryError as err:
                logger.warning("skipping %s: %s", mid, err)
        return sorted(out, key=lambda m: (m.created, m.model_id))

    def series_models(self) -> list[ModelMetadata]:
        """The AnomalyBERT models of :meth:`list_models`."""
        return [m for m in self.list_models() if isinstance(m, ModelMetadata)]

    def image_models(self, kind: str | None = None) -> list[ImageModelMetadata]:
        """The image models of :meth:`list_models` (of one kind when given), oldest first."""
        return [m for m in self.list_models()
                if isinstance(m, ImageModelMetadata) and kind in (None, m.kind)]

    def update(self, model_id: str, metrics: Evaluation | None = None,
               threshold: float | None = None) -> ModelMetadata:
        """Replace a model's metrics and threshold (the weights never change)."""
        meta = self.metadata(model_id)
        new = ModelMetadata(**{**vars(meta),
                               "metrics": meta.metrics if metrics is None else metrics.to_dict(),
                               "threshold": meta.threshold if threshold is None else threshold})
        self._write_meta(new)
        return new

    def update_image(self, model_id: str, metrics: dict[str, Any] | None = None,
                     threshold: float | None = None) -> ImageModelMetadata:
        """Replace an image model's metrics and threshold (the weights never change)."""
        meta = self.image_metadata(model_id)
        new = dataclasses.replace(
            meta, metrics=meta.metrics if metrics is None else metrics,
            threshold=meta.threshold if threshold is None else threshold)
        self._write_meta(new)
        return new

    def image_weights(self, model_id: str) -> tuple[ImageModelMetadata, dict[str, Any]]:
        """An image model's metadata and ``state_dict`` (checksum verified).

        Raises:
            UnknownModelError: No such model (or not an image model).
            CorruptModelError: Checksum mismatch, missing or unreadable checkpoint.

        """
        meta = self.image_metadata(model_id)
        blob = self._weights(meta)
        if hashlib.sha256(blob).hexdigest() != meta.sha256:
            raise CorruptModelError(f"model {model_id}: {MODEL_FILE} checksum mismatch")
        try:
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as err:  # any failure to read means a corrupt model
            raise CorruptModelError(f"model {model_id}: cannot load ({err})") from err
        if not isinstance(state, dict):
            raise CorruptModelError(f"model {model_id}: {MODEL_FILE} is not a state_dict")
        return meta, state

    def _weights(self, meta: AnyModelMetadata) -> bytes:
        cached = None if self.cache_dir is None else self.cache_dir / meta.model_id / MODEL_FILE
        if cached is not None and cached.is_file():
            blob = cached.read_bytes()
            if hashlib.sha256(blob).hexdigest() == meta.sha256:
                return blob
        try:
            blob = self.backend.read(f"{meta.model_id}/{MODEL_FILE}")
        except FileNotFoundError:
            raise CorruptModelError(f"model {meta.model_id}: {MODEL_FILE} is missing") from None
        if cached is not None and hashlib.sha256(blob).hexdigest() == meta.sha256:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + ".tmp")
            tmp.write_bytes(blob)
            tmp.replace(cached)
        return blob

    def load(self, model_id: str) -> LoadedModel:
        """Load a model ready to score.

        Raises:
            UnknownModelError: No such model.
            CorruptModelError: Checksum mismatch, unreadable checkpoint or metadata.

        """
        meta = self.metadata(model_id)
        blob = self._weights(meta)
        if hashlib.sha256(blob).hexdigest() != meta.sha256:
            raise CorruptModelError(f"model {model_id}: {MODEL_FILE} checksum mismatch")
        try:
            config = AnomalyBertConfig.from_dict(meta.model_config)
            scaler = Scaler.from_dict(meta.scaler)
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
            model = AnomalyBert(config)
            model.load_state_dict(state, strict=True)
        except Exception as err:  # any failure to rebuild means a corrupt model
            raise CorruptModelError(f"model {model_id}: cannot load ({err})") from err
        if scaler.n_channels != config.n_channels:
            raise CorruptModelError(f"model {model_id}: scaler and network disagree")
        return LoadedModel(meta, model.eval(), scaler)
