"""Import of a generated CSV through the endpoint's code path vs raw COPY of the same file.

    .venv/bin/python -m bench import_leads          # 1,000,000 rows on PostgreSQL + 100k on SQLite
    LEADFLOW_BENCH_ROWS=200000 .venv/bin/python -m bench import_leads
    LEADFLOW_BENCH_REPEAT=3 .venv/bin/python -m bench import_leads   # three samples per server

The file has German headers, 10% duplicate rows (same email as an earlier row) and 1% bad rows
(broken email). "Leadflow" is `imports.batches.start_async` (stores the upload, as the endpoint
does for large files) followed by the worker job `imports.run` (parse, validate, deduplicate,
analyse, COPY into `leads`, checkpoint per chunk, ANALYZE). "Raw COPY" is asyncpg
`copy_to_table` of the same file into a bare table with one text column per CSV column.
"The floor" is PostgreSQL alone writing the rows our import wrote (`INSERT … SELECT` from
`leads`) into an empty table created `LIKE leads INCLUDING ALL` — every index of `leads`, no
trigger, no Python: what the indexed table costs by itself. (b) and (c) each start after a
CHECKPOINT, and (b) after a first read of `leads` (which sets the new rows' hint bits), so
neither pays for writes left behind by the step before it.
Peak memory is the process's maximum resident set size after the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from bench._cluster import bench_targets
from bench._common import fresh_database
from leadflow.auth.service import actor_for_user
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database, session_scope
from leadflow.imports.batches import file_chunks, start_async
from leadflow.imports.jobs import run_job
from leadflow.imports.options import ImportOptions
from leadflow.imports.rows import Source
from leadflow.models.import_batch import ImportBatch
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from leadflow.worker.jobs import JobContext

ROWS = int(os.environ.get("LEADFLOW_BENCH_ROWS", "1000000"))
SQLITE_ROWS = int(os.environ.get("LEADFLOW_BENCH_SQLITE_ROWS", "100000"))
# (a)–(c) again on each server, each time in a new database: this machine's speed moves
# between runs (the floor at 1M rows: 48–62 s), so one run's ratio is one sample.
REPEAT = int(os.environ.get("LEADFLOW_BENCH_REPEAT", "1"))
HEADER = "Vorname;Nachname;E-Mail;Telefon;Firma;Status;Notizen;Letzter Kontakt;Quelle\n"
FIRST = ("Lea", "Jonas", "Mia", "Felix", "Hannah", "Lukas", "Emma", "Paul", "Sophie", "Leon")
LAST = ("Kramer", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner")
NOTES = (
    "Hat Demo gesehen, wartet auf Angebot",
    "Bitte zurückrufen",
    "Kein Interesse",
    "Erstgespräch gut gelaufen",
    "",
    "",
)


def generate(path: Path, rows: int) -> None:
    """Write the benchmark CSV (10% duplicates, 1% bad emails)."""
    rng = random.Random(11)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(HEADER)
        for i in range(rows):
            n = rng.randrange(i) if i and rng.random() < 0.10 else i  # duplicate of an earlier
            first, last = FIRST[n % len(FIRST)], LAST[n % len(LAST)]
            email = f"kunde{n}@example.com" if rng.random() >= 0.01 else f"kaputt{n}@"
            phone = f"0151 {10000000 + n:08d}"
            day = 1 + n % 28
            fh.write(
                f"{first};{last};{email};{phone};Firma {n % 5000};offen;"
                f"{NOTES[n % len(NOTES)]};{day:02d}.{1 + n % 12:02d}.2024;Website\n"
            )


async def leadflow_import(db: Database, path: Path, settings: Settings) -> dict[str, float]:
    """Run the endpoint's background path on `path`; returns timings and counts."""
    async with session_scope(db) as session:
        org = await create_organization(session, name="Import Bench")
        role = await org_repo.get_role_by_name(session, org.id, "admin")
        assert role is not None
        user = User(
            organization_id=org.id,
            email=f"bench{time.time_ns()}@example.com",
            full_name="Bench",
            role_id=role.id,
            status="active",
        )
        user.role = role
        session.add(user)
        await session.flush()
        actor = actor_for_user(user)
    t0 = time.perf_counter()
    async with session_scope(db) as session:
        source = Source(fmt="csv", chunks=file_chunks(path), filename=path.name)
        batch = await start_async(session, actor, source, ImportOptions())
        batch_id = str(batch.id)
    ctx = JobContext(settings=settings, session_factory=db.sessionmaker)
    status = await run_job(ctx, batch_id)
    elapsed = time.perf_counter() - t0
    async with db.sessionmaker() as session:
        done = await session.get(ImportBatch, batch.id)
        assert done is not None and status == "completed", (status, done and done.failure)
        return {
            "seconds": elapsed,
            "rows": done.total_rows,
            "imported": done.imported_count,
            "skipped": done.skipped_count,
            "errors": done.error_count,
        }


