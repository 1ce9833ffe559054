"""The spool: MLflow's events on local disk until the service has accepted them.

Layout of the spool directory (shared by every process of one MLflow server, and by the
processes of the servers that come after it):

- `{time_ns}-{pid}-{random}.spool`: one process's events, one JSON line each, appended and
  fsync'ed before MLflow answers the request that fired the event. Its writer holds an
  exclusive flock on it for as long as it writes to it; a file nobody holds belongs to a dead
  process (or was rotated out) and is removed once everything in it is published.
- `{name}.ack`: how many bytes of `{name}` are published or set aside. Only the leader writes
  it.
- `sender.lock`: flock'ed by the one process (the leader) that publishes every file's events,
  merged in the order they happened; when it dies the kernel frees the lock and another live
  process takes over.
- `rejected.jsonl`: events the service refused as invalid, with the reason.
- `sender-state.json`: the leader's last error and last success, for the status endpoint.

Crash safety: a record is one line written with one append; a line without its newline (the
writer died mid-write) is never read. An ack lost in a crash means the record is published
again with the same idempotency key, which the service answers with the first publication's
ids and delivers nothing new.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SUFFIX = ".spool"
ACK_SUFFIX = ".ack"
REJECTED = "rejected.jsonl"
STATE = "sender-state.json"
LEADER_LOCK = "sender.lock"
# A writer starts a new file past this size, so that published files can be removed while
# their process lives on.
MAX_FILE_BYTES = 4 * 1024 * 1024
_READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Record:
    """One event as MLflow fired it: entity and action as MLflow names them (lower-case), and
    `data`, the payload MLflow built, unchanged."""

    key: str  # the idempotency key the service sees on every attempt to publish it
    time_ns: int  # when MLflow fired it (wall clock): the order across files
    entity: str
    action: str
    data: dict[str, Any]

    def to_line(self) -> bytes:
        fields = {
            "key": self.key,
            "time_ns": self.time_ns,
            "entity": self.entity,
            "action": self.action,
            "data": self.data,
        }
        return json.dumps(fields, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> Record:
        """Raises ValueError for a line that is not a record."""
        try:
            fields = json.loads(line)
            record = cls(
                str(fields["key"]),
                int(fields["time_ns"]),
                str(fields["entity"]),
                str(fields["action"]),
                fields["data"],
            )
        except (KeyError, TypeError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a spool record: {e}") from e
        if not isinstance(record.data, dict):
            raise ValueError("not a spool record: data is not an object")
        return record


def new_record(entity: str, action: str, data: dict[str, Any]) -> Record:
    return Record(str(uuid.uuid4()), time.time_ns(), entity, action, data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _replace_file(path: Path, data: bytes) -> None:
    """Writes `path` whole or not at all."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class SpoolWriter:
    """This process's spool file. `append` returns once the record is on disk."""

    def __init__(self, directory: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.directory = directory
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self.path = Path()
        directory.mkdir(parents=True, exist_ok=True)
        self._open_new()

    def _open_new(self) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        # Locked before it gets its real name: the leader must never see it unlocked (it
        # would take it for a dead process's empty file and remove it).
        tmp = self.directory / f".{name}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.rename(tmp, self.directory / name)
        _fsync_dir(self.directory)
        old, self._fd, self._size = self._fd, fd, 0
        self.path = self.directory / name
        if old is not None:
            os.close(old)  # frees its lock: the leader removes it once it is published

    def append(self, record: Record) -> None:
        line = record.to_line()
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the spool writer is closed")
            if self._size and self._size + len(line) > self._max_bytes:
                self._open_new()
            try:
                _write_all(self._fd, line)
                os.fsync(self._fd)
            except OSError:
                # No half line left behind: the next record must start a line of its own.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
                raise
            self._size += len(line)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _spool_files(directory: Path) -> list[Path]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(directory / n for n in names if n.endswith(SUFFIX) and not n.startswith("."))


def _ack_path(path: Path) -> Path:
    return path.with_name(path.name + ACK_SUFFIX)


def read_ack(path: Path) -> int:
    try:
        return int(_ack_path(path).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def owner_alive(path: Path) -> bool:
    """Whether a process still writes to `path` (holds its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also frees the lock if it was taken
    return False


@dataclass(frozen=True)
class Entry:
    """A line of a spool file: `record` is None when the line is not a readable record."""

    path: Path
    end: int  # offset just past the line
    line: bytes
    record: Record | None

    @property
    def order(self) -> tuple[int, str, int]:
        # An unreadable line sorts first: it is set aside and must not hold back the rest.
        return (self.record.time_ns if self.record else 0, self.path.name, self.end)


@dataclass
class _File:
    path: Path
    acked: int
    read: int
    pending: deque[Entry] = field(default_factory=deque)


class SpoolReader:
    """The leader's view of the spool: every file's unpublished records, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[Path, _File] = {}

    def refresh(self) -> None:
        """Picks up new files and lines appended since the last call."""
        present = set(_spool_files(self.directory))
        for gone in set(self._files) - present:
            del self._files[gone]
        for path in present:
            state = self._files.get(path)
            if state is None:
                acked = read_ack(path)
                state = self._files[path] = _File(path, acked, acked)
            self._read_more(state)

    def _read_more(self, state: _File) -> None:
        """Parses the next complete lines of a file whose parsed lines are all done: one chunk
        at a time (a long outage leaves many files), longer for a line longer than that."""
        if state.pending:
            return
        try:
            if state.path.stat().st_size <= state.read:
                return
            with state.path.open("rb") as f:
                f.seek(state.read)
                data = f.read(_READ_CHUNK)
                while data and b"\n" not in data and (more := f.read(_READ_CHUNK)):
                    data += more
        except FileNotFoundError:
            return
        complete = data[: data.rfind(b"\n") + 1]
        for line in complete.splitlines(keepends=True):
            state.read += len(line)
            try:
                record: Record | None = Record.from_line(line)
            except ValueError:
                record = None
            state.pending.append(Entry(state.path, state.read, line, record))

    def head(self) -> Entry | None:
        """The oldest record not yet published, over all files."""
        heads = [s.pending[0] for s in self._files.values() if s.pending]
        return min(heads, key=lambda e: e.order) if heads else None

    def done(self, entry: Entry) -> None:
        """`entry` is published or set aside: it is never read again."""
        state = self._files[entry.path]
        assert state.pending and state.pending[0] == entry
        state.pending.popleft()
        state.acked = entry.end
        _replace_file(_ack_path(entry.path), f"{entry.end}\n".encode())

    def remove_finished(self) -> None:
        """Removes the files of dead or rotated-out writers once all of them is done."""
        for path, state in list(self._files.items()):
            if state.pending or owner_alive(path):
                continue
            # Its writer is gone, so what is complete now is all there will ever be.
            self._read_more(state)
            if state.pending:
                continue
            # Past `read` there is at most the half line of a writer that died mid-write.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            with contextlib.suppress(FileNotFoundError):
                _ack_path(path).unlink()
            del self._files[path]


def set_aside(directory: Path, entry: Entry, reason: str) -> None:
    """Keeps a refused or unreadable line in rejected.jsonl, with why, for an operator."""
    kept = {
        "set_aside_at": datetime.now(UTC).isoformat(),
        "reason": reason,
        "line": entry.line.decode("utf-8", errors="replace").rstrip("\n"),
        "spool_file": entry.path.name,
    }
    fd = os.open(directory / REJECTED, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, json.dumps(kept).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


def try_lead(directory: Path) -> int | None:
    """The leader lock's file descriptor if this process got it, else None. Closing the
    descriptor (or dying) gives it up."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LEADER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def write_state(directory: Path, state: dict[str, Any]) -> None:
    _replace_file(directory / STATE, json.dumps(state).encode())


def _count_lines(path: Path, start: int = 0) -> tuple[int, bytes]:
    """Complete lines in `path` from `start`, and the first of them."""
    count, first = 0, b""
    try:
        with path.open("rb") as f:
            f.seek(start)
            carry = b""
            while chunk := f.read(_READ_CHUNK):
                count += chunk.count(b"\n")
                if not first:
                    carry += chunk
                    if b"\n" in carry:
                        first = carry[: carry.index(b"\n") + 1]
    except FileNotFoundError:
        pass
    return count, first


def status(directory: Path, now_ns: int | None = None) -> dict[str, Any]:
    """What the status endpoint shows, read from disk so that any process can answer."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    spooled, oldest = 0, None
    for path in _spool_files(directory):
        count, first = _count_lines(path, read_ack(path))
        spooled += count
        with contextlib.suppress(ValueError):
            if first:
                born = Record.from_line(first).time_ns
                oldest = born if oldest is None else min(oldest, born)
    try:
        state = json.loads((directory / STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        state = {}
    return {
        "spooled": spooled,
        "oldest_spooled_age_seconds": max(0.0, (now_ns - oldest) / 1e9) if oldest else 0.0,
        "last_error": state.get("last_error"),
        "last_error_at": state.get("last_error_at"),
        "last_published_at": state.get("last_published_at"),
        "rejected": _count_lines(directory / REJECTED)[0],
    }
