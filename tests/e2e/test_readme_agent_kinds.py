"""README's Python examples under "Concepts": the "Your own agent kinds" example, pasted into
function_app.py, passes the project's own checks (strict mypy, ruff) and indexes as a function app
with the new kind registered; the "Agents in one Python process" example runs as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from readme_commands import readme_blocks

from devhost.azurite import REPO_ROOT


def test_the_agent_kinds_example_passes_the_checks_as_function_app(tmp_path: Path) -> None:
    (example,) = [b for b in readme_blocks("Concepts", "python") if "# function_app.py" in b]
    app = tmp_path / "function_app.py"
    app.write_text(example)
    config = str(REPO_ROOT / "pyproject.toml")
    bin_dir = Path(sys.executable).parent
    checks = [
        [sys.executable, "-m", "mypy", "--config-file", config, str(app)],
        [str(bin_dir / "ruff"), "check", "--config", config, str(app)],
        [str(bin_dir / "ruff"), "format", "--check", "--config", config, str(app)],
    ]
    for command in checks:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{command[2:]}:\n{done.stdout}{done.stderr}"
    indexed = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import function_app as f; "
        "print(f.kinds.resolve('support').__name__, "
        "sorted(x.get_function_name() for x in f.app.get_functions())[:2])"
    )
    done = subprocess.run(
        [sys.executable, "-c", indexed], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "SupportAgent ['agent', 'agent_alignment']"


def test_the_in_process_example_runs_as_written(tmp_path: Path) -> None:
    (example,) = [
        b
        for b in readme_blocks("Concepts", "python")
        if "AgentManager()" in b and "# agents_that_act.py" not in b
    ]
    script = tmp_path / "agents_in_process.py"
    script.write_text(example)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['Strategic oversight of Asia']", "['ceo']"]
