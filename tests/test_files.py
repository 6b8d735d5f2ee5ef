"""Atomic writes on a full disk: one-line AsrError naming the final path, the previous file or directory kept."""

from __future__ import annotations

import errno
import pickle
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from asr import files
from asr.errors import AsrError
from asr.files import DiskFullError, atomic_dir, ensure_free_space, write_json, write_text

Usage = namedtuple("Usage", "total used free")


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_in_write_text_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "log.csv"
    write_text(path, "old\n")
    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(AsrError, match=rf"^no space left on device for {path}; free some space") as err:
        write_text(path, "new\n")
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]  # the temporary is gone


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_in_atomic_dir_keeps_the_old_directory_and_names_it(tmp_path, code):
    path = tmp_path / "checkpoint"
    with atomic_dir(path) as tmp:
        (tmp / "state.json").write_text("old")
    with pytest.raises(AsrError, match=rf"^no space left on device for {path};"):
        with atomic_dir(path) as tmp:
            (tmp / "state.json").write_text("new")
            raise OSError(code, "disk full")
    assert (path / "state.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_a_nested_write_names_the_final_directory_not_the_temporary(tmp_path, monkeypatch):
    path = tmp_path / "bundle"
    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(AsrError) as err:
        with atomic_dir(path) as tmp:
            write_json(tmp / "stats.json", {})
    assert str(err.value).startswith(f"no space left on device for {path};")
    assert ".tmp" not in str(err.value)


def test_other_os_errors_pass_through(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_dir(tmp_path / "x"):
            raise PermissionError(errno.EACCES, "denied")


def test_ensure_free_space_names_the_path_and_the_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 3 * 2**20, 3 * 2**20))
    target = tmp_path / "not" / "yet" / "model.npy"  # checked on the nearest existing folder
    needs = files.SPACE_MARGIN // 2**20 + 100
    with pytest.raises(AsrError, match=rf"^no space left on device for {target}: needs ~{needs} MB, 3 MB free;"):
        ensure_free_space(target, 100 * 2**20)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**12, 0, 10**12))
    ensure_free_space(target, 100 * 2**20)  # enough: no error


def test_disk_full_error_survives_a_worker_process_boundary(tmp_path):
    err = pickle.loads(pickle.dumps(DiskFullError(tmp_path / "feats" / "train-00000.npy", 5 * 2**20, 2**20)))
    assert str(err) == str(DiskFullError(tmp_path / "feats" / "train-00000.npy", 5 * 2**20, 2**20))
    assert "needs ~5 MB, 1 MB free" in str(err)
