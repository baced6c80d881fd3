"""README's "Agents that act" script runs as written, and does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_agents_that_act_example_runs(tmp_path: Path) -> None:
    (script,) = re.findall(
        r"^```python\n(# agents_that_act\.py\n.*?)^```$",
        README.read_text(),
        flags=re.MULTILINE | re.DOTALL,
    )
    path = tmp_path / "agents_that_act.py"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "cto goals: ['Grow revenue in Europe']",
        "board heard: goal.delegated",
        "ceo reminders: ['check-in']",
        "check-ins fired: 1 goal.check",
        "ceo reminders after goal.done: ()",
    ]
