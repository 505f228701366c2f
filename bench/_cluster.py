"""A throwaway PostgreSQL cluster with a production-like configuration, for benchmarks.

The shared PostgreSQL on the bench machines runs the stock configuration (128 MB
shared_buffers, 1 GB max_wal_size), which is not what a production server runs. With
`LEADFLOW_BENCH_PGDATA` set, `bench_targets` also yields a cluster that `throwaway_cluster`
creates there with `initdb`, starts on a free port, and stops and deletes afterwards.

Layout of `pgdata` (everything in it belongs to the cluster and is deleted on exit):
`MARKER` says the directory is ours, `data/` is the data directory, `run/` holds the unix
socket, `server.log` is the server's log.

    LEADFLOW_BENCH_PGDATA=/tmp/leadflow-pg .venv/bin/python -m bench._cluster   # a check run
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench._common import PG_ADMIN_URL, fresh_database

MARKER = ".leadflow-bench-cluster"
PGDATA_ENV = "LEADFLOW_BENCH_PGDATA"
SHARED_BUFFERS_ENV = "LEADFLOW_BENCH_PG_SHARED_BUFFERS"
OS_USER = "postgres"
SHARED_BUFFERS_CAP_MB = 4096

# Production-like settings that do not depend on the machine's memory. synchronous_commit is
# left at its default (on): the import decides its own.
FIXED_SETTINGS = {
    "max_wal_size": "8GB",
    "checkpoint_timeout": "15min",
    "wal_buffers": "64MB",
    "maintenance_work_mem": "1GB",
    "work_mem": "32MB",
    "random_page_cost": "1.1",
}
# Read back with SHOW once the server runs; autovacuum and fsync are reported (not set) so a
# figure says what it was measured with.
REPORTED = (
    "shared_buffers",
    "effective_cache_size",
    *FIXED_SETTINGS,
    "synchronous_commit",
    "autovacuum",
    "fsync",
)


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster."""

    pgdata: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def admin_url(self) -> str:
        """asyncpg URL of the `postgres` database as the `postgres` superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def label(self) -> str:
        """Short name for a benchmark's output: the two settings the stock config is short of."""
        sb, wal = self.settings["shared_buffers"], self.settings["max_wal_size"]
        return f"throwaway: shared_buffers={sb}, max_wal_size={wal}"

    def describe(self) -> str:
        """One line with the figures that matter for a benchmark, for printing next to them."""
        return "throwaway: " + ", ".join(f"{k}={self.settings[k]}" for k in REPORTED)


def memory_bytes() -> int:
    """Physical memory, or the cgroup's limit when it is lower (in a container)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            total = min(total, int(limit))
    return total


def memory_settings(ram_bytes: int, shared_buffers: str | None = None) -> dict[str, str]:
    """shared_buffers (25% of RAM up to 4 GB, unless given) and effective_cache_size (75%)."""
    ram_mb = ram_bytes // (1024 * 1024)
    return {
        "shared_buffers": shared_buffers or f"{min(ram_mb // 4, SHARED_BUFFERS_CAP_MB)}MB",
        "effective_cache_size": f"{ram_mb * 3 // 4}MB",
    }


def bindir() -> Path:
    """The directory of `initdb` and `pg_ctl` (`pg_config --bindir`, else the newest install)."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True, text=True)
        candidates.append(Path(out.stdout.strip()))
    # Debian's /usr/bin/pg_config may belong to a client-only package; the server is here.
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    raise ClusterError("no PostgreSQL server binaries (initdb, pg_ctl) found")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: Sequence[str]) -> list[str]:
    """`argv` run as the `postgres` OS user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", OS_USER, "--", *argv]


def _run(argv: Sequence[str], what: str, log: Path | None = None) -> None:
    """Run a PostgreSQL tool; a failure raises with its output (and the server log's tail)."""
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True)
    if done.returncode != 0:
        tail = ""
        if log is not None and log.exists():
            tail = "\n".join(["server log:", *log.read_text(errors="replace").splitlines()[-20:]])
        raise ClusterError(
            f"{what} failed ({done.returncode}): {done.stderr or done.stdout}\n{tail}"
        )


