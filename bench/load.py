"""Load: a realistic request mix against served processes, rate stepped up until it breaks.

    .venv/bin/python -m bench load                       # PostgreSQL (1M leads) + SQLite
    LEADFLOW_LOAD_SECONDS=60 .venv/bin/python -m bench load   # a shorter run
    LEADFLOW_LOAD_RATES=70 LEADFLOW_LOAD_ENGINES=sqlite .venv/bin/python -m bench load
                                                          # 5 minutes at one rate, SQLite only

PostgreSQL: the 1M-lead database of `bench leads_list` (built first if missing), served by
`leadflow serve --workers 2` (two API processes, no embedded worker) and one `leadflow
worker`, with Redis for the queue, rate limits and stream wake-ups — the scale-out shape. SQLite:
one `leadflow serve` process (embedded worker) on a database of LEADFLOW_LOAD_SQLITE_ROWS
leads. The mix: list and search 60%, get a lead 20%, create and update 15%, import (5 rows)
and AI (a follow-up draft, answered locally) 5%. Requests are sent open-loop at a fixed rate
per step (LEADFLOW_LOAD_RATES, requests/s), each step LEADFLOW_LOAD_SECONDS / steps long,
after an uncounted warm-up at the first rate; a step holds when no request failed (transport
error or 5xx; any 4xx but 409 counts too) and the p99 latency, from when each request was due
(queueing included), is ≤ 100 ms; at most LEADFLOW_LOAD_IN_FLIGHT (64) requests on the wire.
Memory: VmRSS of every served process, sampled every 2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

import asyncpg
import httpx

from bench._common import BENCH_SECRET, PG_ADMIN_URL, pct

SECONDS = float(os.environ.get("LEADFLOW_LOAD_SECONDS", "300"))
RATES = [int(r) for r in os.environ.get("LEADFLOW_LOAD_RATES", "25,50,100,150,200").split(",")]
SQLITE_ROWS = int(os.environ.get("LEADFLOW_LOAD_SQLITE_ROWS", "50000"))
ENGINES = os.environ.get("LEADFLOW_LOAD_ENGINES", "postgresql,sqlite").split(",")
P99_LIMIT_MS = 100.0
IN_FLIGHT = int(os.environ.get("LEADFLOW_LOAD_IN_FLIGHT", "64"))
MEMORY_WINDOW = 30  # samples (2 s apart) compared at the start and at the end of a run
WORDS = ("kramer", "müller", "schmidt", "weber", "fischer", "lea", "jonas")
STATUSES = ("new", "contacted", "qualified", "proposal", "won", "lost")


@dataclass
class Step:
    """What one rate step saw."""

    rate: int
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    def fail(self, why: str) -> None:
        self.errors[why] = self.errors.get(why, 0) + 1

    @property
    def holds(self) -> bool:
        return not self.errors and pct(self.latencies, 99) <= P99_LIMIT_MS


class Mix:
    """The request mix for one signed-in admin."""

    def __init__(self, token: str, lead_ids: list[str]) -> None:
        self.h = {"Authorization": f"Bearer {token}"}
        self.ids = lead_ids
        self.rng = random.Random(7)
        self.n = 0

    def pick(self) -> tuple[str, str, dict[str, object]]:
        """(label, method, request kwargs)."""
        r = self.rng.random()
        self.n += 1
        if r < 0.30:
            status = self.rng.choice(STATUSES)
            return "list", "GET", {"url": "/api/v1/leads", "params": {"status": status}}
        if r < 0.60:
            return "search", "GET", {"url": "/api/v1/leads", "params": {"q": self._word()}}
        if r < 0.80:
            return "get", "GET", {"url": f"/api/v1/leads/{self.rng.choice(self.ids)}"}
        if r < 0.88:
            body = {"name": f"Load {self.n} {uuid.uuid4().hex[:8]}", "status": "new"}
            return "create", "POST", {"url": "/api/v1/leads", "json": body}
        if r < 0.95:
            lead = self.rng.choice(self.ids)
            return (
                "update",
                "PATCH",
                {"url": f"/api/v1/leads/{lead}/notes", "json": {"notes": f"called back {self.n}"}},
            )
        if r < 0.98:
            tag = uuid.uuid4().hex[:10]
            csv = "Name,E-Mail,Status\n" + "".join(
                f"Import {tag} {i},imp-{tag}-{i}@example.com,new\n" for i in range(5)
            )
            return (
                "import",
                "POST",
                {
                    "url": "/api/v1/leads/import?analyze=false",
                    "content": csv.encode(),
                    "headers": {"Content-Type": "text/csv"},
                },
            )
        ai_body = {
            "action": "generate_message",
            "data": {
                "messages": [{"role": "user", "content": "Schreib ein Follow-up"}],
                "lead": {"name": "Lea Kramer", "status": "offen", "channel": "E-Mail"},
            },
        }
        return "ai", "POST", {"url": "/api/v1/ai", "json": ai_body}

    def _word(self) -> str:
        word = self.rng.choice(WORDS)
        return word[: self.rng.randint(min(4, len(word)), len(word))]


async def _one(
    client: httpx.AsyncClient, mix: Mix, step: Step, due: float, slots: asyncio.Semaphore
) -> None:
    try:
        async with slots:
            await _request(client, mix, step, due)
    except Exception as exc:  # the driver's own fault counts as a failed request, loudly
        step.fail(f"driver: {type(exc).__name__}: {exc}")


async def _request(client: httpx.AsyncClient, mix: Mix, step: Step, due: float) -> None:
    label, method, kw = mix.pick()
    headers = {**mix.h, **kw.pop("headers", {})}  # type: ignore[dict-item]
    try:
        r = await client.request(method, headers=headers, **kw)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        step.fail(f"{label}: {type(exc).__name__}")
        return
    # From when the request was due, not when it was sent: time spent queued behind earlier
    # requests counts (open loop), so a server that falls behind shows it.
    ms = (time.perf_counter() - due) * 1000
    step.latencies.append(ms)
    step.by_kind.setdefault(label, []).append(ms)
    if r.status_code >= 400 and r.status_code != 409:
        step.fail(f"{label}: {r.status_code}")


async def run_step(bases: list[str], mix: Mix, rate: int, seconds: float) -> Step:
    """Send `rate` requests a second for `seconds`, round-robin over `bases` (as a load
    balancer would), without waiting for answers before the next is due."""
    step = Step(rate)
    # At most IN_FLIGHT requests on the wire; the rest wait for a slot (cheaply) with their
    # due time kept. httpx's own pool slows down badly with thousands of queued requests.
    slots = asyncio.Semaphore(IN_FLIGHT)
    per_client = max(1, IN_FLIGHT // len(bases))
    limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    clients = [httpx.AsyncClient(base_url=b, timeout=30, limits=limits) for b in bases]
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    try:
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # pacing the open-loop sender, not synchronising
            client = clients[i % len(clients)]
            task = asyncio.create_task(_one(client, mix, step, due, slots))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            step.sent += 1
        await asyncio.gather(*tasks)
    finally:
        for c in clients:
            await c.aclose()
    return step


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree(pid: int) -> list[int]:
    """The process and its children (uvicorn's worker processes)."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out.extend(_tree(int(child)))
    return out


async def sample_memory(
    roots: list[int], into: dict[int, list[float]], stop: asyncio.Event
) -> None:
    """VmRSS of every process under `roots`, every 2 s, until `stop`."""
    while not stop.is_set():
        for root in roots:
            for pid in _tree(root):
                into.setdefault(pid, []).append(_rss_mb(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", "from leadflow.cli import app; app()", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _wait_ready(base: str) -> None:
    with httpx.Client(timeout=2) as c:
        for _ in range(600):
            try:
                if c.get(f"{base}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)  # readiness poll: the loop ends on the condition
    raise RuntimeError(f"{base} did not become ready")


def _env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The served processes' environment: this database, generous AI limits (the mix asks
    for a draft every few requests), warnings only."""
    return {
        **os.environ,
        "LEADFLOW_DATABASE_URL": database_url,
        "LEADFLOW_SECRET_KEY": BENCH_SECRET,
        "LEADFLOW_DATA_DIR": str(data_dir),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        "LEADFLOW_AI_RATE_LIMIT_PER_MINUTE": "1000000",
        "LEADFLOW_AI_DAILY_LIMIT": "0",
        **extra,
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def session_token(database_url: str, email: str, secret: str) -> tuple[str, list[str]]:
    """An access token for `email` and up to 5,000 of its organisation's lead ids."""
    from sqlalchemy import select

    from leadflow.auth.service import start_session
    from leadflow.config import Settings
    from leadflow.db.engine import Database, session_scope
    from leadflow.models.lead import Lead
    from leadflow.models.user import User

    db = Database(database_url)
    settings = Settings(secret_key=secret, database_url=database_url)
    async with session_scope(db) as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None, f"no user {email}"
        token = (await start_session(session, settings, user)).access_token
        ids = await session.scalars(
            select(Lead.id).where(Lead.organization_id == user.organization_id).limit(5000)
        )
        lead_ids = [str(i) for i in ids]
    await db.dispose()
    return token, lead_ids


def _report(title: str, steps: list[Step], memory: dict[int, list[float]]) -> None:
    print(f"-- {title}")
    print(f"{'rate/s':>7} {'sent':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  holds")
    best = 0
    for s in steps:
        p50 = pct(s.latencies, 50) if s.latencies else 0.0
        p99 = pct(s.latencies, 99) if s.latencies else 0.0
        n_err = sum(s.errors.values())
        print(f"{s.rate:>7} {s.sent:>7} {p50:>8.1f} {p99:>8.1f} {n_err:>7}  {s.holds}")
        if s.errors:
            print(f"        errors: {dict(sorted(s.errors.items()))}")
        # Which kinds of request make the tail.
        kinds = ", ".join(
            f"{k} {pct(v, 50):.0f}/{pct(v, 99):.0f}" for k, v in sorted(s.by_kind.items())
        )
        print(f"        p50/p99 ms by kind: {kinds}")
        if s.holds:
            best = max(best, s.rate)
    print(f"highest rate held (0 errors, p99 ≤ {P99_LIMIT_MS:.0f} ms): {best}/s")
    for pid, mb in sorted(memory.items()):
        live = [m for m in mb if m]
        if live:
            # Growth: the median of the run's last minute against that of its first (the
            # warm-up included; a sample every 2 s), so one spike does not read as a leak.
            window = min(MEMORY_WINDOW, max(1, len(live) // 3))
            first, last = median(live[:window]), median(live[-window:])
            print(
                f"   pid {pid}: RSS start {live[0]:.0f} MB, end {live[-1]:.0f} MB,"
                f" max {max(live):.0f} MB ({len(live)} samples); median first"
                f" {window * 2} s {first:.0f} MB, last {window * 2} s {last:.0f} MB"
                f" ({last - first:+.0f} MB)"
            )
            # The median of each minute, to tell a plateau from a steady climb.
            minutes = [
                f"{median(live[i : i + MEMORY_WINDOW]):.0f}"
                for i in range(0, len(live), MEMORY_WINDOW)
            ]
            print(f"      per minute (MB): {' '.join(minutes)}")


async def _drive(title: str, bases: list[str], roots: list[int], mix: Mix) -> None:
    memory: dict[int, list[float]] = {}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(roots, memory, stop))
    # Warm-up (connections, caches, first plans): not counted.
    await run_step(bases, mix, RATES[0], min(10.0, SECONDS / len(RATES)))
    steps = []
    for rate in RATES:
        steps.append(await run_step(bases, mix, rate, SECONDS / len(RATES)))
    stop.set()
    await sampler
    _report(title, steps, memory)


async def postgres(tmp: Path) -> None:
    """Two API processes and one worker on the 1M-lead database, with Redis."""
    from bench import leads_list

    if await leads_list._reuse() is None:
        await leads_list._load(await leads_list.fresh_database(leads_list.DB_NAME))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{leads_list.DB_NAME}"
    db_url = url.replace("postgresql://", "postgresql+asyncpg://")
    token, ids = await session_token(db_url, "bench@example.com", BENCH_SECRET)
    port = _free_port()
    env = _env(
        db_url,
        tmp / "pg",
        LEADFLOW_REDIS_URL="redis://127.0.0.1:6379/13",
        LEADFLOW_EMBEDDED_WORKER="false",
    )
    api = _start(["serve", "--port", str(port), "--workers", "2"], env, tmp / "pg-api.log")
    worker = _start(["worker"], env, tmp / "pg-worker.log")
    started = datetime.now(UTC)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        await _drive(
            "PostgreSQL, 1M leads: 2 API processes + 1 worker, Redis",
            [base],
            [api.pid, worker.pid],
            Mix(token, ids),
        )
    finally:
        _stop(api)
        _stop(worker)
        # The leads the run created go again, so the other benchmarks can reuse the database.
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DELETE FROM leads WHERE created_at >= $1", started)
        finally:
            await conn.close()


async def sqlite(tmp: Path) -> None:
    """One process (embedded worker) on SQLite with SQLITE_ROWS leads."""
    from bench import leads_list
    from leadflow.db import migrate

    path = tmp / "load.db"
    db_url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(migrate.upgrade, db_url)
    await leads_list.load_sqlite(db_url, SQLITE_ROWS)
    token, ids = await session_token(db_url, "bench@example.com", BENCH_SECRET)
    port = _free_port()
    env = _env(db_url, tmp / "sqlite", LEADFLOW_REDIS_URL="")
    api = _start(["serve", "--port", str(port)], env, tmp / "sqlite-api.log")
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        await _drive(
            f"SQLite, {SQLITE_ROWS:,} leads: 1 process", [base], [api.pid], Mix(token, ids)
        )
    finally:
        _stop(api)


async def run() -> None:
    """PostgreSQL, then SQLite."""
    tmp = Path(tempfile.mkdtemp(prefix="leadflow-load-"))
    print(f"{SECONDS:.0f} s per engine, rates {RATES}/s; logs in {tmp}")
    if "postgresql" in ENGINES:
        await postgres(tmp)
    if "sqlite" in ENGINES:
        await sqlite(tmp)


def main() -> None:
    """Entry point for `python -m bench load`."""
    asyncio.run(run())
