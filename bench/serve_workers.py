"""`leadflow serve` with one and with two worker processes: the latency of one request.

    .venv/bin/python -m bench serve_workers

On a migrated scratch PostgreSQL database, each server in turn answers 300 sequential
`GET /health` on one kept-alive connection (after 20 untimed): `leadflow serve` with one
worker, with two, and the same application under uvicorn's own listener for two workers
(`uvicorn.run(..., workers=2)`), which leaves Nagle's algorithm on for every connection
(src/leadflow/kit/listener.py says why). The three are served from the same code; only the
listener differs between the last two.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._common import fresh_database, summary
from bench.load import _env, _free_port, _start, _stop, _wait_ready

RUNS = 300
DB_NAME = "leadflow_bench_serve"
# The application under uvicorn's multi-worker path, as `leadflow serve` ran it before.
_UVICORN_OWN = (
    "import sys, uvicorn; uvicorn.run('leadflow.app:app_factory', factory=True,"
    " host='127.0.0.1', port=int(sys.argv[1]), workers=2, log_config=None)"
)


def _sequential(base: str) -> list[float]:
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(20):
            client.get("/health").raise_for_status()
        out = []
        for _ in range(RUNS):
            t = time.perf_counter()
            client.get("/health").raise_for_status()
            out.append((time.perf_counter() - t) * 1000)
    return out


def _measure(label: str, proc: subprocess.Popen[bytes], base: str) -> list[float]:
    try:
        _wait_ready(base)
        samples = _sequential(base)
    finally:
        _stop(proc)
    print(f"{label:<44} {summary(samples)}")
    return samples


def run(url: str) -> None:
    """The three servers one after another on the database at `url`."""
    tmp = Path(tempfile.mkdtemp(prefix="leadflow-serve-"))
    env = _env(
        url.replace("postgresql://", "postgresql+asyncpg://"),
        tmp,
        LEADFLOW_EMBEDDED_WORKER="false",
        LEADFLOW_REDIS_URL="",
    )
    print(f"{RUNS} sequential GET /health on one kept-alive connection; logs in {tmp}")
    results = {}
    for workers in (1, 2):
        port = _free_port()
        proc = _start(["serve", "--port", str(port), "--workers", str(workers)], env, tmp / "a.log")
        label = f"leadflow serve --workers {workers}"
        results[label] = _measure(label, proc, f"http://127.0.0.1:{port}")
    port = _free_port()
    with (tmp / "b.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _UVICORN_OWN, str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    own = _measure("uvicorn's own listener, 2 workers", proc, f"http://127.0.0.1:{port}")
    ours = results["leadflow serve --workers 2"]
    print(
        f"uvicorn's own listener / leadflow serve, 2 workers (p50):"
        f" {sorted(own)[RUNS // 2] / sorted(ours)[RUNS // 2]:.1f}x"
    )


def main() -> None:
    """Entry point for `python -m bench serve_workers`."""
    run(asyncio.run(fresh_database(DB_NAME)))
