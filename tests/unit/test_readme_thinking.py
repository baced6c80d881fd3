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


def test_the_thinking_agents_example_type_checks(tmp_path: Path) -> None:
    path = tmp_path / "thinking_agents.py"
    path.write_text(script())
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout
