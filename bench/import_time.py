"""Cold import time of ``function_app`` against importing the four Azure SDKs it builds on.

Each import runs in a fresh interpreter (that is what a cold start pays), alternating the two so
machine noise hits both alike; the median of the rounds is reported. Target: ratio <= 1.25.

    .venv/bin/python bench/import_time.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDKS = "import azure.functions, azure.durable_functions, azure.storage.queue, azure.data.tables"
APP = "import function_app"
PROBE = "import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"


def measure(statement: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(stmt=statement)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    measure(APP)  # warm the file-system cache and .pyc files for both
    sdk_times, app_times = [], []
    for _ in range(args.rounds):
        sdk_times.append(measure(SDKS))
        app_times.append(measure(APP))
    sdks, app = statistics.median(sdk_times), statistics.median(app_times)
    print(f"{'four Azure SDKs':<28} {sdks * 1000:7.1f} ms")
    print(f"{'function_app':<28} {app * 1000:7.1f} ms")
    print(f"{'ratio (target <= 1.25)':<28} {app / sdks:7.2f}")
    print(
        json.dumps(
            {
                "bench": "import_time",
                "rounds": args.rounds,
                "sdks_ms": round(sdks * 1000, 1),
                "function_app_ms": round(app * 1000, 1),
                "ratio": round(app / sdks, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
