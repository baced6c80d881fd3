"""Run `python -m devhost` as a real child process for the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from devhost.azurite import REPO_ROOT, free_port


class HostProcess:
    """One `python -m devhost` process on a free port; kill it and start it again at will."""

    def __init__(self, env: dict[str, str], log_path: Path, extra_args: list[str] | None = None):
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.extra_args = extra_args or []
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, ready_path: str = "/api/health", limit: float = 60.0) -> None:
        self._log = self.log_path.open("ab")
        command = [sys.executable, "-m", "devhost", "--no-azurite", "--port", str(self.port)]
        self._process = subprocess.Popen(
            [*command, "--queue-lease", "3", *self.extra_args],
            cwd=REPO_ROOT,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + limit
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while True:
                if self._process.poll() is not None:
                    raise RuntimeError(f"devhost exited {self._process.returncode}: {self.log()}")
                try:
                    client.get(ready_path)
                    return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"devhost not ready after {limit}s: {self.log()}")
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, exactly like a crashed host."""
        self._end(signal.SIGKILL)

    def stop(self) -> int:
        return self._end(signal.SIGTERM)

    def _end(self, signum: int) -> int:
        process, self._process = self._process, None
        code = 0
        if process is not None:
            if process.poll() is None:
                process.send_signal(signum)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(15)
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code
