"""A scripted OpenAI-compatible chat completions server, for tests that need a real HTTP endpoint.

The real ``openai`` client talks to it over loopback, so retries, ``retry-after``, timeouts and
authentication headers are exercised as they are against Azure OpenAI, without a network or a
mocked SDK. It serves ``POST /v1/chat/completions`` (the ``openai`` API, ``base_url=<url>/v1``) and
``POST /openai/deployments/<deployment>/chat/completions?api-version=...`` (Azure OpenAI,
``azure_endpoint=<url>``).

Each request is answered by the next ``Scripted`` reply in the queue, else by the ``responder``
(a function of the request, for tests whose many turns run concurrently and must be answered by
content rather than by order), else by ``default``; with none of them, a 418 that no client retries
says the script ran out. Every request is recorded (``requests``) and counted, in total and per
the ``key`` a test chooses (e.g. ``last_user_message``)::

    with ScriptedOpenAI([Scripted.error(429, headers={"retry-after": "1"}), Scripted.text("hi")]) as server:
        reply = await model.complete(...)        # a profile with endpoint=server.url
        assert server.count() == 2
        assert server.requests[1].time - server.requests[0].time >= 0.9

As a process, for end-to-end runs outside pytest (Ctrl-C or SIGTERM stops it)::

    python tests/scripted_openai.py --port 8000 --script script.json   # a JSON list of replies
    python tests/scripted_openai.py --port 8000 --echo                 # "echo: <last user message>"

A reply in ``script.json`` is an object with ``Scripted``'s fields, e.g. ``{"content": "hi"}``,
``{"tool_calls": [["get_time", "{}"]]}``, ``{"status": 429, "headers": {"retry-after": "1"}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import re
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Recorded", "Scripted", "ScriptedOpenAI", "echo", "last_user_message"]

_AZURE_PATH = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")
_OPENAI_PATHS = ("/v1/chat/completions", "/openai/v1/chat/completions", "/chat/completions")
_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "DeploymentNotFound"),
    418: ("invalid_request_error", "script_exhausted"),
    429: ("rate_limit_exceeded", "429"),
}


@dataclass(frozen=True, slots=True)
class Scripted:
    """One answer: a completion (``content`` and/or ``tool_calls`` as (name, arguments text),
    arguments sent verbatim even when they are not JSON), or an error (``status`` >= 400, with an
    OpenAI-style error body saying ``message``). ``delay`` waits before answering (a reply slower than the client's
    timeout); ``headers`` are added to the response (``retry-after``, ``retry-after-ms``)."""

    content: str | None = None
    tool_calls: Sequence[tuple[str, str]] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    delay: float = 0.0
    model: str | None = None

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> Scripted:
        return cls(content=content, **kwargs)

    @classmethod
    def tools(cls, *calls: tuple[str, str], **kwargs: Any) -> Scripted:
        return cls(tool_calls=tuple(calls), **kwargs)

    @classmethod
    def error(
        cls, status: int, message: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> Scripted:
        return cls(status=status, message=message, headers=dict(headers or {}))

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Scripted:
        return cls(
            content=value.get("content"),
            tool_calls=tuple((str(n), str(a)) for n, a in value.get("tool_calls") or ()),
            prompt_tokens=int(value.get("prompt_tokens", 0)),
            completion_tokens=int(value.get("completion_tokens", 0)),
            status=int(value.get("status", 200)),
            headers={str(k): str(v) for k, v in (value.get("headers") or {}).items()},
            message=value.get("message"),
            delay=float(value.get("delay", 0.0)),
            model=value.get("model"),
        )


@dataclass(frozen=True, slots=True)
class Recorded:
    """A request as the server saw it. ``time`` is ``time.monotonic()`` when it arrived;
    ``headers`` are lower-cased; ``deployment`` is set on the Azure path."""

    time: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    deployment: str | None = None


def last_user_message(body: Any) -> str:
    """The text of the request's last user message ("" when there is none): a natural key for
    counting, and for answering concurrent turns by what they asked."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def echo(request: Recorded) -> Scripted:
    """A responder that repeats the last user message."""
    return Scripted.text(f"echo: {last_user_message(request.body)}")


