"""The benchmarks' throwaway PostgreSQL cluster: settings in effect, cleanup, others' data kept."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from bench import _cluster
from bench._cluster import ClusterError, bench_targets, throwaway_cluster

# Small enough for a machine that other processes share; the default is checked separately.
BUFFERS = "64MB"


@pytest.fixture
def tmp_dir() -> Iterator[Path]:
    """A scratch directory the postgres OS user can enter (pytest's tmp_dir is mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="leadflow-test-cluster-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def names(path: Path) -> list[str]:
    """The names in directory `path`, sorted."""
    return sorted(p.name for p in path.iterdir())


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def test_shared_buffers_default_is_a_quarter_of_ram_capped_at_4gb() -> None:
    gib = 1024**3
    assert _cluster.memory_settings(8 * gib)["shared_buffers"] == "2048MB"
    assert _cluster.memory_settings(64 * gib)["shared_buffers"] == "4096MB"
    assert _cluster.memory_settings(64 * gib, "1GB")["shared_buffers"] == "1GB"
    assert _cluster.memory_settings(8 * gib)["effective_cache_size"] == "6144MB"


async def test_cluster_runs_with_the_settings_and_is_gone_afterwards(tmp_dir: Path) -> None:
    pgdata = tmp_dir / "pg"
    with pytest.raises(RuntimeError, match="inside the block"):
        async with throwaway_cluster(pgdata, shared_buffers=BUFFERS) as cluster:
            conn = await asyncpg.connect(cluster.admin_url)
            try:
                # Read from the server, not from what we wrote: the config file took effect.
                assert await conn.fetchval("SHOW shared_buffers") == BUFFERS
                assert await conn.fetchval("SHOW max_wal_size") == "8GB"
                assert await conn.fetchval("SHOW random_page_cost") == "1.1"
                assert await conn.fetchval("SHOW synchronous_commit") == "on"
                await conn.execute("CREATE EXTENSION pg_trgm")  # our migrations need it
            finally:
                await conn.close()
            assert cluster.settings["shared_buffers"] == BUFFERS
            assert cluster.settings["work_mem"] == "32MB"
            assert cluster.label == f"throwaway: shared_buffers={BUFFERS}, max_wal_size=8GB"
            assert "checkpoint_timeout=15min" in cluster.describe()
            port = cluster.port
            assert listening(port)
            raise RuntimeError("inside the block")  # cleanup must also happen on error
    assert not pgdata.exists()
    assert not listening(port)


async def test_a_directory_with_other_data_is_refused_and_kept(tmp_dir: Path) -> None:
    precious = tmp_dir / "precious.txt"
    precious.write_text("someone's data")
    with pytest.raises(ClusterError, match="refusing"):
        async with throwaway_cluster(tmp_dir, shared_buffers=BUFFERS):
            pass
    assert names(tmp_dir) == ["precious.txt"]


async def test_leftovers_of_a_killed_run_are_replaced(tmp_dir: Path) -> None:
    pgdata = tmp_dir / "pg"
    # What a run killed inside the block leaves: the marked directory, its server running.
    memory = _cluster.memory_settings(_cluster.memory_bytes(), BUFFERS)
    _, _, old_port = _cluster._start(pgdata, _cluster.bindir(), memory)
    assert listening(old_port)
    async with throwaway_cluster(pgdata, shared_buffers=BUFFERS) as cluster:
        assert not listening(old_port)
        assert cluster.settings["shared_buffers"] == BUFFERS
    assert not pgdata.exists()  # it was ours (marked), so it goes


async def test_an_empty_directory_given_stays_emptied(tmp_dir: Path) -> None:
    async with throwaway_cluster(tmp_dir, shared_buffers=BUFFERS) as cluster:
        assert cluster.settings["shared_buffers"] == BUFFERS
    assert names(tmp_dir) == []  # still there (names would raise otherwise), emptied


async def test_bench_targets_without_pgdata_is_only_the_shared_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(_cluster.PGDATA_ENV, raising=False)
    assert [label async for label, _ in bench_targets()] == ["shared"]


async def test_bench_targets_adds_the_throwaway_cluster(
    tmp_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pgdata = tmp_dir / "pg"
    monkeypatch.setenv(_cluster.PGDATA_ENV, str(pgdata))
    monkeypatch.setenv(_cluster.SHARED_BUFFERS_ENV, BUFFERS)
    seen = []
    async with contextlib.aclosing(bench_targets()) as targets:
        async for label, url in targets:
            seen.append(label)
            if label != "shared":
                conn = await asyncpg.connect(url)
                try:
                    assert await conn.fetchval("SHOW shared_buffers") == BUFFERS
                finally:
                    await conn.close()
    assert seen == ["shared", f"throwaway: shared_buffers={BUFFERS}, max_wal_size=8GB"]
    assert not pgdata.exists()
