"""The `leadflow` command: serve, worker, db upgrade/backup, users create-admin, demo."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from uvicorn.supervisors import Multiprocess

import leadflow.wiring  # noqa: F401  (jobs, delivery handlers, event subscribers)
from leadflow.config import get_settings
from leadflow.db import migrate
from leadflow.db.engine import Database, session_scope
from leadflow.kit.jsonlog import configure_logging
from leadflow.kit.listener import with_tcp_protocol

app = typer.Typer(help="Leadflow lead-management and sales CRM backend.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
integrations_app = typer.Typer(help="Integrations and stored credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(integrations_app, name="integrations")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (LEADFLOW_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (LEADFLOW_PORT)")] = None,
    workers: Annotated[int, typer.Option(help="API processes")] = 1,
) -> None:
    """Serve the API."""
    settings = get_settings()
    configure_logging(settings.log_level)
    settings.resolved_secret_key()
    options: dict[str, Any] = {
        "factory": True,
        "host": host or settings.host,
        "port": port or settings.port,
        "workers": workers,
        "log_config": None,
        # Forwarded headers are believed only from LEADFLOW_TRUSTED_PROXIES (uvicorn would
        # otherwise trust 127.0.0.1 by default); the app applies the same rule to the client
        # ip, and uvicorn adds the scheme (X-Forwarded-Proto) from those proxies.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }
    if workers <= 1:
        uvicorn.run("leadflow.app:app_factory", **options)
        return
    # What `uvicorn.run` does for several workers, with a listener whose connections get
    # TCP_NODELAY (kit/listener.py: without it each request waited ~40 ms for an ACK).
    config = uvicorn.Config("leadflow.app:app_factory", **options)
    sock = with_tcp_protocol(config.bind_socket())
    Multiprocess(config, sockets=[sock]).run()


@app.command()
def worker() -> None:
    """Run a standalone job worker (Huey consumer + periodic jobs)."""
    from leadflow.worker.runtime import Worker

    settings = get_settings()
    configure_logging(settings.log_level)
    Worker(settings, embedded=False).run_forever()


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = get_settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}: {_safe_url(settings.database_url)}")


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="File to write the copy to")],
    overwrite: Annotated[bool, typer.Option(help="Replace PATH if it exists")] = False,
) -> None:
    """Copy the SQLite database to PATH, safely while Leadflow runs (PostgreSQL: pg_dump)."""
    from leadflow.db.backup import BackupError, backup_sqlite

    settings = get_settings()
    try:
        done = backup_sqlite(settings.database_url, path, overwrite=overwrite)
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"backup written: {done.path} ({done.size:,} bytes, integrity {done.integrity})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Admin email")],
    password: Annotated[
        str, typer.Option(help="At least 10 characters", prompt=True, hide_input=True)
    ],
    org: Annotated[str, typer.Option(help="Organisation name (created if new)")],
    full_name: Annotated[str, typer.Option(help="Display name")] = "Administrator",
) -> None:
    """Create an organisation (if new) and an admin user in it."""
    from leadflow.seed import create_admin as _create

    try:
        asyncio.run(
            _with_db(
                lambda db: _create(db, email=email, password=password, org=org, full_name=full_name)
            )
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"admin {email} ready in organisation '{org}'")


@integrations_app.command("rotate-key")
def rotate_key(
    old_key: Annotated[
        list[str] | None,
        typer.Option(
            "--old-key",
            help="A secret key the credentials may be encrypted under (repeatable); "
            "LEADFLOW_PREVIOUS_SECRET_KEYS is used too",
        ),
    ] = None,
) -> None:
    """Re-encrypt stored credentials (integrations, webhook secrets) under LEADFLOW_SECRET_KEY."""
    from leadflow.integrations.keys import rotate_all
    from leadflow.kit.crypto import SecretUnreadable

    settings = get_settings()
    settings.resolved_secret_key()

    async def run(db: Database) -> dict[str, int]:
        async with session_scope(db) as session:
            return await rotate_all(session, settings, old_key or [])

    try:
        counts = asyncio.run(_with_db(run))
    except SecretUnreadable as exc:
        typer.echo(f"error: {exc}; nothing was changed", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"re-encrypted {counts['integrations']} integration credentials and "
        f"{counts['webhook_secrets']} webhook secrets under the current key"
    )


@app.command()
def demo() -> None:
    """Create (or show) the demo organisation and print its sign-in credentials."""
    from leadflow.seed import create_demo

    creds = asyncio.run(_with_db(create_demo))
    typer.echo("Demo organisation 'Demo Vertrieb GmbH' — sign in with:")
    for role, email, password in creds:
        typer.echo(f"  {role:<10} {email:<32} {password}")


async def _with_db(fn):  # type: ignore[no-untyped-def]
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        return await fn(db)
    finally:
        await db.dispose()


__all__ = ["app", "session_scope"]

if __name__ == "__main__":
    app()
