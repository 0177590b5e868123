"""Launching, tracking and stopping the detached processes of the local stack.

A process GridLake starts gets a pid file (JSON: pid, start time and a marker
string that must appear in its command line). Only processes whose pid, start
time and command line all match their pid file are ever signalled, so a stale
pid file can never make GridLake kill a foreign process that reused the pid.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

_LAUNCHER = """\
import json, subprocess, sys
spec = json.loads(sys.argv[1])
with open(spec["log"], "ab") as out:
    proc = subprocess.Popen(
        spec["cmd"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        cwd=spec["cwd"], start_new_session=True, close_fds=True,
    )
print(proc.pid, flush=True)
"""

#: Log files above this size are rotated to ``<name>.log.1`` when a service starts.
LOG_ROTATE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PidRecord:
    """Content of a pid file.

    Attributes:
        pid: Process id.
        start: Process start stamp (see :func:`start_stamp`).
        marker: A string that must appear in the process's command line.

    """

    pid: int
    start: float
    marker: str


def start_stamp(pid: int) -> float:
    """Start time of ``pid`` that does not move when the wall clock is stepped.

    On Linux: clock ticks since boot (``/proc/<pid>/stat`` field 22); psutil's
    ``create_time`` adds the boot time derived from the wall clock, which shifts when
    the clock is adjusted (seen in VMs) and would make GridLake disown its processes.

    Raises:
        psutil.NoSuchProcess: When the process does not exist.

    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return float(stat.rsplit(")", 1)[1].split()[19])
    except FileNotFoundError as err:
        raise psutil.NoSuchProcess(pid) from err
    except (OSError, IndexError, ValueError):
        return float(psutil.Process(pid).create_time())


def read_pid_file(path: Path) -> PidRecord | None:
    """Read a pid file; ``None`` when it is missing or unreadable."""
    try:
        raw = json.loads(path.read_text())
        return PidRecord(int(raw["pid"]), float(raw["start"]), str(raw["marker"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is an exited child of this process (avoids zombies)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def owned_process(record: PidRecord | None) -> psutil.Process | None:
    """Return the live process described by ``record``, or ``None``.

    A process only counts when its start stamp matches and its command line
    contains the record's marker; zombies count as dead.
    """
    if record is None:
        return None
    _reap(record.pid)
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if start_stamp(record.pid) != record.start:
            return None
        if record.marker not in " ".join(proc.cmdline()):
            return None
        return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def running_pid(pid_file: Path) -> int | None:
    """Pid of the live GridLake-started process recorded in ``pid_file``, else ``None``."""
    proc = owned_process(read_pid_file(pid_file))
    return proc.pid if proc else None


def _rotate(log_file: Path) -> None:
    try:
        if log_file.stat().st_size > LOG_ROTATE_BYTES:
            log_file.replace(log_file.with_name(log_file.name + ".1"))
    except FileNotFoundError:
        pass


def launch(
    cmd: Sequence[str],
    *,
    name: str,
    marker: str,
    log_file: Path,
    pid_file: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``cmd`` detached (own session), output appended to ``log_file``.

    Args:
        cmd: Program and arguments.
        name: Service name, for the log header.
        marker: String contained in ``cmd`` that identifies this service's process.
        log_file: Receives stdout and stderr.
        pid_file: Where the pid record is written.
        cwd: Working directory of the process.
        env: Extra environment variables.

    Returns:
        The pid of the started process.

    """
    if not any(marker in part for part in cmd):
        raise ValueError(f"marker {marker!r} does not occur in the command of {name}")
    for d in (log_file.parent, pid_file.parent, cwd):
        d.mkdir(parents=True, exist_ok=True)
    _rotate(log_file)
    full_env = {**os.environ, **(env or {})}
    with log_file.open("ab") as out:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"\n===== gridlake: starting {name} at {stamp} =====\n".encode())
    # Double launch: a short-lived intermediate starts the service and exits, so the
    # service is re-parented to init instead of staying a child of whoever ran `up`
    # (a test runner, an API server) and never lingers as that process's zombie.
    spec = json.dumps({"cmd": list(cmd), "log": str(log_file), "cwd": str(cwd)})
    res = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, spec],
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if res.returncode != 0 or not res.stdout.strip().isdigit():
        reason = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"could not start {name}: {reason}")
    pid = int(res.stdout.strip())
    try:
        start = start_stamp(pid)
    except psutil.NoSuchProcess:
        start = -1.0  # exited already: the record will never match
    record = {"pid": pid, "start": start, "marker": marker}
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(pid_file)
    logger.info("started %s (pid %d), log %s", name, pid, log_file)
    return pid


def signal_owned(pid_file: Path, sig: signal.Signals) -> bool:
    """Send ``sig`` to the process of ``pid_file`` if GridLake started it.

    Returns:
        True when a signal was delivered.

    """
    proc = owned_process(read_pid_file(pid_file))
    if proc is None:
        return False
    try:
        proc.send_signal(sig)
        return True
    except psutil.NoSuchProcess:
        return False


def stop(pid_file: Path, *, name: str, timeout_s: float = 30.0) -> bool:
    """Stop the GridLake-started process of ``pid_file``: SIGTERM, wait, then SIGKILL.

    Processes that GridLake did not start (no pid file, or pid/start time/command
    line mismatch) are never signalled. The pid file is removed afterwards.

    Returns:
        True when a process was stopped, False when none was running.

    """
    record = read_pid_file(pid_file)
    proc = owned_process(record)
    if proc is None:
        pid_file.unlink(missing_ok=True)
        return False
    logger.info("stopping %s (pid %d)", name, proc.pid)
    _signal(proc, signal.SIGTERM)
    if not _wait_gone(proc, timeout_s):
        logger.warning("%s did not exit %.0f s after SIGTERM; sending SIGKILL", name, timeout_s)
        _signal(proc, signal.SIGKILL)
        _wait_gone(proc, 10.0)
    _reap(proc.pid)
    pid_file.unlink(missing_ok=True)
    return True


def _signal(proc: psutil.Process, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def _gone(proc: psutil.Process) -> bool:
    _reap(proc.pid)
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(proc: psutil.Process, timeout_s: float) -> bool:
    """Wait until ``proc`` exited (a zombie counts as exited); False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not _gone(proc):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def exited(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie counts as ended)."""
    try:
        return _gone(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def wait_pid_exited(pid: int, timeout_s: float) -> bool:
    """Wait until process ``pid`` has ended; False on timeout."""
    try:
        return _wait_gone(psutil.Process(pid), timeout_s)
    except psutil.NoSuchProcess:
        return True


def wait_exited(pid_files: Sequence[Path], timeout_s: float) -> None:
    """Wait until none of the processes of ``pid_files`` is alive (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(running_pid(p) is None for p in pid_files):
            return
        time.sleep(0.2)


def tail(path: Path, lines: int = 25) -> list[str]:
    """Last ``lines`` lines of a text file (empty when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]


def poll_until(
    check: Callable[[], tuple[bool, str]],
    *,
    timeout_s: float,
    interval_s: float = 0.5,
    alive: Callable[[], bool] | None = None,
) -> tuple[bool, str]:
    """Call ``check`` until it reports success or the deadline passes.

    Args:
        check: Returns ``(ok, detail)``.
        timeout_s: Deadline, in seconds from now.
        interval_s: Pause between attempts.
        alive: When given and it returns False, stop early (the process died).

    Returns:
        The last ``(ok, detail)``.

    """
    deadline = time.monotonic() + timeout_s
    ok, detail = check()
    while not ok and time.monotonic() < deadline:
        if alive is not None and not alive():
            return False, f"the process exited ({detail})"
        time.sleep(interval_s)
        ok, detail = check()
    return ok, detail
