"""README's "Thinking agents" script runs as written (offline model, in process), and does what
it says; the script also passes strict mypy and ruff, as users' code would be checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def script() -> str:
    (text,) = re.findall(
        r"^```python\n(# thinking_agents\.py\n.*?)^```$",
        README.read_text(),
        flags=re.MULTILINE | re.DOTALL,
    )
    return str(text)


def test_the_thinking_agents_example_runs(tmp_path: Path) -> None:
    path = tmp_path / "thinking_agents.py"
    path.write_text(script())
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(
        r"completed \{'ordered': 'widget', 'quantity': 40, 'order_ref': 'turn-[0-9a-f]{32}:1:0'\}",
        lines[0],
    ), lines
    assert lines[1:] == ["order widgets now", "['event']", "3 turns completed"]


def test_the_thinking_agents_example_passes_the_projects_checks(tmp_path: Path) -> None:
    """Strict mypy and ruff with the project's configuration (and mypy's cache)."""
    path = tmp_path / "thinking_agents.py"
    path.write_text(script())
    root = README.parent
    config = str(root / "pyproject.toml")
    bin_dir = Path(sys.executable).parent
    for command in (
        [sys.executable, "-m", "mypy", "--config-file", config, str(path)],
        [str(bin_dir / "ruff"), "check", "--config", config, str(path)],
        [str(bin_dir / "ruff"), "format", "--check", "--config", config, str(path)],
    ):
        done = subprocess.run(
            command, cwd=root, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, f"{command[2:]}:\n{done.stdout}{done.stderr}"