async def raw_copy(url: str, path: Path) -> float:
    """Seconds for asyncpg COPY of the same file into a bare text table."""
    conn = await asyncpg.connect(url)
    cols = ", ".join(f"c{i} text" for i in range(HEADER.count(";") + 1))
    await conn.execute(f"DROP TABLE IF EXISTS bare_import; CREATE TABLE bare_import ({cols})")
    t0 = time.perf_counter()
    await conn.copy_to_table(
        "bare_import", source=str(path), format="csv", delimiter=";", header=True
    )
    elapsed = time.perf_counter() - t0
    await conn.close()
    return elapsed


async def settle(url: str) -> None:
    """Start a measurement from a clean server: write out every dirty buffer (CHECKPOINT,
    superuser only) so a step does not pay for the writes of the one before it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        print("    (no CHECKPOINT: the role is not a superuser; figures are not comparable)")
    finally:
        await conn.close()


async def floor(url: str, postmaster: int) -> tuple[int, float, list[str], float]:
    """(rows, seconds, the indexes of `leads`, PostgreSQL's CPU seconds) for PostgreSQL
    inserting the imported leads into an empty copy of `leads` with all its indexes (and none
    of its triggers)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS floor_leads; CREATE TABLE floor_leads (LIKE leads INCLUDING ALL)"
        )
        # The first full read of freshly written rows sets their hint bits (a write of
        # every page): done before the clock starts, so (b) times the inserting alone.
        await conn.fetchval("SELECT count(*) FROM leads WHERE ctid IS NOT NULL")
        await settle(url)
        t0, cpu = time.perf_counter(), _postgres_cpu(postmaster)
        status = await conn.execute("INSERT INTO floor_leads SELECT * FROM leads")
        elapsed, cpu = time.perf_counter() - t0, _postgres_cpu(postmaster) - cpu
        indexes = [
            r["indexname"]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'leads' ORDER BY 1"
            )
        ]
        await conn.execute("DROP TABLE floor_leads")
    finally:
        await conn.close()
    return int(status.split()[-1]), elapsed, indexes, cpu


class _ChildPeak(logging.Handler):
    """Catches the peak RSS the import's preparing process reports as it ends, and the
    seconds per stage of the import's loop."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.peak_mb = float("nan")
        self.stages: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        peak = getattr(record, "prepare_peak_rss_mb", None)
        if peak is not None:
            self.peak_mb = float(peak)
        stages = getattr(record, "import_stage_seconds", None)
        if stages is not None:
            self.stages = dict(stages)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None  # ended meanwhile
    return text.rpartition(") ")[2].split()


def _postgres_cpu(postmaster: int) -> float:
    """CPU seconds (user + system) of one PostgreSQL cluster so far: its postmaster, the
    processes it runs, and those that ended (the postmaster's children's totals)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        # fields[1] ppid; [11] utime, [12] stime, [13] cutime, [14] cstime (in ticks)
        if int(entry.name) == postmaster:
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


async def _postmaster(url: str) -> int:
    """The process id of the postmaster serving `url` (the parent of our backend)."""
    conn = await asyncpg.connect(url)
    try:
        # Read while the backend runs (it exits with the connection).
        fields = _stat(int(await conn.fetchval("SELECT pg_backend_pid()")))
    finally:
        await conn.close()
    assert fields is not None, "the benchmark's PostgreSQL runs on another machine"
    return int(fields[1])


