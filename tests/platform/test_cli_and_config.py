"""The `leadflow` command and start-up configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadflow.app import create_app
from leadflow.config import Settings


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_upgrade_demo_and_create_admin(tmp_path: Path) -> None:
    up = _cli("db", "upgrade", data_dir=tmp_path)
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "leadflow.db").exists()
    demo = _cli("demo", data_dir=tmp_path)
    assert demo.returncode == 0, demo.stderr
    for email in (
        "admin@demo.example.com",
        "manager@demo.example.com",
        "lena@demo.example.com",
        "tom@demo.example.com",
    ):
        assert email in demo.stdout
    again = _cli("demo", data_dir=tmp_path)  # idempotent
    assert again.returncode == 0 and again.stdout == demo.stdout
    admin = _cli(
        "users",
        "create-admin",
        "--email",
        "boss@example.com",
        "--password",
        "boss-password-1",
        "--org",
        "Boss AG",
        data_dir=tmp_path,
    )
    assert admin.returncode == 0, admin.stderr
    dup = _cli(
        "users",
        "create-admin",
        "--email",
        "boss@example.com",
        "--password",
        "boss-password-1",
        "--org",
        "Boss AG",
        data_dir=tmp_path,
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr
    short = _cli(
        "users",
        "create-admin",
        "--email",
        "b2@example.com",
        "--password",
        "short",
        "--org",
        "Boss AG",
        data_dir=tmp_path,
    )
    assert short.returncode == 1


def test_secret_key_generated_once_in_development(tmp_path: Path) -> None:
    s = Settings(env="development", secret_key="", data_dir=tmp_path)
    first = s.resolved_secret_key()
    assert len(first) >= 32
    assert (tmp_path / "secret_key").read_text() == first
    assert (
        Settings(env="development", secret_key="", data_dir=tmp_path).resolved_secret_key() == first
    )


def test_production_refuses_to_start_without_secret(tmp_path: Path) -> None:
    s = Settings(
        env="production",
        secret_key="",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
    )
    with pytest.raises(RuntimeError, match="LEADFLOW_SECRET_KEY"):
        create_app(s)
    assert not (tmp_path / "secret_key").exists()


def test_default_database_is_sqlite_in_data_dir(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, database_url="")
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}"
    assert s.is_sqlite
