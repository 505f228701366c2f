"""Run every benchmark module in `bench/` that defines `main()`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

# Benchmarks drive the services as the app and the worker do: with every job and subscriber.
import leadflow.wiring  # noqa: F401


def main() -> int:
    """Run the benchmarks named on the command line, or all of them."""
    here = Path(__file__).parent
    names = sys.argv[1:] or [
        m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_")
    ]
    if not names:
        print("no benchmarks yet")
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