def _python_cpu() -> tuple[float, float]:
    """CPU seconds of this process, and of its ended children (the preparing process)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime


def _line(label: str, rows: int, seconds: float) -> str:
    return f"{label:<34} {rows:>9,} rows in {seconds:7.1f} s = {rows / seconds:>9,.0f} rows/s"


async def postgresql(label: str, admin_url: str, big: Path, tmp: Path) -> float:
    """(a), (b) and (c) on one PostgreSQL server; returns (c)/(b)."""
    url = await fresh_database("leadflow_bench_import", admin_url=admin_url)
    conn = await asyncpg.connect(url)
    try:
        config = {
            name: await conn.fetchval(f"SHOW {name}")
            for name in ("shared_buffers", "max_wal_size", "synchronous_commit", "autovacuum")
        }
    finally:
        await conn.close()
    print(f"-- PostgreSQL: {label}; " + ", ".join(f"{k}={v}" for k, v in config.items()))
    settings = Settings(
        secret_key="bench-" + "x" * 40,
        data_dir=tmp,
        database_url=url.replace("postgresql://", "postgresql+asyncpg://"),
    )
    db = Database(settings.database_url)
    await settle(url)
    child = _ChildPeak()
    logging.getLogger("leadflow.imports").addHandler(child)
    logging.getLogger("leadflow.imports").setLevel(logging.INFO)
    postmaster = await _postmaster(url)
    pg_before, (own_before, kids_before) = _postgres_cpu(postmaster), _python_cpu()
    try:
        ours = await leadflow_import(db, big, settings)
    finally:
        logging.getLogger("leadflow.imports").removeHandler(child)
    pg_ours, (own, kids) = _postgres_cpu(postmaster) - pg_before, _python_cpu()
    own, kids = own - own_before, kids - kids_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    await db.dispose()
    copy_s = await raw_copy(url, big)
    floor_rows, floor_s, indexes, pg_floor = await floor(url, postmaster)
    print(_line("(a) raw asyncpg COPY, bare table", ROWS, copy_s))
    print(_line("(b) floor: PostgreSQL, all indexes", floor_rows, floor_s))
    print(_line("(c) Leadflow import (PostgreSQL)", int(ours["imported"]), ours["seconds"]))
    print(f"    indexes of leads ({len(indexes)}): {', '.join(indexes)}")
    ours_rate = ours["imported"] / ours["seconds"]
    ratio = ours_rate / (floor_rows / floor_s)
    print(
        f"(c)/(b) imported rows/s: {ratio:.3f}   "
        f"ratio Leadflow / raw COPY rate: {copy_s / ours['seconds']:.3f}   "
        f"imported {int(ours['imported']):,}, skipped {int(ours['skipped']):,}, "
        f"errors {int(ours['errors']):,}; peak RSS {peak_mb:.0f} MB, "
        f"the preparing process {child.peak_mb:.0f} MB"
    )
    # Where the import's loop waited: a large `writing` share means the database write of
    # each chunk (not the reading or the matching, which overlap it) sets the pace.
    print(
        "    import loop, seconds per stage: "
        + ", ".join(f"{k} {v}" for k, v in child.stages.items())
    )
    # CPU is what two cores share: the import's Python (this process and the preparing
    # one) competes with its PostgreSQL backends; the floor is PostgreSQL alone.
    print(
        f"    CPU seconds: (b) PostgreSQL {pg_floor:.1f}; (c) PostgreSQL {pg_ours:.1f}, "
        f"writer process {own:.1f}, preparing process {kids:.1f} "
        f"(total {pg_ours + own + kids:.1f} in {ours['seconds']:.1f} s)"
    )
    return ratio


async def run() -> None:
    """PostgreSQL at ROWS (the shared server, and a throwaway cluster with
    LEADFLOW_BENCH_PGDATA), SQLite at SQLITE_ROWS."""
    tmp = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    big = tmp / "leads.csv"
    generate(big, ROWS)
    print(f"generated {ROWS:,} rows, {big.stat().st_size / 1e6:.0f} MB")
    async with contextlib.aclosing(bench_targets()) as targets:
        async for label, admin_url in targets:
            ratios = [await postgresql(label, admin_url, big, tmp) for _ in range(REPEAT)]
            if REPEAT > 1:
                print(
                    f"(c)/(b) over {REPEAT} runs: median {statistics.median(ratios):.3f}, "
                    f"{min(ratios):.3f}–{max(ratios):.3f}"
                )
    settings = Settings(secret_key="bench-" + "x" * 40, data_dir=tmp)
    small = tmp / "leads-small.csv"
    generate(small, SQLITE_ROWS)
    sqlite_url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(migrate.upgrade, sqlite_url)
    sdb = Database(sqlite_url)
    s_ours = await leadflow_import(
        sdb, small, settings.model_copy(update={"database_url": sqlite_url})
    )
    await sdb.dispose()
    print(_line("Leadflow import (SQLite)", int(s_ours["rows"]), s_ours["seconds"]))


def main() -> None:
    """Entry point for `python -m bench import_leads`."""
    asyncio.run(run())
