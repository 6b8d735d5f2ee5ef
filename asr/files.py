"""Atomic file writes and JSON/JSONL helpers: a killed process never leaves a half-written file."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from asr.errors import AsrError, first_line


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # mkstemp/mkdtemp create 0600/0700; finished outputs get the usual permissions instead
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)  # the disk (or the user's quota) is full
SPACE_MARGIN = 16 * 2**20  # bytes kept free beyond a write's estimate: logs and other small files still fit
MB = 2**20


class DiskFullError(AsrError):
    """No space left for a write; the message names the final path (never a temporary)."""

    def __init__(self, path: str | Path, needed: int | None = None, free: int | None = None):
        self.path, self.needed, self.free = path, needed, free
        sizes = f": needs ~{_mb(needed)} MB, {_mb(free)} MB free" if needed is not None and free is not None else ""
        super().__init__(f"no space left on device for {path}{sizes}; free some space, then re-run the command "
                         "(asr train: with --resume)")

    def __reduce__(self) -> tuple:  # raised in a prepare worker process, it is pickled back to the parent
        return DiskFullError, (self.path, self.needed, self.free)


def _mb(n: int | None) -> int:
    return -(-(n or 0) // MB)  # rounded up: "needs ~1 MB" rather than "needs ~0 MB"


def ensure_free_space(path: str | Path, needed: int) -> None:
    """AsrError unless the file system of `path` (or its nearest existing parent) has `needed` bytes plus
    SPACE_MARGIN free. Checked before big writes: h5py can crash the process on a full disk (no exception to
    catch), and a check up front leaves the previous checkpoint or bundle untouched."""
    where = Path(path)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < needed + SPACE_MARGIN:
        raise DiskFullError(path, needed + SPACE_MARGIN, free)


def remove(path: str | Path) -> None:
    """Delete a file, a link or a directory tree; nothing when it does not exist."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def path_size(path: str | Path) -> int:
    """Bytes of a file, or of all files under a directory; 0 when it does not exist."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


@contextlib.contextmanager
def _disk_full_as_error(path: Path) -> Iterator[None]:
    """A full disk (ENOSPC, EDQUOT) inside an atomic write becomes the one-line AsrError naming `path`; so does
    one from a nested atomic write into the temporary directory. h5py reports it without an errno, in its text."""
    try:
        yield
    except DiskFullError as err:  # from a write into the temporary: name the final path instead
        raise DiskFullError(path, err.needed, err.free) from None
    except OSError as err:
        if err.errno in FULL_ERRNOS or "No space left on device" in str(err):
            raise DiskFullError(path) from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with _disk_full_as_error(path):
            yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `path`; on success it replaces `path` as a whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _disk_full_as_error(path):
            yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            os.replace(path, old)  # two renames: the window without `path` is tiny, never a mix
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON atomically."""
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; AsrError naming it when it is not valid JSON (damaged, truncated or mis-edited)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
        raise AsrError(f"{path}: not valid JSON ({first_line(err)})") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write one JSON object per line, atomically."""
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file into a list of dicts."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
