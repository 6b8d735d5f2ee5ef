"""Output-folder locks: a live holder is refused by name, a dead one's lock is taken over, and kill -9 needs no
clean-up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

from asr.errors import AsrError
from asr.lock import HOST, LOCK_FILE, lock_dir

HOLD = "import sys, time; from asr.lock import lock_dir\nwith lock_dir(sys.argv[1], 'asr train'):\n" \
       "    print('locked', flush=True); time.sleep(120)"


def hold_lock(folder: Path) -> subprocess.Popen:
    """A process that holds `folder`'s lock until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def dead_pid() -> int:
    """The PID of a process of this host that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_holder_is_refused_by_pid_and_its_kill_frees_the_folder(tmp_path, capsys):
    folder = tmp_path / "run"
    proc = hold_lock(folder)
    try:
        with pytest.raises(AsrError, match=rf"^{folder} is in use by asr train \(pid {proc.pid}\)"):
            with lock_dir(folder, "asr prepare"):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == proc.pid  # kill -9 left its lock behind
    with lock_dir(folder, "asr prepare"):
        assert json.loads((folder / LOCK_FILE).read_text()) == {"pid": os.getpid(), "host": HOST,
                                                                 "command": "asr prepare"}
    assert f"taking over a stale lock of asr train (pid {proc.pid}), which no longer runs" in capsys.readouterr().err
    assert not (folder / LOCK_FILE).exists()
    assert folder.is_dir()  # it existed before this lock: kept


def test_one_process_holds_a_folder_at_a_time(tmp_path):
    folder = tmp_path / "run"
    with lock_dir(folder, "asr train"):
        with pytest.raises(AsrError, match=f"pid {os.getpid()}"):  # also within one process
            with lock_dir(folder, "asr train"):
                pass
    with lock_dir(folder, "asr train"):  # released: free again
        pass
    assert not folder.exists()  # created by the lock and left empty: removed again


def test_stale_lock_of_a_dead_pid_is_taken_over_and_other_hosts_are_refused(tmp_path, capsys):
    folder = tmp_path / "run"
    folder.mkdir()
    pid = dead_pid()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": HOST, "command": "asr prepare"}))
    with lock_dir(folder, "asr train"):
        pass
    assert f"stale lock of asr prepare (pid {pid})" in capsys.readouterr().err
    (folder / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": "elsewhere", "command": "asr train"}))
    with pytest.raises(AsrError, match=f"pid {pid} on host elsewhere.*delete {folder / LOCK_FILE}"):
        with lock_dir(folder, "asr train"):
            pass
    (folder / LOCK_FILE).write_text("")  # a process killed between creating the file and writing it
    with lock_dir(folder, "asr train"):
        pass
    assert "stale lock that names no process" in capsys.readouterr().err


def test_concurrent_takeovers_of_a_stale_lock_leave_one_winner(tmp_path):
    """Several processes find the same dead process's lock at once: exactly one of them takes it over."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_FILE).write_text(json.dumps({"pid": dead_pid(), "host": HOST, "command": "asr train"}))
    code = ("import sys, time; from asr.lock import lock_dir; from asr.errors import AsrError\n"
            "time.sleep(float(sys.argv[2]) - time.time())\n"
            "try:\n    with lock_dir(sys.argv[1], 'x'):\n        time.sleep(1.0); print('won')\n"
            "except AsrError:\n    print('refused')")
    start = time.time() + 1.5  # all start together, after their imports
    procs = [subprocess.Popen([sys.executable, "-c", code, str(folder), str(start)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["refused", "refused", "won"]
