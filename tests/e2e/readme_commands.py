"""The curl commands of README.md, as a reader would copy them, for the README end-to-end test.

Commands come from the fenced ```bash blocks of two sections: "Start locally in 60 seconds" (only the
blocks after "Then, in another terminal") and "HTTP API". A line ending in a backslash continues on
the next line. Only `curl` commands are kept, in README order.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"
README_PORT = "localhost:7071"


@dataclass(frozen=True)
class CurlCommand:
    text: str
    """The command as the README has it (continuations joined with the backslash-newline kept)."""
    section: str

    def for_port(self, port: int) -> str:
        return self.text.replace(README_PORT, f"localhost:{port}")

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text.replace("\\\n", " "))

    @property
    def method(self) -> str:
        words = self.words
        return words[words.index("-X") + 1] if "-X" in words else "GET"

    @property
    def path(self) -> str:
        url = next(w for w in self.words if README_PORT in w)
        return url.split(README_PORT, 1)[1].split("?", 1)[0]

    @property
    def body(self) -> Any:
        words = self.words
        return json.loads(words[words.index("-d") + 1]) if "-d" in words else None


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def _commands(block: str, section: str) -> list[CurlCommand]:
    commands: list[CurlCommand] = []
    current: list[str] = []
    for line in block.splitlines():
        current.append(line)
        if line.endswith("\\"):
            continue
        text = "\n".join(current).strip()
        current = []
        if text.startswith("curl "):
            commands.append(CurlCommand(text, section))
    assert not current, f"a command in {section!r} ends with a continuation backslash"
    return commands


def readme_curl_commands(readme: Path = README) -> list[CurlCommand]:
    sections = _sections(readme.read_text())
    start = sections["Start locally in 60 seconds"]
    marker = "Then, in another terminal"
    assert marker in start, f"README: {marker!r} not found"
    found: list[CurlCommand] = []
    for block in _bash_blocks(start.split(marker, 1)[1]):
        found += _commands(block, "Start locally in 60 seconds")
    for block in _bash_blocks(sections["HTTP API"]):
        found += _commands(block, "HTTP API")
    return found


STATUS_MARK = "\n@@status="


def run_curl(command: CurlCommand, port: int) -> tuple[int, int, str]:
    """(exit code, HTTP status, body) of a README command run with the real ``curl`` against
    the test host on ``port`` (only ``localhost:7071`` changed)."""
    text = command.for_port(port) + f" -w '{STATUS_MARK}%{{http_code}}'"
    done = subprocess.run(
        ["bash", "-c", text], capture_output=True, text=True, timeout=60, check=False
    )
    body, _, status = done.stdout.rpartition(STATUS_MARK)
    return done.returncode, int(status or 0), body


def readme_section_curl_commands(section: str, readme: Path = README) -> list[CurlCommand]:
    """The curl commands of every ```bash block of one "## <section>", in README order."""
    found: list[CurlCommand] = []
    for block in _bash_blocks(_sections(readme.read_text())[section]):
        found += _commands(block, section)
    return found


def readme_blocks(section: str, language: str, readme: Path = README) -> list[str]:
    """The fenced ```<language> blocks of one "## <section>", in README order."""
    text = _sections(readme.read_text())[section]
    pattern = rf"^```{re.escape(language)}\n(.*?)^```$"
    return re.findall(pattern, text, flags=re.MULTILINE | re.DOTALL)


def readme_shell_commands(section: str, readme: Path = README) -> list[str]:
    """Every command of the section's ```bash blocks (continuation lines joined), in order."""
    commands: list[str] = []
    for block in readme_blocks(section, "bash", readme):
        current: list[str] = []
        for line in block.splitlines():
            current.append(line)
            if line.endswith("\\"):
                continue
            text = "\n".join(current).strip()
            current = []
            if text and not text.startswith("#"):
                commands.append(text)
        assert not current, f"a command in {section!r} ends with a continuation backslash"
    return commands
