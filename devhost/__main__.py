"""`python -m devhost`: run function_app.py locally on http://localhost:7071 over Azurite.

Loads local.settings.json (or the .example) into the environment without overriding what is
already set, starts Azurite on 10000-10002 unless told not to (or AzureWebJobsStorage points at
another account), serves the app until Ctrl-C or SIGTERM, then stops the host and Azurite in order.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from devhost.azurite import REPO_ROOT, STANDARD_PORTS, Azurite, AzuriteError
from devhost.config import load_host_json, load_local_settings
from devhost.errors import DevHostError
from devhost.host import DevHost

log = logging.getLogger("devhost")
DEV_STORAGE = "UseDevelopmentStorage=true"
STORAGE_SETTING = "AzureWebJobsStorage"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="the function app folder")
    parser.add_argument("--app", default="function_app", help="module holding the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP listen address")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default: 7071)")
    parser.add_argument("--no-azurite", action="store_true", help="use AzureWebJobsStorage as is")
    parser.add_argument(
        "--azurite-location", type=Path, default=None, help="persist Azurite data here"
    )
    parser.add_argument(
        "--queue-lease", type=int, default=30, help="seconds a running message stays leased"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, connection_string: str) -> None:
    port = args.port if args.port is not None else int(os.environ.get("DEVHOST_PORT", "7071"))
    config = load_host_json(args.root / "host.json")
    host = DevHost(
        args.app,
        connection_string=connection_string,
        http_host=args.host,
        http_port=port,
        config=config,
        root=args.root,
        queue_lease_seconds=args.queue_lease,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with host:
        print(f"devhost: task hub {host.hub!r}; functions:", flush=True)
        for spec in host.functions:
            detail = ""
            if spec.trigger_type == "httpTrigger":
                methods = ",".join(spec.trigger.get("methods") or ["*"])
                route = spec.trigger.get("route") or spec.name
                detail = f"[{methods}] {host.base_url}/{config.route_prefix}/{route}"
            elif spec.trigger_type == "queueTrigger":
                detail = f"queue {spec.trigger.get('queueName')}"
            print(f"  {spec.name}: {spec.trigger_type} {detail}", flush=True)
        print(f"devhost: listening on {host.base_url} (Ctrl-C to stop)", flush=True)
        await stop.wait()
        print("devhost: stopping", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("azure", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    used, _ = load_local_settings(args.root)
    if used is not None:
        print(f"devhost: settings from {used.name}", flush=True)
    storage = os.environ.get(STORAGE_SETTING, DEV_STORAGE)
    azurite: Azurite | None = None
    try:
        if not args.no_azurite and storage.startswith("UseDevelopmentStorage="):
            azurite = Azurite(*STANDARD_PORTS, location=args.azurite_location).start()
            storage = azurite.connection_string
            print(f"devhost: Azurite on ports {azurite.ports}", flush=True)
        elif storage.startswith("UseDevelopmentStorage="):
            blob, queue, table = STANDARD_PORTS
            storage = Azurite(blob, queue, table).connection_string
        os.environ[STORAGE_SETTING] = storage
        asyncio.run(_serve(args, storage))
    except (DevHostError, AzuriteError) as exc:
        print(f"devhost: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        if azurite is not None:
            azurite.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
