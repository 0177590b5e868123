"""The files of an import: folders as they are, archives unpacked into a scratch folder.

An archive (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``) is unpacked member by member into a
temporary folder, so that both passes of the import (check, then upload) read plain files
and a ``.tar.gz`` is decompressed once. A member larger than ``images.max_bytes`` is not
unpacked (it is refused as ``too_large`` without reading it); a member whose name leaves
the folder (absolute, ``..``) makes the whole archive an error, as does a damaged archive.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from jobs.images.checks import DESCRIPTION_NAMES, ImportBatchError, Refusal, normalise_name

log = logging.getLogger(__name__)

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar", ".tar.gz", ".tgz")
_COPY_CHUNK = 1 << 20


def is_archive(path: Path) -> bool:
    """Whether ``path`` is named like an archive the import unpacks."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class Source:
    """One imported folder or archive.

    Attributes:
        name: The path as given (reports name it).
        root: Folder holding its files (the scratch folder of an archive).
        files: Relative forward-slash name → local file, every regular file but the
            default description files at the top.
        refused: Members refused before unpacking (name → why).
        descriptions: The description file found at the top, or None.

    """

    name: str
    root: Path
    files: dict[str, Path] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    descriptions: Path | None = None


class Sources:
    """Open the PATHs of an import (context manager: scratch folders removed on exit).

    Args:
        paths: Folders or archives.
        max_bytes: Archive members larger than this are not unpacked.
        scratch: Parent of the scratch folders (default: the system's temp folder).

    Raises:
        ImportBatchError: A path that does not exist, is neither a folder nor an archive,
            or an archive that is damaged or has unsafe member names.

    """

    def __init__(self, paths: list[Path], max_bytes: int, scratch: Path | None = None) -> None:
        self.paths = paths
        self.max_bytes = max_bytes
        self.scratch = scratch
        self.sources: list[Source] = []
        self._temps: list[Path] = []

    def __enter__(self) -> list[Source]:
        try:
            for p in self.paths:
                self.sources.append(self._open(p))
        except BaseException:
            self.close()
            raise
        return self.sources

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch folders."""
        for t in self._temps:
            shutil.rmtree(t, ignore_errors=True)
        self._temps.clear()

    def _open(self, path: Path) -> Source:
        if path.is_dir():
            return _scan(Source(str(path), path))
        if not path.exists():
            raise ImportBatchError(f"{path} does not exist")
        if not is_archive(path):
            raise ImportBatchError(f"{path} is neither a folder nor a .zip/.tar/.tar.gz/.tgz "
                                   "archive")
        tmp = Path(tempfile.mkdtemp(prefix="gridlake-import-", dir=self.scratch))
        self._temps.append(tmp)
        src = Source(str(path), tmp)
        try:
            if path.name.lower().endswith(".zip"):
                self._unzip(path, src)
            else:
                self._untar(path, src)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            raise ImportBatchError(f"archive {path} cannot be read: {err}") from err
        return _scan(src)

    def _target(self, archive: Path, member: str, src: Source) -> Path:
        rel = normalise_name(member)
        if rel is None:
            raise ImportBatchError(f"archive {archive}: member {member!r} would be written "
                                   "outside its folder; refusing the archive")
        return src.root / rel

    def _too_large(self, member: str, size: int, src: Source) -> bool:
        if size <= self.max_bytes:
            return False
        rel = normalise_name(member) or member
        src.refused[rel] = Refusal("too_large", f"{size} bytes > {self.max_bytes} "
                                   "(images.max_bytes); not unpacked")
        return True

    def _unzip(self, archive: Path, src: Source) -> None:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                target = self._target(archive, info.filename, src)
                if self._too_large(info.filename, info.file_size, src):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, target.open("wb") as fout:
                    _copy(fin, fout, self.max_bytes)

    def _untar(self, archive: Path, src: Source) -> None:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                if not member.isfile():
                    if not member.isdir():
                        log.warning("%s: %s is not a regular file; skipped", archive,
                                    member.name)
                    continue
                target = self._target(archive, member.name, src)
                if self._too_large(member.name, member.size, src):
                    continue
                fin = tf.extractfile(member)
                if fin is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with fin, target.open("wb") as fout:
                    _copy(fin, fout, self.max_bytes)


def _copy(fin: object, fout: object, limit: int) -> None:
    """Copy at most ``limit`` + 1 bytes (a lying size header cannot fill the disk)."""
    left = limit + 1
    while left > 0:
        chunk = fin.read(min(_COPY_CHUNK, left))  # type: ignore[attr-defined]
        if not chunk:
            break
        fout.write(chunk)  # type: ignore[attr-defined]
        left -= len(chunk)


def _scan(src: Source) -> Source:
    """Fill ``files`` and ``descriptions`` from the folder's regular files."""
    for p in sorted(src.root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(src.root).as_posix()
        if rel in DESCRIPTION_NAMES:
            if src.descriptions is None or rel.endswith(".csv"):
                src.descriptions = p
            continue
        src.files[rel] = p
    return src
