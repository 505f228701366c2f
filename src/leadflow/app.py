"""create_app(): routers, middleware, exception handlers, lifespan."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from limits import RateLimitItemPerHour
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import State

import leadflow.models
import leadflow.wiring  # noqa: F401  (jobs, delivery handlers, event subscribers)
from leadflow import __version__
from leadflow.accounts.endpoints import admin_users_router, permissions_router
from leadflow.accounts.endpoints import auth_router as accounts_auth_router
from leadflow.activities.endpoints import router as activities_router
from leadflow.ai.endpoints import router as ai_router
from leadflow.analytics.endpoints import dashboard_router
from leadflow.analytics.endpoints import router as analytics_router
from leadflow.assignment.endpoints import router as assignment_router
from leadflow.audit.endpoints import router as audit_router
from leadflow.auth.api_key_endpoints import router as api_keys_router
from leadflow.auth.endpoints import router as auth_router
from leadflow.calls.endpoints import alias_router as calls_alias_router
from leadflow.calls.endpoints import router as calls_router
from leadflow.config import Settings, get_settings
from leadflow.customfields.endpoints import router as custom_fields_router
from leadflow.db.engine import Database
from leadflow.db.session import TransactionIntentMiddleware
from leadflow.exceptions import Unauthorized
from leadflow.health.endpoints import admin_router as admin_health_router
from leadflow.health.endpoints import router as health_router
from leadflow.health.requests import RequestFlusher
from leadflow.imports.endpoints import batches_router, import_router
from leadflow.integrations.endpoints import router as integrations_router
from leadflow.kit.context import parse_networks
from leadflow.kit.fanout import build_wakeups, install_publisher, uninstall_publisher
from leadflow.kit.jsonlog import configure_logging
from leadflow.kit.logredact import install_redaction
from leadflow.kit.middleware import AliasMiddleware, BodyLimitMiddleware, RequestContextMiddleware
from leadflow.kit.nultext import refuse_nul_text
from leadflow.kit.problems import install_handlers, problem
from leadflow.kit.ratelimit import FailureLimiter, HitLimiter, build_storage
from leadflow.kit.requeststats import RequestStats
from leadflow.leads.endpoints import router as leads_router
from leadflow.leads.endpoints import tags_router
from leadflow.notifications.endpoints import router as notifications_router
from leadflow.organizations.endpoints import roles_router, settings_router, teams_router
from leadflow.pipeline.endpoints import router as pipeline_router
from leadflow.reports.endpoints import router as reports_router
from leadflow.sla.endpoints import router as sla_router
from leadflow.tasks.endpoints import router as tasks_router
from leadflow.timeline.endpoints import router as timeline_router
from leadflow.users.endpoints import router as users_router
from leadflow.web import install as _web_install
from leadflow.webhooks.endpoints import router as webhooks_router
from leadflow.worker.endpoints import emails_router, jobs_router
from leadflow.worker.jobs import set_queue
from leadflow.worker.runtime import HueyQueue, Worker, build_huey

API = "/api/v1"

# A request is matched against the routers in this order, route by route (~1 µs each): the
# lead routes, most of the traffic, come first. Routers sharing a prefix keep their order.
ROUTES: list[tuple[APIRouter, str]] = [
    (import_router, f"{API}/leads"),
    (leads_router, f"{API}/leads"),
    (activities_router, f"{API}/leads"),
    (timeline_router, f"{API}/leads"),
    (auth_router, f"{API}/auth"),
    (accounts_auth_router, f"{API}/auth"),  # accept-invite, impersonation
    (users_router, f"{API}/users"),
    (admin_users_router, f"{API}/admin/users"),
    (roles_router, f"{API}/admin/roles"),
    (permissions_router, f"{API}/admin/permissions"),
    (teams_router, f"{API}/teams"),
    (api_keys_router, f"{API}/admin/api-keys"),
    (audit_router, f"{API}/admin/audit-logs"),
    # Webhooks before integrations: `/integrations/webhooks/…` is not an integration type.
    (webhooks_router, f"{API}/admin/integrations/webhooks"),
    (integrations_router, f"{API}/admin/integrations"),
    (tags_router, f"{API}/tags"),
    (pipeline_router, f"{API}/pipeline"),
    (custom_fields_router, f"{API}/custom-fields"),
    (tasks_router, f"{API}/tasks"),
    (settings_router, f"{API}/admin/settings"),
    (ai_router, f"{API}/ai"),
    (calls_router, f"{API}/call-requests"),
    (calls_alias_router, "/api"),  # seed 001: POST /api/process-request, its own error shape
    (assignment_router, f"{API}/assignment/rules"),
    (sla_router, f"{API}/sla"),
    (notifications_router, f"{API}/notifications"),
    (jobs_router, f"{API}/admin/jobs"),
    (emails_router, f"{API}/admin/emails"),
    (admin_health_router, f"{API}/admin/health"),
    (batches_router, f"{API}/imports"),
    (reports_router, f"{API}/reports"),
    (analytics_router, f"{API}/analytics"),
    (dashboard_router, f"{API}/dashboard"),
]

# The seeds' own paths, served by the canonical endpoints and hidden from the schema.
ALIASES: dict[str, str] = {
    "/api/auth": f"{API}/auth",
    "/api/users": f"{API}/users",
    f"{API}/admin/integrations/api-keys": f"{API}/admin/api-keys",
    f"{API}/admin/webhooks": f"{API}/admin/integrations/webhooks",
    "/api/audit-logs": f"{API}/admin/audit-logs",
    "/api/leads": f"{API}/leads",
    "/leads": f"{API}/leads",
    "/import/leads": f"{API}/leads/import",
    "/ai": f"{API}/ai",
    "/api/dashboard": f"{API}/dashboard",
}

# Canonical paths (aliases are rewritten first) whose body limit is `import_max_bytes`: the
# API's import and the web import wizard's steps, which upload the same files.
IMPORT_PATHS = (
    f"{API}/leads/import",
    f"{API}/leads/import/preview",
    "/crm/import/preview",
    "/crm/import/dry-run",
    "/crm/import/run",
)


def init_state(app: FastAPI, settings: Settings, database: Database | None = None) -> None:
    """Give `app` fresh per-process state: settings, database, limiters, request figures.

    Kept apart from the routes so an embedding host (the test suite) can reset a built
    application instead of building one again; `database` None opens one from `settings`.
    """
    app.state = State()
    app.state.settings = settings
    app.state.database = database or Database(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        pre_ping=settings.db_pre_ping,
    )
    # Event streams wait for wake-ups from Redis pub/sub, or re-read every second without it.
    app.state.wakeups = build_wakeups(settings.redis_url, fallback=settings.stream_recheck_seconds)
    # This process's request figures by minute and route group (flushed once a minute).
    app.state.request_stats = RequestStats()
    app.state.login_limiter = FailureLimiter(
        build_storage(settings.redis_url), settings.login_attempts_per_minute, "login-failures"
    )
    app.state.register_limiter = HitLimiter(
        build_storage(settings.redis_url),
        RateLimitItemPerHour(settings.register_per_hour, namespace="register-ip"),
    )


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    """Build the Leadflow ASGI application."""
    settings = settings or get_settings()
    settings.resolved_secret_key()  # fail fast in production without a key
    # Also when the app is served or embedded without `configure_logging`: no download token
    # or webhook URL reaches a log line, whichever handlers the host process installed.
    install_redaction()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Runs under a server only (not in in-process test clients).
        worker: Worker | None = None
        if settings.embedded_worker:
            worker = Worker(settings, embedded=True)
            worker.start()
        else:
            set_queue(HueyQueue(build_huey(settings), settings))
        # Notifications this process commits wake the streams of every API process (Redis).
        install_publisher(settings.redis_url)
        flusher = RequestFlusher(app.state.request_stats, app.state.database.sessionmaker)
        flusher.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            await flusher.stop()
            await app.state.wakeups.aclose()
            uninstall_publisher()
            ai_runtime = getattr(app.state, "ai_runtime", None)
            if ai_runtime is not None:
                await ai_runtime.aclose()
            if database is None:
                await app.state.database.dispose()

    app = FastAPI(
        title="Leadflow",
        version=__version__,
        description="Lead management and sales CRM API. Errors are application/problem+json.",
        lifespan=lifespan,
    )
    init_state(app, settings, database)

    install_handlers(app)
    app.add_middleware(TransactionIntentMiddleware)

    def body_limits() -> tuple[int, Mapping[str, int]]:
        # Read per request from app.state: a changed setting applies without a rebuild.
        s: Settings = app.state.settings
        return s.max_body_bytes, dict.fromkeys(IMPORT_PATHS, s.import_max_bytes)

    # Starlette wraps the last added middleware outermost. Outer to inner: request context
    # (request id and client ip on every answer, the 413 included), aliases (so a seed path
    # gets its canonical path's limit), CORS (a browser can read the 413), body limit.
    app.add_middleware(BodyLimitMiddleware, limits=body_limits)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(AliasMiddleware, aliases=ALIASES)
    # Full route templates for the metrics labels, filled in as the routers are included.
    route_paths: dict[int, str] = {}
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        route_paths=route_paths,
        stats=lambda: app.state.request_stats,
    )

    # The import upload keeps its documented handling of NULs (dropped from cells) and is
    # not read whole before authentication; the seed's alias answers in its own shape.
    unchecked = {id(import_router), id(calls_alias_router)}
    for router, prefix in [(health_router, ""), *ROUTES]:
        checks = [] if id(router) in unchecked else [Depends(refuse_nul_text)]
        app.include_router(router, prefix=prefix, dependencies=checks)
        for route in router.routes:
            route_paths[id(route)] = prefix + getattr(route, "path", "")

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        token = app.state.settings.metrics_token
        if token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                return problem(
                    401,
                    title="Not authenticated",
                    detail="/metrics requires the metrics bearer token",
                    code=Unauthorized.code,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # The web app last: its pages at `/`, its error pages wrapped around the handlers above.
    _web_install(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for `uvicorn --factory leadflow.app:app_factory`."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