def _claim(pgdata: Path) -> bool:
    """Make `pgdata` an empty directory of ours; True when it is ours to remove at the end.

    A non-empty directory is someone's data unless it carries our marker (left behind by a run
    that was killed); then a server still running from it is stopped and its contents go. An
    empty directory that was there before stays (it may be a mount point); only emptied.
    """
    created = not pgdata.exists() or (pgdata / MARKER).exists()
    if pgdata.exists():
        if not pgdata.is_dir():
            raise ClusterError(f"{pgdata} exists and is not a directory")
        if any(pgdata.iterdir()):
            if not (pgdata / MARKER).exists():
                raise ClusterError(
                    f"{pgdata} is not empty and not a Leadflow bench cluster; refusing to use it"
                )
            _remove(pgdata, keep_dir=True)
    pgdata.mkdir(parents=True, exist_ok=True)
    (pgdata / MARKER).write_text("throwaway PostgreSQL cluster of the Leadflow benchmarks\n")
    (pgdata / "run").mkdir()
    if os.geteuid() == 0:
        owner = pwd.getpwnam(OS_USER)
        for path in (pgdata, pgdata / "run"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        probe = subprocess.run(_as_owner(["test", "-w", str(pgdata), "-a", "-x", str(pgdata)]))
        if probe.returncode != 0:
            _remove(pgdata, keep_dir=not created)
            raise ClusterError(
                f"the {OS_USER} OS user cannot reach {pgdata} (a parent directory is closed to "
                "it, such as one of mode 0700); choose one it can, like /var/tmp/leadflow-pg"
            )
    return created


def _stop(pgdata: Path, bin_dir: Path, mode: str) -> None:
    """Stop the server running from `pgdata/data`, if one is."""
    data = pgdata / "data"
    if (data / "postmaster.pid").exists():
        _run([str(bin_dir / "pg_ctl"), "stop", "-D", str(data), "-m", mode, "-w"], "pg_ctl stop")


def _remove(pgdata: Path, *, keep_dir: bool) -> None:
    """Delete the cluster's files (after stopping a server left running from them)."""
    with contextlib.suppress(ClusterError):
        _stop(pgdata, bindir(), "immediate")
    if not keep_dir:
        shutil.rmtree(pgdata)
        return
    for child in pgdata.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _configure(data: Path, port: int, run_dir: Path, memory: dict[str, str]) -> None:
    """Append our settings to the cluster's postgresql.conf (later lines win)."""
    lines = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(port),
        "unix_socket_directories": f"'{run_dir}'",
        **{k: f"'{v}'" for k, v in {**memory, **FIXED_SETTINGS}.items()},
    }
    with (data / "postgresql.conf").open("a") as fh:
        fh.write("\n# Leadflow bench: production-like settings\n")
        fh.writelines(f"{k} = {v}\n" for k, v in lines.items())


async def read_settings(admin_url: str) -> dict[str, str]:
    """The REPORTED settings as the server has them (SHOW, units included)."""
    conn = await asyncpg.connect(admin_url)
    try:
        return {name: str(await conn.fetchval(f"SHOW {name}")) for name in REPORTED}
    finally:
        await conn.close()


