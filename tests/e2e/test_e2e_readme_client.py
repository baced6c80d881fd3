"""README.md's "Python client" and "Command line" examples work, as written, against the AOS app
under `python -m devhost`.

Each ```python block of "Python client" runs as a script, and each command of the ```bash blocks
of "Command line" runs with bash, in README order, with only `AOS_URL` set to the test host (the
README relies on the default, `http://localhost:7071`) and `.venv/bin` first on PATH (where
`make setup` puts `aos`). Each must exit 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aos_e2e_support import aos_host
from readme_commands import readme_blocks, readme_shell_commands

from devhost.azurite import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.azurite]


def test_readme_client_and_command_line_examples_run(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    scripts = readme_blocks("Python client", "python")
    commands = readme_shell_commands("Command line")
    assert len(scripts) >= 2
    assert len(commands) >= 10
    assert all(c.startswith("aos ") for c in commands), commands
    with aos_host(host_env, tmp_path / "devhost.log") as host:
        env = {k: v for k, v in os.environ.items() if k != "AOS_FUNCTION_KEY"}
        bin_dir = str(Path(sys.executable).parent)
        env |= {"AOS_URL": host.base_url, "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"}
        failures = []
        for n, script in enumerate(scripts, 1):
            path = tmp_path / f"readme_example_{n}.py"
            path.write_text(script)
            done = subprocess.run(
                [sys.executable, str(path)],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            print(f"--- python example {n}\n{done.stdout}")
            if done.returncode != 0:
                failures.append(f"python example {n}: exit {done.returncode}\n{done.stderr}")
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            print(f"--- {command}\n{done.stdout}")
            if done.returncode != 0:
                failures.append(f"{command}: exit {done.returncode}\n{done.stderr}")
        assert not failures, "README examples failed:\n" + "\n".join(failures)
