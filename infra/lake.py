"""The lake on HDFS, read through WebHDFS: files, Hudi timelines and table properties.

Everything here speaks HTTP to the NameNode (``settings.hdfs.webhdfs_url``) with
:mod:`httpx`; no JVM is needed, so operational commands (``gridlake stream status``,
``gridlake tables check``) stay fast. Paths are HDFS paths (``/gridlake/lake/ods/x``), not
URIs. The Hudi helpers understand table version 9 (timeline under
``.hoodie/timeline/``, completed instants named ``<requested>_<completed>.<action>``) and
fall back to the pre-1.0 layout (instants in ``.hoodie/``, named ``<time>.<action>``).

This is the one parser of Hudi file names: timeline instants (:func:`parse_timeline_name`,
:class:`Timeline`), base and log files (:func:`snapshot_files`). The operational report
(:func:`last_commits`) and the API's lake reader both read tables through it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from infra.settings import GridLakeSettings
from lakehouse.contracts.schema import TableContract
from lakehouse.contracts.tables import TABLES

log = logging.getLogger(__name__)

HOODIE_DIR = ".hoodie"
TIMELINE_DIR = "timeline"
PROPERTIES_FILE = "hoodie.properties"

#: Actions whose completed instant adds data to a table (what "last commit" means).
COMMIT_ACTIONS: frozenset[str] = frozenset({"commit", "deltacommit", "replacecommit"})
#: Every action a completed instant file can carry.
COMPLETED_ACTIONS: frozenset[str] = COMMIT_ACTIONS | {
    "clean", "rollback", "savepoint", "restore", "indexing", "logcompaction", "clustering",
    "compaction", "schemacommit",
}

#: States of an instant on the timeline.
REQUESTED, INFLIGHT, COMPLETED = "requested", "inflight", "completed"

# ``20240101120000000_20240101120001000.commit`` (v9) or ``20240101120000000.commit`` (v6);
# ``<time>.<action>.requested`` / ``<time>.<action>.inflight`` while it runs (a commit's
# inflight file is just ``<time>.inflight``).
_INSTANT_RE = re.compile(
    r"^(?P<requested>\d+)(?:_(?P<completed>\d+))?\.(?P<action>[a-z]+)"
    r"(?:\.(?P<state>requested|inflight))?$"
)
# base file ``<file id>_<write token>_<instant>.parquet``; log file
# ``.<file id>_<instant>.log.<version>_<write token>``
_BASE_RE = re.compile(r"^(?P<fid>.+)_(?P<token>[^_]+)_(?P<instant>\d+)\.parquet$")
_LOG_RE = re.compile(r"^\.(?P<fid>.+)_(?P<instant>\d+)\.log\.\d+(?:_.*)?$")


class LakeError(Exception):
    """WebHDFS answered with an error."""


class LakeUnavailable(LakeError):
    """WebHDFS cannot be reached (NameNode down, wrong address)."""


class LakeNotFound(LakeError):
    """The path does not exist."""


class NeedsSpark(Exception):
    """A table's snapshot cannot be read from its files alone; Spark (Hudi's reader) can.

    Raised for merge-on-read log files not compacted into a base file yet.
    """


@dataclass(frozen=True)
class FileStatus:
    """One entry of a WebHDFS ``LISTSTATUS``.

    Attributes:
        name: File or directory name (``pathSuffix``).
        is_dir: Whether it is a directory.
        length: Size in bytes (0 for directories).
        modified_ms: Modification time, epoch milliseconds.
        replication: Replication factor of a file (0 for directories).

    """

    name: str
    is_dir: bool
    length: int
    modified_ms: int
    replication: int = 0

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> FileStatus:
        """Build from a WebHDFS ``FileStatus`` object."""
        return cls(
            name=str(entry.get("pathSuffix", "")),
            is_dir=entry.get("type") == "DIRECTORY",
            length=int(entry.get("length", 0)),
            modified_ms=int(entry.get("modificationTime", 0)),
            replication=int(entry.get("replication", 0)),
        )


class WebHdfs:
    """A small WebHDFS client (simple authentication, ``user.name``).

    Args:
        url: WebHDFS base address, e.g. ``http://127.0.0.1:9870``.
        user: HDFS user the requests act as.
        timeout: Seconds per request (connect and read).
        replication: Replication factor of the files this client creates
            (``settings.hdfs.replication``); ``None`` leaves it to the NameNode's default.

    """

    def __init__(
        self, url: str, user: str, timeout: float = 10.0, replication: int | None = None
    ) -> None:
        if replication is not None and replication < 1:
            raise ValueError(f"replication must be at least 1, got {replication}")
        self.url = url.rstrip("/")
        self.user = user
        self.replication = replication
        self._http = httpx.Client(timeout=timeout)

    @classmethod
    def from_settings(cls, settings: GridLakeSettings, timeout: float = 10.0) -> WebHdfs:
        """Client of the NameNode in ``settings.hdfs``, creating files with its replication."""
        return cls(settings.hdfs.webhdfs_url, settings.hdfs.user, timeout,
                   replication=settings.hdfs.replication)

    def __enter__(self) -> WebHdfs:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def _url(self, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"HDFS path must be absolute: {path!r}")
        return f"{self.url}/webhdfs/v1{quote(path)}"

    def _request(
        self,
        method: str,
        path: str,
        op: str,
        params: dict[str, str] | None = None,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        query = {"op": op, "user.name": self.user, **(params or {})}
        try:
            resp = self._http.request(
                method, self._url(path), params=query, follow_redirects=follow_redirects
            )
        except httpx.TransportError as err:
            raise LakeUnavailable(f"WebHDFS {self.url} unreachable: {err}") from err
        if resp.status_code == 404:
            raise LakeNotFound(f"{path} does not exist")
        if resp.status_code >= 400:
            raise LakeError(f"WebHDFS {op} {path}: HTTP {resp.status_code}: {_remote_error(resp)}")
        return resp

    def list_status(self, path: str) -> list[FileStatus]:
        """Entries of a directory.

        Raises:
            LakeNotFound: The directory does not exist.
            LakeUnavailable: WebHDFS cannot be reached.

        """
        body = self._request("GET", path, "LISTSTATUS").json()
        return [FileStatus.from_json(e) for e in body["FileStatuses"]["FileStatus"]]

    def status(self, path: str) -> FileStatus | None:
        """Status of one path, or None when it does not exist."""
        try:
            body = self._request("GET", path, "GETFILESTATUS").json()
        except LakeNotFound:
            return None
        return FileStatus.from_json({**body["FileStatus"], "pathSuffix": path.rsplit("/", 1)[-1]})

    def exists(self, path: str) -> bool:
        """Whether the path exists."""
        return self.status(path) is not None

    def read(self, path: str) -> bytes:
        """Whole content of a file (the NameNode redirects to a DataNode).

        Raises:
            LakeNotFound: The file does not exist.

        """
        return self._request("GET", path, "OPEN").content

    def write(self, path: str, data: bytes, overwrite: bool = True,
              replication: int | None = None) -> None:
        """Create (or replace) a file with ``data``: NameNode first, then the DataNode.

        Args:
            path: Absolute HDFS path (missing parent folders are created).
            data: The content.
            overwrite: Replace an existing file.
            replication: Replication factor of the file; None: the client's
                (``settings.hdfs.replication`` from :meth:`from_settings`), else the
                NameNode's ``dfs.replication``.

        """
        params = {"overwrite": str(overwrite).lower()}
        factor = self.replication if replication is None else replication
        if factor is not None:
            # a client-side default of 3 on a 2-DataNode cluster leaves every block
            # under-replicated: the stack's factor is sent with each CREATE
            params["replication"] = str(factor)
        first = self._request("PUT", path, "CREATE", params, follow_redirects=False)
        location = first.headers.get("location")
        if first.status_code != 307 or not location:
            raise LakeError(f"WebHDFS CREATE {path}: no DataNode redirect ({first.status_code})")
        try:
            resp = self._http.put(location, content=data)
        except httpx.TransportError as err:
            raise LakeUnavailable(f"DataNode for {path} unreachable: {err}") from err
        if resp.status_code >= 400:
            raise LakeError(f"WebHDFS CREATE {path}: HTTP {resp.status_code}: "
                            f"{_remote_error(resp)}")

    def mkdirs(self, path: str) -> None:
        """Create a directory and its parents."""
        self._request("PUT", path, "MKDIRS")

    def delete(self, path: str, recursive: bool = False) -> bool:
        """Delete a path; return whether something was deleted."""
        resp = self._request("DELETE", path, "DELETE", {"recursive": str(recursive).lower()})
        return bool(resp.json().get("boolean", False))


def _remote_error(resp: httpx.Response) -> str:
    try:
        exc = resp.json().get("RemoteException", {})
        return f"{exc.get('exception', '?')}: {exc.get('message', '')}"
    except ValueError:
        return resp.text[:200]


def lake_path(settings: GridLakeSettings, layer: str, name: str) -> str:
    """HDFS path of a lake table: ``<hdfs.lake_root>/<layer>/<name>``.

    The one table-path rule: every reader and writer (Flink, Spark, WebHDFS) derives a
    table's location from here or from :func:`hudi_table_path`.
    """
    return f"{settings.hdfs.lake_root.rstrip('/')}/{layer}/{name}"


def hudi_table_path(settings: GridLakeSettings, table: TableContract) -> str:
    """Fully qualified base path of a table in the lake: ``<lake_uri>/<layer>/<name>``."""
    return settings.hdfs.uri + lake_path(settings, table.layer, table.name)


# --------------------------------------------------------------------------------------
# Hudi metadata
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HudiInstant:
    """An instant of a Hudi timeline, as one timeline file names it.

    Attributes:
        requested: Instant time the action was requested at (``yyyyMMddHHmmssSSS``); this
            is Hudi's "instant time" (``_hoodie_commit_time`` of the rows it wrote).
        action: ``commit``, ``deltacommit``, ``replacecommit``, ``clean``, ...
        completed: Completion time (table version 8+; None in the pre-1.0 layout and for
            instants not completed).
        modified_ms: Modification time of the instant file, epoch ms (0 when unknown).
        state: :data:`COMPLETED`, or :data:`REQUESTED` / :data:`INFLIGHT` while it runs
            (or after it failed, until it is rolled back).

    """

    requested: str
    action: str
    completed: str | None = None
    modified_ms: int = 0
    state: str = COMPLETED

    @property
    def sort_key(self) -> tuple[str, str]:
        """Order of completion: completion time, then requested time."""
        return (self.completed or self.requested, self.requested)


def parse_timeline_name(file_name: str, modified_ms: int = 0) -> HudiInstant | None:
    """The instant (in any state) a timeline file name stands for, or None.

    ``<time>_<completion>.<action>`` (table version 8+) and ``<time>.<action>`` (pre-1.0)
    are completed instants of a known action (:data:`COMPLETED_ACTIONS`);
    ``<time>.<action>.requested``, ``<time>.<action>.inflight`` and ``<time>.inflight`` (a
    commit) are instants still running. Anything else (``history``, ``hoodie.properties``,
    an unknown action) gives None.
    """
    m = _INSTANT_RE.match(file_name)
    if not m:
        return None
    action, state = m["action"], m["state"]
    if state is None and action in (REQUESTED, INFLIGHT):  # ``<time>.inflight``: a commit
        action, state = "commit", action
    if state is not None:
        return HudiInstant(m["requested"], action, None, modified_ms, state)
    if action not in COMPLETED_ACTIONS:
        return None
    return HudiInstant(m["requested"], action, m["completed"], modified_ms)


def parse_instant(file_name: str, modified_ms: int = 0) -> HudiInstant | None:
    """The completed instant a timeline file name stands for, or None.

    ``*.requested``, ``*.inflight`` and anything that is not an instant file (``history``,
    ``hoodie.properties``, ...) give None.
    """
    instant = parse_timeline_name(file_name, modified_ms)
    return instant if instant is not None and instant.state == COMPLETED else None


def newest_instant(
    files: Iterable[str | FileStatus], actions: Iterable[str] = COMMIT_ACTIONS
) -> HudiInstant | None:
    """The most recently completed instant among timeline files, of the given actions.

    Args:
        files: Timeline file names, or their ``LISTSTATUS`` entries.
        actions: Actions to consider (default: the data commits).

    """
    wanted = set(actions)
    found: list[HudiInstant] = []
    for f in files:
        instant = (
            parse_instant(f) if isinstance(f, str) else parse_instant(f.name, f.modified_ms)
        )
        if instant is not None and instant.action in wanted:
            found.append(instant)
    return max(found, key=lambda i: i.sort_key) if found else None


def parse_properties(text: str) -> dict[str, str]:
    r"""Parse a Java ``.properties`` file (what ``hoodie.properties`` is).

    Handles comments, ``=``/``:``/blank separators, backslash escapes (``\:``, ``\=``,
    ``\uXXXX``) and continuation lines.
    """
    props: dict[str, str] = {}
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:  # odd number of backslashes: the line continues
            pending += line[:-1]
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    for line in logical:
        key, value = _split_property(line)
        props[_unescape(key)] = _unescape(value)
    return props


def _split_property(line: str) -> tuple[str, str]:
    """Split a logical line at the first unescaped ``=``, ``:`` or blank."""
    i, n = 0, len(line)
    while i < n and line[i] not in "=: \t\f":
        i += 2 if line[i] == "\\" else 1
    key, rest = line[:i], line[i:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return key, rest


def _unescape(s: str) -> str:
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "u" and i + 6 <= n:
            try:
                out.append(chr(int(s[i + 2:i + 6], 16)))
                i += 6
                continue
            except ValueError:
                pass
        out.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
        i += 2
    return "".join(out)


@dataclass(frozen=True)
class HudiTableConfig:
    """The parts of ``hoodie.properties`` GridLake checks against its contracts.

    Attributes:
        record_key: ``hoodie.table.recordkey.fields``, in order.
        ordering_fields: ``hoodie.table.ordering.fields`` (table version 9) or
            ``hoodie.table.precombine.field`` (older tables).
        partition_fields: ``hoodie.table.partition.fields`` (key generator type suffixes
            such as ``:simple`` removed).
        table_type: ``COPY_ON_WRITE`` or ``MERGE_ON_READ``.
        merge_mode: ``hoodie.record.merge.mode`` (None when not recorded).
        version: ``hoodie.table.version``.
        name: ``hoodie.table.name``.
        raw: Every property.

    """

    record_key: tuple[str, ...]
    ordering_fields: tuple[str, ...]
    partition_fields: tuple[str, ...]
    table_type: str
    merge_mode: str | None
    version: int | None
    name: str
    raw: dict[str, str]

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> HudiTableConfig:
        """Interpret parsed ``hoodie.properties``."""

        def fields(key: str) -> tuple[str, ...]:
            return tuple(f.strip() for f in props.get(key, "").split(",") if f.strip())

        ordering = fields("hoodie.table.ordering.fields") or fields(
            "hoodie.table.precombine.field"
        )
        partitions = tuple(f.split(":", 1)[0] for f in fields("hoodie.table.partition.fields"))
        version = props.get("hoodie.table.version")
        return cls(
            record_key=fields("hoodie.table.recordkey.fields"),
            ordering_fields=ordering,
            partition_fields=partitions,
            table_type=props.get("hoodie.table.type", "COPY_ON_WRITE"),
            merge_mode=props.get("hoodie.record.merge.mode"),
            version=int(version) if version and version.isdigit() else None,
            name=props.get("hoodie.table.name", ""),
            raw=dict(props),
        )


def read_table_config(fs: WebHdfs, base_path: str) -> HudiTableConfig | None:
    """``hoodie.properties`` of the Hudi table at ``base_path``; None when there is none.

    Raises:
        LakeUnavailable: WebHDFS cannot be reached.

    """
    try:
        data = fs.read(f"{base_path}/{HOODIE_DIR}/{PROPERTIES_FILE}")
    except LakeNotFound:
        return None
    return HudiTableConfig.from_properties(parse_properties(data.decode("utf-8", "replace")))


def last_instant(
    fs: WebHdfs, base_path: str, actions: Iterable[str] = COMMIT_ACTIONS
) -> HudiInstant | None:
    """The newest completed instant (of ``actions``) of the table at ``base_path``.

    Returns:
        The instant, or None when the table has none yet.

    Raises:
        LakeNotFound: There is no Hudi table at ``base_path`` (no ``.hoodie``).
        LakeUnavailable: WebHDFS cannot be reached.

    """
    return newest_instant(timeline_files(fs, base_path), actions)


def timeline_files(fs: WebHdfs, base_path: str) -> list[FileStatus]:
    """Entries of the timeline folder of the table at ``base_path``.

    That is ``.hoodie/timeline/`` (table version 8+), else ``.hoodie/`` (pre-1.0 layout).

    Raises:
        LakeNotFound: There is no Hudi table at ``base_path`` (no ``.hoodie``).
        LakeUnavailable: WebHDFS cannot be reached.

    """
    hoodie = f"{base_path}/{HOODIE_DIR}"
    try:
        return fs.list_status(f"{hoodie}/{TIMELINE_DIR}")
    except LakeNotFound:
        return fs.list_status(hoodie)  # pre-1.0 layout; raises LakeNotFound: no table


class Timeline:
    """Which instants of a table count as committed, from its timeline folder's file names.

    Args:
        names: File names of the timeline folder (:func:`timeline_files`).

    Attributes:
        completed: Instant times of the completed instants.
        pending: Instant times requested or in flight (not completed: running or failed).
        actions: Actions of the completed instants.
        earliest: The oldest instant time on the (active) timeline, or None.

    """

    def __init__(self, names: Iterable[str]) -> None:
        self.completed: set[str] = set()
        self.pending: set[str] = set()
        self.actions: set[str] = set()
        for name in names:
            instant = parse_timeline_name(name)
            if instant is None:
                continue
            if instant.state == COMPLETED:
                self.completed.add(instant.requested)
                self.actions.add(instant.action)
            else:
                self.pending.add(instant.requested)
        # the requested and inflight files of a completed instant stay on the timeline
        self.pending -= self.completed
        every = self.completed | self.pending
        self.earliest = min(every) if every else None

    def counts(self, instant: str) -> bool:
        """Whether data written at ``instant`` is committed.

        It is when its instant completed, or when it is older than every instant on the
        active timeline (archived, hence completed: Hudi rolls back failed writes before
        archiving).
        """
        if instant in self.completed:
            return True
        if instant in self.pending:
            return False
        return self.earliest is not None and instant < self.earliest


def read_timeline(fs: WebHdfs, base_path: str) -> Timeline:
    """The :class:`Timeline` of the table at ``base_path``.

    Raises:
        LakeNotFound: There is no Hudi table at ``base_path``.
        LakeUnavailable: WebHDFS cannot be reached.

    """
    return Timeline(e.name for e in timeline_files(fs, base_path))


def snapshot_files(entries: Iterable[FileStatus], timeline: Timeline) -> list[str]:
    """Names of the base files forming a partition's latest snapshot.

    Per file group, the newest base file written by a committed instant; files of
    requested or inflight instants (a write running or failed) are ignored.

    Args:
        entries: The partition folder's entries.
        timeline: The table's timeline.

    Raises:
        NeedsSpark: A file group has log files newer than its base file (merge-on-read
            changes not compacted yet).

    """
    newest: dict[str, tuple[str, str]] = {}
    logs: dict[str, str] = {}
    for e in entries:
        if m := _BASE_RE.match(e.name):
            if timeline.counts(m["instant"]):
                cur = newest.get(m["fid"])
                if cur is None or m["instant"] > cur[0]:
                    newest[m["fid"]] = (m["instant"], e.name)
        elif m := _LOG_RE.match(e.name):
            if timeline.counts(m["instant"]):
                logs[m["fid"]] = max(logs.get(m["fid"], ""), m["instant"])
    for fid, base_instant in logs.items():
        if fid not in newest or base_instant >= newest[fid][0]:
            raise NeedsSpark("merge-on-read log files not compacted yet: this table "
                             "needs Spark to be read")
    return sorted(name for _, name in newest.values())


@dataclass(frozen=True)
class TableCommit:
    """The newest completed commit of a lake table.

    Attributes:
        table: Table name.
        layer: Its layer.
        path: HDFS path of the table.
        state: ``ok``, ``no table`` (no Hudi table at the path) or ``no commits``.
        instant: Instant time of the commit (``yyyyMMddHHmmssSSS``).
        action: ``commit``, ``deltacommit`` or ``replacecommit``.
        completed: Completion time of the instant.
        modified_ms: When the instant file was written, epoch ms.

    """

    table: str
    layer: str
    path: str
    state: str
    instant: str | None = None
    action: str | None = None
    completed: str | None = None
    modified_ms: int | None = None


def last_commits(
    settings: GridLakeSettings,
    tables: Iterable[TableContract] = TABLES,
    timeout_s: float = 5.0,
) -> list[TableCommit]:
    """The newest completed commit of each table, from its Hudi timeline over WebHDFS.

    Raises:
        LakeError: WebHDFS cannot be reached (:class:`LakeUnavailable`) or answers with an
            error.

    """
    out = []
    with WebHdfs.from_settings(settings, timeout_s) as fs:
        for t in tables:
            path = lake_path(settings, t.layer, t.name)
            try:
                instant = last_instant(fs, path)
            except LakeNotFound:
                out.append(TableCommit(t.name, t.layer, path, "no table"))
                continue
            if instant is None:
                out.append(TableCommit(t.name, t.layer, path, "no commits"))
            else:
                out.append(
                    TableCommit(
                        t.name, t.layer, path, "ok", instant.requested, instant.action,
                        instant.completed, instant.modified_ms or None,
                    )
                )
    return out
