"""Start and stop Azurite (the npm storage emulator) as a child process.

The local host and the test suite both need real Azure Storage semantics (queues, tables,
transactions, ETags) without an Azure account. Azurite from `node_modules` provides them; this
module owns its process so that every caller gets the same flags, the same readiness check and the
same clean shutdown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from devhost.errors import DevHostError

__all__ = [
    "ACCOUNT_KEY",
    "ACCOUNT_NAME",
    "Azurite",
    "AzuriteError",
    "AzuriteNotInstalledError",
    "AzuriteStartError",
    "connection_string_for",
    "free_port",
]

ACCOUNT_NAME = "devstoreaccount1"
# The well-known, public development key every Azurite and the old Storage Emulator accept.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = REPO_ROOT / "node_modules" / ".bin" / "azurite"
STANDARD_PORTS = (10000, 10001, 10002)


class AzuriteError(DevHostError):
    """Base class: Azurite could not be provided."""


class AzuriteNotInstalledError(AzuriteError):
    """node_modules/.bin/azurite is missing: `npm ci` has not been run."""


class AzuriteStartError(AzuriteError):
    """The process exited or its ports never opened."""


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS picks it: parallel runs don't clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def connection_string_for(blob_port: int, queue_port: int, table_port: int) -> str:
    """The explicit-endpoint connection string (any ports, unlike UseDevelopmentStorage)."""
    base = "http://127.0.0.1"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{ACCOUNT_NAME};"
        f"QueueEndpoint={base}:{queue_port}/{ACCOUNT_NAME};"
        f"TableEndpoint={base}:{table_port}/{ACCOUNT_NAME};"
    )


@dataclass
class Azurite:
    """One Azurite process. Use as a context manager, or call `start()` / `stop()`.

    Ports default to free loopback ports; pass `STANDARD_PORTS` for the well-known 10000-10002.
    `location=None` keeps everything in memory (nothing left behind by tests).
    """

    blob_port: int = 0
    queue_port: int = 0
    table_port: int = 0
    location: Path | None = None
    binary: Path = DEFAULT_BINARY
    start_timeout: float = 30.0
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _stderr: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def connection_string(self) -> str:
        return connection_string_for(self.blob_port, self.queue_port, self.table_port)

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.blob_port, self.queue_port, self.table_port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        args = [
            str(self.binary),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--queueHost",
            "127.0.0.1",
            "--tableHost",
            "127.0.0.1",
            "--blobPort",
            str(self.blob_port),
            "--queuePort",
            str(self.queue_port),
            "--tablePort",
            str(self.table_port),
        ]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            args += ["--location", str(self.location)]
        return args

    def start(self) -> Azurite:
        if self.running:
            return self
        if not (self.binary.exists() and os.access(self.binary, os.X_OK)):
            raise AzuriteNotInstalledError(
                f"{self.binary} not found: run `npm ci` in {REPO_ROOT} to install Azurite"
            )
        if shutil.which("node") is None:
            raise AzuriteNotInstalledError("Node.js (`node`) is not on PATH; Azurite needs it")
        self.blob_port = self.blob_port or free_port()
        self.queue_port = self.queue_port or free_port()
        self.table_port = self.table_port or free_port()
        busy = [p for p in self.ports if _port_open(p)]
        if busy:
            raise AzuriteStartError(f"ports already in use: {busy} (another Azurite running?)")
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        # A file, not a pipe: a long-running Azurite must never block on a full pipe buffer.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
        deadline = time.monotonic() + self.start_timeout
        while not all(_port_open(p) for p in self.ports):
            if self._process.poll() is not None:
                err = self._read_stderr()
                self.stop()
                raise AzuriteStartError(f"Azurite exited during start-up: {err}")
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteStartError(
                    f"Azurite ports {self.ports} not open after {self.start_timeout} s"
                )
            time.sleep(0.05)
        return self

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip()[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate, then kill if it does not go; always reap the process and close its pipe."""
        proc, self._process = self._process, None
        err, self._stderr = self._stderr, None
        if proc is None:
            if err is not None:
                err.close()
            return
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if err is not None:
                err.close()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
