"""RFC 9457 problem+json responses and the exception handlers that produce them."""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from leadflow.exceptions import (
    BadRequest,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    LeadflowError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from leadflow.kit.context import current_request
from leadflow.kit.errors import (
    CONCURRENT_CONFLICT,
    HTTP_ERROR,
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    UNSUPPORTED_MEDIA_TYPE,
    VALUE_OUT_OF_RANGE,
)

log = logging.getLogger("leadflow.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Framework HTTP errors answer like the LeadflowError of their status.
_TITLES = {
    error.status: (error.title, error.code)
    for error in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        ValidationFailed,
        TooManyRequests,
    )
} | {
    405: ("Method not allowed", METHOD_NOT_ALLOWED),
    415: ("Unsupported media type", UNSUPPORTED_MEDIA_TYPE),
}


def problem(
    status: int,
    *,
    title: str,
    detail: str,
    code: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response with `type, title, status, detail, code` and extras."""
    body = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    rid = current_request().request_id
    if rid:
        body["request_id"] = rid
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _loc_msg(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid"))
        ctx = e.get("ctx") or {}
        if "error" in ctx and msg.startswith("Value error"):
            msg = str(ctx["error"])
        out.append({"loc": [str(p) for p in e.get("loc", [])], "msg": msg})
    return out


async def _leadflow_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LeadflowError)
    headers = None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(
        exc.status, title=exc.title, detail=exc.detail, code=exc.code, headers=headers, **exc.extra
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _loc_msg(list(exc.errors()))
    fields = ", ".join(".".join(e["loc"][1:]) or e["loc"][0] for e in errors if e["loc"])
    detail = f"Invalid input: {fields}" if fields else "Invalid input"
    return problem(
        ValidationFailed.status,
        title=ValidationFailed.title,
        detail=detail,
        code=ValidationFailed.code,
        errors=errors,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title, code = _TITLES.get(exc.status_code, ("Error", HTTP_ERROR))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = "No such route"
    return problem(
        exc.status_code,
        title=title,
        detail=detail,
        code=code,
        headers=getattr(exc, "headers", None),
    )


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error: a driver error unwrapped (the PostgreSQL fast path,
    a COPY) or the one SQLAlchemy wraps; asyncpg's own client-side checks use 22000."""
    orig = exc.orig if isinstance(exc, sa_exc.StatementError) else None
    for err in (exc, orig):
        state = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def bad_value(exc: BaseException) -> bool:
    """Whether the database refused a value itself (out of range, NUL byte, bad encoding)."""
    if isinstance(exc, OverflowError | UnicodeEncodeError | sa_exc.DataError):
        return True
    if isinstance(exc, sa_exc.StatementError) and isinstance(
        exc.orig, OverflowError | UnicodeEncodeError
    ):
        return True
    # PostgreSQL's class 22 is "data exception": the value, not the statement, is at fault.
    state = sqlstate(exc)
    return state is not None and state.startswith("22")


async def _database_value_error(request: Request, exc: Exception) -> JSONResponse:
    # The last line of defence: input that passed validation but that the database cannot
    # store or compare (a number beyond 64 bits, a NUL byte in text on PostgreSQL). The
    # request's transaction is rolled back by its unit of work; the client gets a 422.
    if isinstance(exc, sa_exc.IntegrityError):
        # A constraint met by a concurrent write after our own checks passed (two identical
        # creates at once): the loser may retry and will then see the winner.
        log.info("constraint refused a write: %s", str(exc).splitlines()[0][:200])
        return problem(
            409,
            title="Conflict",
            detail="The change conflicts with one made at the same time; reload and retry",
            code=CONCURRENT_CONFLICT,
        )
    if not bad_value(exc):
        return await _unhandled(request, exc)
    log.info("value refused by the database: %s", str(exc).splitlines()[0][:200])
    return problem(
        422,
        title="Validation failed",
        detail="A value is out of the range or character set the database can store",
        code=VALUE_OUT_OF_RANGE,
    )


# SQLSTATEs of a database that is not there (class 08: connection exception; 57P01-57P03:
# shut down by an administrator, crashed, starting up or shutting down).
_GONE_STATES = ("08", "57P01", "57P02", "57P03")
# Socket errors of a server that is not listening or went away mid-conversation.
_GONE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
    }
)
# Seconds a client should wait before retrying during an outage.
DATABASE_RETRY_AFTER = 5


def database_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps, says the database cannot be reached right now
    (as opposed to refusing a statement): connecting failed, or the connection was lost."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.DisconnectionError | sa_exc.TimeoutError):
            return True  # a lost connection, or no pooled connection freed up in time
        if isinstance(current, asyncpg.exceptions.ConnectionDoesNotExistError):
            return True
        if isinstance(current, asyncpg.exceptions.InterfaceError) and "closed" in str(current):
            return True
        if isinstance(
            current, asyncpg.exceptions.InternalClientError
        ) and "cannot switch to state" in str(current):
            # The server went away in the middle of a statement and left the connection's
            # protocol half-way: the connection is lost, like the ones above.
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state.startswith(_GONE_STATES):
            return True
        if isinstance(current, OSError) and (
            current.errno in _GONE_ERRNOS
            # asyncio's connect to several addresses raises a plain OSError naming them all.
            or "Connect call failed" in str(current)
        ):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def database_busy(exc: BaseException) -> bool:
    """Whether `exc`, or an error it wraps, is SQLite giving up on its write lock after the
    busy timeout: more writers queued than it can serve in time (an overload, not a bug)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sqlite3.OperationalError) and "locked" in str(current):
            return True
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return False


def database_unavailable(detail: str | None = None) -> JSONResponse:
    """The 503 problem+json of a database outage (or overload), with `Retry-After`."""
    return problem(
        DatabaseUnavailable.status,
        title=DatabaseUnavailable.title,
        detail=detail or "The database is not reachable at the moment; retry shortly",
        code=DatabaseUnavailable.code,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def log_database_outage(exc: BaseException) -> None:
    """One warning line per request that met an outage (no traceback: it is not a bug)."""
    log.warning("database unreachable: %s", (str(exc) or type(exc).__name__).splitlines()[0])


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    if database_unreachable(exc):
        log_database_outage(exc)
        return database_unavailable()
    if database_busy(exc):
        log.warning("database busy: %s", str(exc).splitlines()[0][:200])
        return database_unavailable("The database is busy at the moment; retry shortly")
    log.error("unhandled error", exc_info=exc)
    return problem(
        500,
        title="Internal server error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
        code=INTERNAL_ERROR,
    )


def install_handlers(app: FastAPI) -> None:
    """Register every exception handler on `app`."""
    app.add_exception_handler(LeadflowError, _leadflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OverflowError, _database_value_error)
    app.add_exception_handler(UnicodeEncodeError, _database_value_error)
    app.add_exception_handler(asyncpg.exceptions.DataError, _database_value_error)
    app.add_exception_handler(sa_exc.StatementError, _database_value_error)
    app.add_exception_handler(Exception, _unhandled)