def _start(pgdata: Path, bin_dir: Path, memory: dict[str, str]) -> tuple[Path, bool, int]:
    """initdb, configure and start a cluster in `pgdata`; (its absolute path, whether we
    created it, port). On failure nothing is left: a started server is stopped, files go.
    """
    pgdata = pgdata.absolute()  # the server runs elsewhere; relative paths would break
    # Unix socket paths are limited to 107 bytes ("run/.s.PGSQL.NNNNN" included).
    if len(str(pgdata / "run" / ".s.PGSQL.65535")) > 107:
        raise ClusterError(f"{pgdata} is too long a path for the server's unix socket")
    created = _claim(pgdata)
    data, log = pgdata / "data", pgdata / "server.log"
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        # Encoding and locale as the shared cluster's: collation changes index and sort costs.
        _run([*initdb, "--encoding=UTF8", "--locale=C.UTF-8"], "initdb")
        port = free_port()
        _configure(data, port, pgdata / "run", memory)
        pg_ctl = [str(bin_dir / "pg_ctl"), "start", "-D", str(data), "-l", str(log)]
        _run([*pg_ctl, "-w", "-t", "60"], "pg_ctl start", log)
    except BaseException:
        _teardown(pgdata, bin_dir, created)
        raise
    return pgdata, created, port


def _teardown(pgdata: Path, bin_dir: Path, created: bool) -> None:
    """Stop the server (fast: sessions are ended, not waited for) and delete the files."""
    try:
        _stop(pgdata, bin_dir, "fast")
    finally:
        _remove(pgdata, keep_dir=not created)


@contextlib.asynccontextmanager
async def throwaway_cluster(
    pgdata: Path, *, shared_buffers: str | None = None
) -> AsyncIterator[Cluster]:
    """A new cluster in `pgdata`, running until the block ends; then stopped and deleted.

    `shared_buffers` defaults to `LEADFLOW_BENCH_PG_SHARED_BUFFERS`, else 25% of RAM up to
    4 GB. `pgdata` must be missing, empty, or a directory this function made earlier.
    Start and stop block the event loop (a few seconds) on purpose: in a thread, a
    cancelled start would go on and leave a server running that nothing stops.
    """
    bin_dir = bindir()
    memory = memory_settings(memory_bytes(), shared_buffers or os.environ.get(SHARED_BUFFERS_ENV))
    pgdata, created, port = _start(pgdata, bin_dir, memory)
    try:
        cluster = Cluster(pgdata=pgdata, port=port)
        yield dataclasses.replace(cluster, settings=await read_settings(cluster.admin_url))
    finally:
        _teardown(pgdata, bin_dir, created)


async def bench_targets() -> AsyncGenerator[tuple[str, str], None]:
    """(label, admin URL) of each PostgreSQL to benchmark against.

    Always the shared one; with `LEADFLOW_BENCH_PGDATA` set, also a throwaway cluster there,
    labelled with its settings. The cluster is stopped when the loop moves past it; wrap the
    generator in `contextlib.aclosing` so that a `break` or an error stops it too.
    """
    yield "shared", PG_ADMIN_URL
    pgdata = os.environ.get(PGDATA_ENV)
    if pgdata:
        async with throwaway_cluster(Path(pgdata)) as cluster:
            yield cluster.label, cluster.admin_url


async def check(pgdata: Path) -> None:
    """Start a cluster in `pgdata`, migrate a database on it, print its settings, stop it."""
    async with throwaway_cluster(pgdata) as cluster:
        print(f"started {cluster.admin_url} in {cluster.pgdata}")
        print(cluster.describe())
        url = await fresh_database("leadflow_bench_check", admin_url=cluster.admin_url)
        conn = await asyncpg.connect(url)
        try:
            version = await conn.fetchval("SHOW server_version")
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            )
            head = await conn.fetchval("SELECT version_num FROM alembic_version")
            trgm = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_trgm'"
            )
        finally:
            await conn.close()
        print(f"migrated {url}: PostgreSQL {version}, {tables} tables, head {head}, pg_trgm {trgm}")
    gone = not await asyncio.to_thread(pgdata.exists)
    print(f"stopped; {pgdata} {'removed' if gone else 'still exists'}")


def main() -> None:
    """`python -m bench._cluster`: the check run, in LEADFLOW_BENCH_PGDATA."""
    pgdata = os.environ.get(PGDATA_ENV)
    if not pgdata:
        raise SystemExit(f"set {PGDATA_ENV} to a directory for the throwaway cluster")
    asyncio.run(check(Path(pgdata)))


if __name__ == "__main__":
    main()
