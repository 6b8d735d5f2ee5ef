"""Every command in docs/ctc.md runs (exit status 0) against a tiny demo, so the document cannot rot.

Commands are taken from fenced blocks: in a ```console block every line starting with `$ ` (continued by
trailing backslashes) is one command and the other lines are its shown output; a ```bash block is one
script. They run with bash in a scratch directory laid out like the repository after `make demo`:
`data/demo` and `exp/demo/bundle` are the tiny prepared data and bundle of conftest, `configs/` and
`recipes/` are the repository's own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO

DOC = REPO / "docs" / "ctc.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_commands(text: str) -> list[str]:
    """The commands of the ```console and ```bash blocks of a Markdown text, in order."""
    commands = []
    for lang, body in FENCE.findall(text):
        if lang == "bash":
            commands.append(body.strip())
        elif lang == "console":
            lines = body.splitlines()
            for k, line in enumerate(lines):
                if line.startswith("$ "):
                    command = line[2:]
                    while command.endswith("\\") and k + 1 < len(lines):
                        k += 1
                        command = command[:-1] + " " + lines[k].strip()
                    commands.append(command)
    return commands


COMMANDS = doc_commands(DOC.read_text(encoding="utf-8"))


def test_parser_reads_console_and_bash_blocks() -> None:
    text = ("x\n```console\n$ asr a \\\n    --b\nout\n$ asr c\n```\n"
            "```python\nnot run\n```\n```bash\nx=1\necho $x\n```\n")
    assert doc_commands(text) == ["asr a  --b", "asr c", "x=1\necho $x"]


def test_doc_exercises_both_tools() -> None:
    assert any(c.startswith("asr inspect") for c in COMMANDS)
    assert any(c.startswith("asr align") for c in COMMANDS)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory, tiny_prepared: Path, tiny_bundle: Path) -> Path:
    """A working directory where the doc's paths exist: the tiny data and bundle stand in for the demo's."""
    work = tmp_path_factory.mktemp("docs")
    (work / "data").mkdir()
    (work / "exp" / "demo").mkdir(parents=True)
    (work / "data" / "demo").symlink_to(tiny_prepared, target_is_directory=True)
    (work / "exp" / "demo" / "bundle").symlink_to(tiny_bundle, target_is_directory=True)
    for name in ("configs", "recipes"):
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    return work


def run_command(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run one doc command with bash (errexit, pipefail) and this venv's `asr` and `python` first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def doc_runs(demo_dir: Path) -> dict[str, subprocess.CompletedProcess]:
    """Every doc command's result; two at a time, since most of each run is TensorFlow's import."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(COMMANDS, pool.map(lambda c: run_command(c, demo_dir), COMMANDS), strict=True))


@pytest.mark.parametrize("command", COMMANDS, ids=[c.splitlines()[0][:60] for c in COMMANDS])
@pytest.mark.slow
def test_doc_command_runs(command: str, doc_runs: dict[str, subprocess.CompletedProcess]) -> None:
    proc = doc_runs[command]
    assert proc.returncode == 0, f"{command}\n--- stdout\n{proc.stdout[-2000:]}\n--- stderr\n{proc.stderr[-2000:]}"
    assert proc.stdout.strip(), f"{command} printed nothing"
