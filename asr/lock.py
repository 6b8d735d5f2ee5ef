"""One writer per output folder: `asr train` and `asr prepare` lock theirs while they write it.

    with lock_dir(out, "asr train"):    # AsrError naming the other process if one holds OUT/.lock
        ...

    FOLDER/.lock    {"pid": ..., "host": ..., "command": ...}, created with O_CREAT | O_EXCL: one process wins

The holder also keeps an exclusive `flock` on the file. The kernel drops it when the process dies, however it
dies, so of several processes that find the lock of a dead process (its PID no longer running on this host)
exactly one takes it over; a `kill -9` never needs a manual clean-up. A lock written on another host (a shared
file system) cannot be checked from here: it is refused, naming that host, until its run ends or the file is
deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from asr.errors import AsrError

LOCK_FILE = ".lock"
HOST = socket.gethostname()


@contextlib.contextmanager
def lock_dir(folder: str | Path, command: str) -> Iterator[None]:
    """Hold FOLDER/.lock (creating FOLDER) while the block runs; AsrError naming the holder if another has it."""
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = _acquire(path, command)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # still ours (someone may have deleted it by hand)
                os.unlink(path)
        os.close(fd)  # releases the flock
        if created:  # a run refused before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()


def _acquire(path: Path, command: str) -> int:
    """An open descriptor of `path` holding its flock, with this process written into it."""
    for _ in range(5):  # the file may vanish between two steps (its holder finished): look again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        except FileExistsError:
            stale = _take_over(path)
            if stale is None:
                continue
            fd = stale
        else:
            if not _flock(fd):  # in the instant before our flock, another process took the empty file for stale
                os.close(fd)
                raise _busy(path, _owner(path))
        _write_owner(fd, command)
        return fd
    raise _busy(path, _owner(path))


def _take_over(path: Path) -> int | None:
    """The descriptor of an existing lock left by a dead process of this host (with a warning); None when the
    file vanished meanwhile; AsrError when its process runs, or ran on another host."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        owner = _read_owner(fd)
        if owner and (owner.get("host") != HOST or _alive(owner.get("pid"))):
            raise _busy(path, owner)
        if not _flock(fd):  # alive after all (e.g. another process is taking it over right now)
            raise _busy(path, _read_owner(fd))
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                what = f"of {owner.get('command', 'asr')} (pid {owner.get('pid')}), which no longer runs" \
                    if owner else "that names no process"
                print(f"warning: {path.parent}: taking over a stale lock {what}", file=sys.stderr, flush=True)
                return fd
        os.close(fd)  # released and deleted by its holder meanwhile
        return None
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def _flock(fd: int) -> bool:
    """Take the exclusive flock without waiting; False when another open file holds it."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock: the PID check alone decides
        return True
    return True


def _alive(pid: object) -> bool:
    """True when `pid` is a running process of this host (or cannot be checked: then it is taken as running)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _write_owner(fd: int, command: str) -> None:
    data = json.dumps({"pid": os.getpid(), "host": HOST, "command": command}).encode() + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_owner(fd: int) -> dict | None:
    """The lock's content, or None when it is empty or not ours to read (a process killed while writing it)."""
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode())
    except (ValueError, OSError):
        return None
    return owner if isinstance(owner, dict) else None


def _owner(path: Path) -> dict | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        return _read_owner(fd)
    finally:
        os.close(fd)


def _busy(path: Path, owner: dict | None) -> AsrError:
    """The one-line error for a folder another process writes."""
    folder = path.parent
    if not owner:
        return AsrError(f"{folder} is in use by another asr process (lock {path}); wait for it to end, or choose "
                        "another output folder")
    who = f"{owner.get('command', 'asr')} (pid {owner.get('pid')}"
    if owner.get("host") != HOST:
        return AsrError(f"{folder} is in use by {who} on host {owner.get('host')}); wait for it to end, or choose "
                        f"another output folder (if that run is over, delete {path})")
    return AsrError(f"{folder} is in use by {who}); wait for it to end, or choose another output folder")
