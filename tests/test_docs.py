"""Every command in docs/ctc.md runs (exit status 0), and what `asr inspect` prints is what the doc shows.

Commands are taken from fenced blocks: in a ```console block every line starting with `$ ` (continued by
trailing backslashes) is one command and the other lines are its shown output; a ```bash block is one
script. They run with bash in a scratch directory laid out like the repository after `make demo`:
`data/demo` is the demo corpus prepared with configs/demo.yaml, as `make demo` prepares it, `exp/demo/bundle`
the tiny bundle of conftest (a trained demo model would take minutes), `configs/` and `recipes/` are the
repository's own. `asr inspect` reads only data and config, so its output must match the doc's line for line
(the doc may leave lines out with `...`); what the model prints (align's paths and losses) cannot match a tiny
model's and is only run.
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


def doc_outputs(text: str) -> dict[str, list[str]]:
    """The commands of the ```console and ```bash blocks of a Markdown text, in order, each with the output lines
    the doc shows for it (a console command's following lines; none for a bash script)."""
    commands: dict[str, list[str]] = {}
    for lang, body in FENCE.findall(text):
        if lang == "bash":
            commands[body.strip()] = []
        elif lang == "console":
            lines, command = body.splitlines(), None
            k = 0
            while k < len(lines):
                line = lines[k]
                if line.startswith("$ "):
                    command = line[2:]
                    while command.endswith("\\") and k + 1 < len(lines):
                        k += 1
                        command = command[:-1] + " " + lines[k].strip()
                    commands[command] = []
                elif command is not None:
                    commands[command].append(line)
                k += 1
    return commands


def doc_commands(text: str) -> list[str]:
    """The commands of the ```console and ```bash blocks of a Markdown text, in order."""
    return list(doc_outputs(text))


OUTPUTS = doc_outputs(DOC.read_text(encoding="utf-8"))
COMMANDS = list(OUTPUTS)


def test_parser_reads_console_and_bash_blocks() -> None:
    text = ("x\n```console\n$ asr a \\\n    --b\nout\n$ asr c\n```\n"
            "```python\nnot run\n```\n```bash\nx=1\necho $x\n```\n")
    assert doc_commands(text) == ["asr a  --b", "asr c", "x=1\necho $x"]
    assert doc_outputs(text)["asr a  --b"] == ["out"] and doc_outputs(text)["asr c"] == []


def test_doc_exercises_both_tools() -> None:
    assert any(c.startswith("asr inspect") for c in COMMANDS)
    assert any(c.startswith("asr align") for c in COMMANDS)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bundle: Path) -> Path:
    """A working directory where the doc's paths exist: the demo data as `make demo` prepares it, and the tiny
    bundle standing in for the demo's."""
    from asr.config import load_config
    from asr.prepare import prepare

    work = tmp_path_factory.mktemp("docs")
    (work / "exp" / "demo").mkdir(parents=True)
    prepare(REPO / "recipes" / "demo" / "corpus", work / "data" / "demo", load_config(REPO / "configs" / "demo.yaml"),
            n_jobs=2, progress=False)
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


def shown_lines_in_order(shown: list[str], printed: str) -> list[str]:
    """The doc's shown lines (but `...`) that are not found, in order, among the printed lines."""
    lines, k, missing = printed.splitlines(), 0, []
    for want in (line for line in shown if line.strip() != "..."):
        found = next((j for j in range(k, len(lines)) if lines[j].rstrip() == want.rstrip()), None)
        if found is None:
            missing.append(want)
        else:
            k = found + 1
    return missing


INSPECT = [c for c in COMMANDS if c.startswith("asr inspect")]


@pytest.mark.parametrize("command", INSPECT, ids=[c[:60] for c in INSPECT])
@pytest.mark.slow
def test_doc_shows_what_inspect_prints(command: str, doc_runs: dict[str, subprocess.CompletedProcess]) -> None:
    assert OUTPUTS[command], f"the doc shows no output for {command}"
    missing = shown_lines_in_order(OUTPUTS[command], doc_runs[command].stdout)
    assert not missing, f"{command}: the doc shows lines the command does not print:\n" + "\n".join(missing)


def test_shown_lines_must_appear_in_order() -> None:
    assert shown_lines_in_order(["a", "...", "c"], "a\nb\nc\n") == []
    assert shown_lines_in_order(["c", "a"], "a\nb\nc\n") == ["a"]  # out of order
    assert shown_lines_in_order(["a 1.0%"], "a 1.1%\n") == ["a 1.0%"]  # a number that changed