class ScriptedOpenAI:
    """The server; a context manager that starts it on a free loopback port and stops it."""

    def __init__(
        self,
        script: Iterable[Scripted] = (),
        *,
        responder: Callable[[Recorded], Scripted | None] | None = None,
        default: Scripted | None = None,
        key: Callable[[Recorded], str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._script: deque[Scripted] = deque(script)
        self.responder = responder
        self.default = default
        self._key = key
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._counts: Counter[str] = Counter()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # -- what tests use --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root: an ``azure_endpoint``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The ``openai`` API's base URL."""
        return f"{self.url}/v1"

    def add(self, *replies: Scripted) -> None:
        """Queue more replies (answered in order, before the responder)."""
        with self._lock:
            self._script.extend(replies)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def count(self, key: str | None = None) -> int:
        """Requests received: all of them, or those whose ``key`` function gave ``key``."""
        with self._lock:
            return len(self._requests) if key is None else self._counts[key]

    @property
    def remaining(self) -> int:
        """Queued replies not yet used."""
        with self._lock:
            return len(self._script)

    def start(self) -> ScriptedOpenAI:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-openai",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; a reply still waiting out its ``delay`` is cut short."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()  # joins the request threads, which no longer wait

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the handler uses -------------------------------------------------------------------

    def _record(self, request: Recorded) -> Scripted:
        with self._lock:
            self._requests.append(request)
            if self._key is not None:
                self._counts[self._key(request)] += 1
            if self._script:
                return self._script.popleft()
        if self.responder is not None and (reply := self.responder(request)) is not None:
            return reply
        if self.default is not None:
            return self.default
        return Scripted.error(418, "the scripted server has no reply left for this request")

    def _completion(self, request: Recorded, reply: Scripted) -> dict[str, Any]:
        number = next(self._ids)
        body = request.body if isinstance(request.body, dict) else {}
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{number}_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                for i, (name, arguments) in enumerate(reply.tool_calls)
            ]
        return {
            "id": f"chatcmpl-scripted-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or str(body.get("model") or request.deployment or "scripted"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
            "system_fingerprint": None,
        }


def _error_body(status: int, message: str | None) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "error", None))
    return {
        "error": {
            "message": message or f"scripted error {status}",
            "type": kind,
            "param": None,
            "code": code,
        }
    }


def _handler_for(server: ScriptedOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so no keep-alive socket outlives stop().
        protocol_version = "HTTP/1.0"

        def do_POST(self) -> None:
            arrived = time.monotonic()
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            azure = _AZURE_PATH.match(url.path)
            request = Recorded(
                time=arrived,
                method="POST",
                path=url.path,
                query=dict(parse_qsl(url.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                deployment=azure["deployment"] if azure else None,
            )
            if not azure and url.path not in _OPENAI_PATHS:
                self._send(404, _error_body(404, f"no route for {url.path}"), {})
                return
            reply = server._record(request)
            if reply.delay and server._stopping.wait(reply.delay):
                return  # stopping: the client has given up on this reply
            if reply.status >= 400:
                self._send(reply.status, _error_body(reply.status, reply.message), reply.headers)
            else:
                self._send(reply.status, server._completion(request, reply), reply.headers)

        def _send(self, status: int, payload: Any, headers: Mapping[str, str]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-request-id", f"req-scripted-{time.monotonic_ns()}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left: that is what a slow reply tests

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: tests read ``requests`` instead

    return Handler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed)")
    parser.add_argument("--script", type=Path, help="a JSON list of replies, answered in order")
    parser.add_argument(
        "--echo", action="store_true", help="answer 'echo: <last user message>' after the script"
    )
    args = parser.parse_args(argv)
    script = json.loads(args.script.read_text()) if args.script else []
    server = ScriptedOpenAI(
        [Scripted.from_json(item) for item in script],
        responder=echo if args.echo else None,
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        print(f"scripted OpenAI server on {server.url} (openai API: {server.base_url})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.2):
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
