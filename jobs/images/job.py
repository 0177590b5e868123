"""The image import (``gridlake images import``): image files → HDFS, index rows → the lake.

One run (an *import batch*):

1. opens the PATHs (:mod:`jobs.images.sources`) and reads each one's description file
   (a missing required column stops the batch before anything is read or written);
2. reads the current ``dim_device`` rows and the image ids already in
   ``ods_equipment_image`` from their Parquet files (no JVM; Spark for a table that needs
   it);
3. **check pass** (``images.upload_workers`` threads): each file is read, hashed (SHA-256:
   the image id) and verified with Pillow; its description row is checked against the
   vocabularies and the device registry (:mod:`jobs.images.checks`);
4. **upload pass** (same threads): each accepted file — and each already-indexed one, so
   that a file lost from HDFS comes back — goes to its content-addressed path
   ``{images.hdfs_root}/{sha[:2]}/{sha}.{ext}`` with the stack's replication; a file
   already there with the same length is not sent again (idempotent, resumable);
5. writes the index rows of every file uploaded in this run, in one Hudi upsert (Spark,
   started only now: a re-import that adds nothing never starts it).

Nothing is half-written: a row is written only after its file's upload completed, and the
rows of a batch are one commit (a run killed before it leaves files on HDFS but no rows:
the next run finds the files and writes the rows). A re-import finds every id in the
index and writes nothing (``already_imported``).
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from infra.lake import (
    LakeError,
    LakeNotFound,
    LakeUnavailable,
    NeedsSpark,
    WebHdfs,
    hudi_table_path,
    lake_path,
    read_table_config,
    read_timeline,
    snapshot_files,
)
from infra.settings import GridLakeSettings
from infra.spark import frame_to_spark, read_table, spark_scope, with_retries, write_options
from jobs.images.checks import (
    Description,
    Device,
    ImageInfo,
    ImportBatchError,
    Refusal,
    check_description,
    image_path,
    inspect_image,
    normalise_name,
    read_descriptions,
    sha256,
)
from jobs.images.sources import Source, Sources
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import DIM_DEVICE, ODS_EQUIPMENT_IMAGE
from lakehouse.time import dt_of

log = logging.getLogger(__name__)

ACCEPTED, ALREADY, REFUSED = "accepted", "already_imported", "refused"

#: ``progress(phase, done, total)``: ``phase`` is ``check`` or ``upload``.
Progress = Callable[[str, int, int], None]


@dataclass
class FileReport:
    """The outcome of one file or description row.

    Attributes:
        source: The PATH it came from.
        file: Its name in the folder or archive.
        status: ``accepted``, ``already_imported`` or ``refused``.
        reason: The refusal's code (:data:`jobs.images.checks.REASONS`), else "".
        detail: Why, in words.
        image_id: SHA-256 of the file, when it was read.
        path: Its HDFS path (accepted and already imported files).
        bytes: Its size, when it was read.

    """

    source: str
    file: str
    status: str
    reason: str = ""
    detail: str = ""
    image_id: str = ""
    path: str = ""
    bytes: int = 0


@dataclass
class ImportResult:
    """What a run did.

    Attributes:
        batch_id: The import batch id (``import_batch`` of the rows it wrote).
        files: One report per file and per description row without a file.
        rows: Index rows written.
        uploaded: Files sent to HDFS (the others were there already).
        uploaded_bytes: Bytes sent.
        read_s: Seconds reading the device registry and the index (Spark).
        check_s: Seconds hashing and verifying.
        upload_s: Seconds uploading.
        write_s: Seconds writing the index rows.

    """

    batch_id: str
    files: list[FileReport] = field(default_factory=list)
    rows: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0
    read_s: float = 0.0
    check_s: float = 0.0
    upload_s: float = 0.0
    write_s: float = 0.0

    def counts(self) -> dict[str, int]:
        """Files per status, and refusals per reason (``refused:<reason>``)."""
        out: dict[str, int] = {ACCEPTED: 0, ALREADY: 0, REFUSED: 0}
        for f in self.files:
            out[f.status] += 1
            if f.reason:
                out[f"refused:{f.reason}"] = out.get(f"refused:{f.reason}", 0) + 1
        return out

    @property
    def accepted_bytes(self) -> int:
        """Bytes of the accepted files."""
        return sum(f.bytes for f in self.files if f.status == ACCEPTED)

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no per-file rows)."""
        return {"batch_id": self.batch_id, **self.counts(), "rows": self.rows,
                "uploaded": self.uploaded, "uploaded_bytes": self.uploaded_bytes,
                "read_s": round(self.read_s, 3), "check_s": round(self.check_s, 3),
                "upload_s": round(self.upload_s, 3), "write_s": round(self.write_s, 3)}

    def write_report(self, path: Path) -> None:
        """The per-file report as CSV (``.csv``) or JSON (anything else)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [asdict(f) for f in self.files]
        if path.suffix.lower() == ".csv":
            with path.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(FileReport.__dataclass_fields__))
                w.writeheader()
                w.writerows(rows)
        else:
            path.write_text(json.dumps({"summary": self.summary(), "files": rows}, indent=1))


def new_batch_id() -> str:
    """A fresh import batch id: ``img-<UTC time>-<random>``."""
    return f"img-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------------ planning
@dataclass
class _Item:
    """One file of the batch through the passes."""

    source: Source
    name: str
    local: Path | None
    row: dict[str, str] | None
    order: int
    info: ImageInfo | None = None
    desc: Description | None = None
    refusal: Refusal | None = None
    status: str = ""

    def report(self, root: str) -> FileReport:
        info = self.info
        return FileReport(
            self.source.name, self.name, self.status or REFUSED,
            self.refusal.reason if self.refusal else "",
            self.refusal.detail if self.refusal else "",
            info.image_id if info else "",
            image_path(root, info) if info and self.status in (ACCEPTED, ALREADY) else "",
            info.bytes if info else 0)


def plan(sources: list[Source], descriptions: Path | None) -> list[_Item]:
    """Pair every file with its description row.

    A file without a row is refused as ``no_description``, a row without a file as
    ``missing_file``, a second row for the same file as ``duplicate_in_batch``.

    Raises:
        ImportBatchError: A source without a description file (and none given), or a bad
            description file.

    """
    items: list[_Item] = []
    for src in sources:
        desc_file = descriptions or src.descriptions
        if desc_file is None:
            raise ImportBatchError(f"{src.name}: no descriptions.csv or descriptions.parquet "
                                   "at its top; give one with --descriptions")
        frame = read_descriptions(desc_file)
        rows: dict[str, dict[str, str]] = {}
        for raw in frame.to_dict("records"):
            row = {str(k): str(v) for k, v in raw.items()}
            name = normalise_name(row["file"])
            if name is None:
                items.append(_Item(src, row["file"], None, row, len(items),
                                   refusal=Refusal("missing_file", "unsafe or empty file "
                                                   "name in the description file")))
            elif name in rows:
                items.append(_Item(src, name, None, row, len(items), refusal=Refusal(
                    "duplicate_in_batch", "a second description row for this file")))
            else:
                rows[name] = row
        for name, refusal in src.refused.items():
            items.append(_Item(src, name, None, rows.pop(name, None), len(items),
                               refusal=refusal))
        for name, local in src.files.items():
            described = rows.pop(name, None)
            items.append(_Item(src, name, local, described, len(items),
                               refusal=None if described else
                               Refusal("no_description", "no row of the description file "
                                       "names this file")))
        for name, left in rows.items():
            items.append(_Item(src, name, None, left, len(items), refusal=Refusal(
                "missing_file", "described but not in the folder or archive")))
    return items


def _check(item: _Item, devices: dict[str, Device], max_bytes: int,
           max_pixels: int) -> None:
    assert item.local is not None and item.row is not None
    desc = check_description(item.row, devices)
    if isinstance(desc, Refusal):
        item.refusal = desc
        return
    item.desc = desc
    try:
        size = item.local.stat().st_size
        if size > max_bytes:
            item.refusal = Refusal("too_large", f"{size} bytes > {max_bytes} "
                                   "(images.max_bytes)")
            return
        data = item.local.read_bytes()
    except OSError as err:
        item.refusal = Refusal("missing_file", f"cannot be read: {err}")
        return
    got = inspect_image(data, max_bytes, max_pixels)
    if isinstance(got, Refusal):
        item.refusal = got
    else:
        item.info = got


def resolve(items: list[_Item], indexed: set[str]) -> None:
    """Mark checked files accepted, already imported, or duplicates of an earlier file."""
    seen: dict[str, _Item] = {}
    for item in sorted(items, key=lambda i: i.order):
        if item.refusal is not None or item.info is None:
            continue
        first = seen.get(item.info.image_id)
        if first is not None:
            item.refusal = Refusal("duplicate_in_batch", f"same bytes as {first.name} "
                                   f"({first.source.name})")
            continue
        seen[item.info.image_id] = item
        item.status = ALREADY if item.info.image_id in indexed else ACCEPTED


def index_row(item: _Item, root: str, devices: dict[str, Device], batch_id: str,
              imported_ms: int) -> dict[str, Any]:
    """The ``ods_equipment_image`` row of an accepted file."""
    info, desc = item.info, item.desc
    assert info is not None and desc is not None
    dev = devices[desc.asset_id]
    return {
        "image_id": info.image_id, "path": image_path(root, info), "bytes": info.bytes,
        "format": info.format, "width": info.width, "height": info.height,
        "asset_id": desc.asset_id, "asset_type": dev.device_type, "region_id": dev.region_id,
        # a substation's photo belongs to the substation itself
        "substation_id": dev.substation_id or (
            desc.asset_id if dev.device_type == "substation" else None),
        "captured_ts": desc.captured_ts,
        "camera": desc.camera, "inspector": desc.inspector, "component": desc.component,
        "label": desc.label, "source_file": item.name, "import_batch": batch_id,
        "imported_ts": imported_ms, "dt": dt_of(desc.captured_ts),
    }


# ------------------------------------------------------------------------ lake I/O
def read_snapshot(fs: WebHdfs, settings: GridLakeSettings, table: TableContract,
                  columns: list[str]) -> pd.DataFrame | None:
    """A copy-on-write table's latest snapshot from its Parquet base files, no JVM.

    Per file group the newest base file of a committed instant (:func:`infra.lake.
    snapshot_files`), every partition. None when there is no table.

    Raises:
        NeedsSpark: Merge-on-read log files or replaced file groups: read it with Spark.
        LakeError: WebHDFS failed.

    """
    base = lake_path(settings, table.layer, table.name)
    try:
        tl = read_timeline(fs, base)
    except LakeNotFound:
        return None
    if "replacecommit" in tl.actions:
        raise NeedsSpark("replaced file groups (clustering): read with Spark")
    folders = ([f"{base}/{e.name}" for e in fs.list_status(base)
                if e.is_dir and not e.name.startswith(".")]
               if table.partition_fields else [base])
    parts = []
    for folder in folders:
        for name in snapshot_files(fs.list_status(folder), tl):
            parts.append(pq.read_table(pa.BufferReader(fs.read(f"{folder}/{name}")),
                                       columns=columns))
    if not parts:
        return pd.DataFrame(columns=columns)
    return pa.concat_tables(parts, promote_options="permissive").to_pandas()


class Lake:
    """What the import reads from and writes to the lake (WebHDFS, and Spark to write).

    The registry and the index ids are read from their Parquet files without a JVM
    (:func:`read_snapshot`; Spark only when a table needs it); a Spark session is started
    only when there are rows to write. Tests replace it to run the passes without a stack.

    Args:
        settings: Lake and HDFS settings.
        spark: A session to use (default: one started when needed, stopped by
            :meth:`close`).

    """

    def __init__(self, settings: GridLakeSettings, spark: Any = None) -> None:
        self.settings = settings
        self.spark = spark
        self._given_spark = spark
        self._spark_scope = ExitStack()
        self._local = threading.local()
        self._clients: list[WebHdfs] = []
        self._lock = threading.Lock()

    def session(self) -> Any:
        """The Spark session (started on first use)."""
        if self.spark is None:
            self.spark = self._spark_scope.enter_context(
                spark_scope(self.settings, "gridlake-images-import"))
        return self.spark

    def _read(self, table: TableContract, columns: list[str],
              where: str | None = None) -> pd.DataFrame:
        try:
            frame = read_snapshot(self._fs(), self.settings, table, columns)
            return pd.DataFrame(columns=columns) if frame is None else frame
        except NeedsSpark as err:
            log.info("%s: %s; reading it with Spark", table.name, err)
        df = read_table(self.session(), self.settings, table)
        return (df.where(where) if where else df).select(*columns).toPandas()

    def _fs(self) -> WebHdfs:
        fs: WebHdfs | None = getattr(self._local, "fs", None)
        if fs is None:
            fs = WebHdfs.from_settings(self.settings, timeout=60.0)
            self._local.fs = fs
            with self._lock:
                self._clients.append(fs)
        return fs

    def close(self) -> None:
        """Close the WebHDFS clients; stop the Spark session this object started."""
        with self._lock:
            for fs in self._clients:
                fs.close()
            self._clients.clear()
        self._spark_scope.close()  # nothing to close when the session was given
        self.spark = self._given_spark

    def _exists(self, fs: WebHdfs, table: Any) -> bool:
        return read_table_config(fs, lake_path(self.settings, table.layer, table.name)) \
            is not None

    def require_registry(self) -> None:
        """Raise unless the lake has ``dim_device`` (checked before Spark starts).

        Raises:
            ImportBatchError: No ``dim_device`` table in the lake.
            LakeError: WebHDFS unreachable.

        """
        if not self._exists(self._fs(), DIM_DEVICE):
            raise ImportBatchError(
                f"the lake has no {DIM_DEVICE.name} table under {self.settings.hdfs.lake_root}: "
                "images are checked against the device registry, which the streaming job "
                "writes there (run the platform, or the simulator with the stream job, first)")

    def devices(self) -> dict[str, Device]:
        """Current ``dim_device`` rows.

        Raises:
            ImportBatchError: No ``dim_device`` table in the lake.
            LakeError: WebHDFS unreachable.

        """
        self.require_registry()
        frame = self._read(DIM_DEVICE, ["device_id", "device_type", "region_id",
                                        "substation_id", "is_current"], "`is_current`")
        out: dict[str, Device] = {}
        for r in frame[frame["is_current"].astype(bool)].to_dict("records"):
            out[str(r["device_id"])] = Device(str(r["device_type"]), r["region_id"],
                                              r["substation_id"])
        return out

    def indexed(self) -> set[str]:
        """Image ids already in ``ods_equipment_image`` (empty without the table)."""
        frame = self._read(ODS_EQUIPMENT_IMAGE, ["image_id"])
        return {str(i) for i in frame["image_id"]}

    def upload(self, path: str, data: bytes) -> bool:
        """Put one file at ``path`` unless a file of the same length is there.

        Returns:
            Whether it was sent.

        """
        fs = self._fs()
        st = fs.status(path)
        if st is not None and not st.is_dir and st.length == len(data):
            return False
        fs.write(path, data, overwrite=True, replication=self.settings.hdfs.replication)
        return True

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """One Hudi upsert of the index rows.

        Raises:
            LakeError: The write failed (the files stay on HDFS; a rerun writes the rows).

        """
        table = ODS_EQUIPMENT_IMAGE
        frame = pd.DataFrame(rows, columns=table.field_names)
        try:
            typed = frame_to_spark(self.session(), table, frame)
            path = hudi_table_path(self.settings, table)
            with_retries(lambda: typed.write.format("hudi").options(
                **write_options(self.settings, table)).mode("append").save(path),
                table.name)
        except Exception as err:  # noqa: BLE001 - py4j wraps the JVM's error: said, not hidden
            raise LakeError(f"writing {len(rows)} row(s) to {table.name} failed (the files "
                            f"are on HDFS; import again to write them): "
                            f"{str(err)[:500]}") from err


# ------------------------------------------------------------------------ the run
def run_import(settings: GridLakeSettings, paths: list[Path], *,
               descriptions: Path | None = None, batch_id: str | None = None,
               spark: Any = None, lake: Lake | None = None,
               progress: Progress | None = None) -> ImportResult:
    """Import folders or archives of images and their descriptions (module docstring).

    Args:
        settings: HDFS, lake, Spark and image settings.
        paths: Folders or archives.
        descriptions: Description file for a single PATH (default: its own
            ``descriptions.csv``/``.parquet``).
        batch_id: Id of this import (default: a new one).
        spark: A session to use (default: a new one if rows are to be written, stopped
            at the end).
        lake: Lake access (tests); default: Spark and WebHDFS of ``settings``.
        progress: Called as files are checked and uploaded.

    Raises:
        ImportBatchError: The batch as a whole is bad (description file, paths, no
            ``dim_device``); nothing written.
        LakeError: HDFS unreachable.

    """
    if not paths:
        raise ImportBatchError("no PATH to import")
    if descriptions is not None and len(paths) > 1:
        raise ImportBatchError("--descriptions names the files of one PATH; import several "
                               "PATHs with their own descriptions.csv, or one at a time")
    cfg = settings.images
    result = ImportResult(batch_id or new_batch_id())
    with Sources(paths, cfg.max_bytes) as sources:
        items = plan(sources, descriptions)
        todo = [i for i in items if i.refusal is None]
        if lake is not None:
            _run(settings, result, items, todo, lake, progress)
        else:
            own = Lake(settings, spark)
            try:
                _run(settings, result, items, todo, own, progress)
            finally:
                own.close()
    c = result.counts()
    log.info("import %s: %d accepted, %d already imported, %d refused; %d row(s) written, "
             "%d file(s) uploaded (%.1f MB)", result.batch_id, c[ACCEPTED], c[ALREADY],
             c[REFUSED], result.rows, result.uploaded, result.uploaded_bytes / 1e6)
    return result


def _run(settings: GridLakeSettings, result: ImportResult, items: list[_Item],
         todo: list[_Item], lake: Lake, progress: Progress | None) -> None:
    cfg = settings.images
    root = cfg.hdfs_root
    t0 = time.perf_counter()
    devices = lake.devices() if todo else {}
    indexed = lake.indexed() if todo else set()
    result.read_s = time.perf_counter() - t0

    def tick(phase: str, total: int) -> Callable[[Any], None]:
        done = [0]
        lock = threading.Lock()

        def step(_: Any) -> None:
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(phase, done[0], total)
        return step

    t0 = time.perf_counter()
    with ThreadPoolExecutor(cfg.upload_workers, thread_name_prefix="img-check") as pool:
        step = tick("check", len(todo))
        checks = [pool.submit(_check, i, devices, cfg.max_bytes, cfg.max_pixels)
                  for i in todo]
        for f in checks:
            f.add_done_callback(step)
    for f in checks:
        f.result()
    result.check_s = time.perf_counter() - t0
    resolve(items, indexed)

    store = [i for i in items if i.status in (ACCEPTED, ALREADY)]
    sent = {"files": 0, "bytes": 0}
    sent_lock = threading.Lock()

    def upload(item: _Item) -> None:
        assert item.info is not None and item.local is not None
        try:
            data = item.local.read_bytes()
        except OSError as err:
            item.status, item.refusal = "", Refusal("upload_failed", f"cannot be read: {err}")
            return
        if sha256(data) != item.info.image_id:
            item.status, item.refusal = "", Refusal(
                "upload_failed", "the file changed while it was being imported")
            return
        try:
            if lake.upload(image_path(root, item.info), data):
                with sent_lock:
                    sent["files"] += 1
                    sent["bytes"] += len(data)
        except LakeError as err:
            item.status, item.refusal = "", Refusal("upload_failed", str(err))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(cfg.upload_workers, thread_name_prefix="img-upload") as pool:
        step = tick("upload", len(store))
        futures = [pool.submit(upload, i) for i in store]
        for f in futures:
            f.add_done_callback(step)
    for f in futures:
        f.result()
    result.upload_s = time.perf_counter() - t0
    result.uploaded, result.uploaded_bytes = sent["files"], sent["bytes"]
    failed = [i for i in store if i.status == ""]
    if store and len(failed) == len(store):
        # every upload failing is the lake, not the files
        why = failed[0].refusal.detail if failed[0].refusal else "?"
        raise LakeUnavailable(f"no file could be uploaded to HDFS: {why}")

    t0 = time.perf_counter()
    imported_ms = int(time.time() * 1000)
    rows = [index_row(i, root, devices, result.batch_id, imported_ms)
            for i in sorted(items, key=lambda i: i.order) if i.status == ACCEPTED]
    if rows:
        lake.write_rows(rows)
    result.rows = len(rows)
    result.write_s = time.perf_counter() - t0
    result.files = [i.report(root) for i in sorted(items, key=lambda i: i.order)]
