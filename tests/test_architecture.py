"""The package's layering as the README's Architecture table states it: every module in one group, imports pointing
down, no command module importing another, and no TensorFlow behind `import asr.cli`."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "asr"


def readme_groups() -> list[tuple[str, set[str]]]:
    """(group, modules) rows of the README's Architecture table, top (commands) first."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Architecture"):]
    end = section.find("\n## ", 3)
    section = section if end < 0 else section[:end]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("group", "---"):
            rows.append((cells[0], set(re.findall(r"`([a-z_]+)`", cells[1]))))
    return rows


def asr_imports(module: str) -> set[str]:
    """The `asr.*` modules a module of the package imports (at any depth of its code)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asr."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "asr":
            found |= {alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").is_file()}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("asr.")}
    return found - {module}


def test_every_module_is_in_one_group_of_the_readme():
    groups = readme_groups()
    assert [g for g, _ in groups][0] == "commands" and len(groups) >= 4
    listed = [m for _, modules in groups for m in modules]
    assert len(listed) == len(set(listed)), "a module is listed twice"
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert set(listed) == modules, (f"not in the README: {sorted(modules - set(listed))}; "
                                    f"no such module: {sorted(set(listed) - modules)}")


def test_imports_point_down():
    groups = readme_groups()
    level = {m: k for k, (_, modules) in enumerate(groups) for m in modules}
    commands = groups[0][1]
    wrong = []
    for module, k in level.items():
        for dep in asr_imports(module):
            if level[dep] < k or (module in commands and dep in commands and module != "cli"):
                wrong.append(f"{module} -> {dep}")
    assert not wrong, "imports pointing up or between commands: " + ", ".join(sorted(wrong))


def test_the_check_sees_an_upward_import():
    assert "recognize" in asr_imports("evaluate") and "batch" in asr_imports("inference")


def test_the_cli_imports_no_tensorflow():
    code = "import sys, asr.cli; print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
