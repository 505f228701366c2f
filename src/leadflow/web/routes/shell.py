"""Sign-in, sign-out, invitation acceptance, the language switch and the notifications bell."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from leadflow.accounts import invitations
from leadflow.auth import service
from leadflow.auth.streams import session_recheck, stream_slot
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import LeadflowError, TooManyRequests
from leadflow.kit.pagination import PageParams
from leadflow.kit.passwords import MIN_PASSWORD_LENGTH
from leadflow.kit.sse import SSE_HEADERS, SlotStreamingResponse
from leadflow.notifications import service as notifications
from leadflow.notifications.stream import notification_events
from leadflow.web.forms import form_text
from leadflow.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from leadflow.web.session import (
    WebActor,
    browser_actor,
    csrf_token,
    queue_cookie,
    sign_in,
    sign_out,
    verify_anonymous_csrf,
    verify_csrf,
)
from leadflow.web.templating import load_shell, redirect, render

router = APIRouter(include_in_schema=False)

NOTIFICATIONS_SHOWN = 50


def safe_next(target: str | None) -> str:
    """A local path to return to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login")
async def login_page(
    request: Request, session: SessionDep, next: Annotated[str | None, Query()] = None
) -> Response:
    """The sign-in form (signed-in browsers go straight on)."""
    if await browser_actor(request, session) is not None:
        return redirect(request, safe_next(next))
    request.state.web_actor = None
    return render(request, "login.html", {"next": safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request, session: SessionDep) -> Response:
    """Sign in with email and password through the auth service the API uses."""
    await verify_anonymous_csrf(request)
    form = await request.form()
    email, password = form_text(form, "email"), form_text(form, "password")
    target = safe_next(form_text(form, "next"))
    try:
        pair = await service.login(
            session,
            request.app.state.settings,
            request.app.state.login_limiter,
            email,
            password,
        )
    except TooManyRequests as exc:
        await session.rollback()
        return render(
            request,
            "login.html",
            {"next": target, "error": exc.detail, "email": email},
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except LeadflowError as exc:
        # The failure is recorded by the limiter (outside this transaction); nothing else.
        await session.rollback()
        return render(
            request,
            "login.html",
            {"next": target, "error": service.INVALID_CREDENTIALS, "email": email},
            status_code=exc.status if exc.status in (401, 422) else 400,
        )
    sign_in(request, pair)
    return redirect(request, target)


@router.post("/logout")
async def logout(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """End the login session (its cookie stops working everywhere at once)."""
    await service.logout(session, actor)
    sign_out(request)
    return redirect(request, "/login")


@router.get("/accept-invite")
async def accept_invite_page(
    request: Request, token: Annotated[str, Query(min_length=1, max_length=200)]
) -> Response:
    """The invitation link's page: choose a password."""
    return render(
        request,
        "accept_invite.html",
        {"token": token, "min_length": MIN_PASSWORD_LENGTH, "error": None},
    )


@router.post("/accept-invite")
async def accept_invite(request: Request, session: SessionDep) -> Response:
    """Set the password with the invitation (the accounts service) and sign in."""
    await verify_anonymous_csrf(request)
    form = await request.form()
    token = form_text(form, "token")[:200]
    password, repeated = form_text(form, "password"), form_text(form, "password2")
    error: str | None = None
    if len(password) < MIN_PASSWORD_LENGTH:
        error = "Password must be at least {n} characters"
    elif password != repeated:
        error = "The passwords differ"
    if error is None:
        try:
            pair = await invitations.accept(session, request.app.state.settings, token, password)
        except LeadflowError as exc:
            await session.rollback()
            error = exc.detail
        else:
            sign_in(request, pair)
            return redirect(request, "/")
    return render(
        request,
        "accept_invite.html",
        {"token": token, "min_length": MIN_PASSWORD_LENGTH, "error": error},
        status_code=422,
    )


@router.post("/language")
async def switch_language(request: Request, session: SessionDep) -> Response:
    """Remember the chosen language in a cookie and go back to the page."""
    actor = await browser_actor(request, session)
    if actor is not None:
        await verify_csrf(request, csrf_token(request))
    else:
        await verify_anonymous_csrf(request)
    form = await request.form()
    lang = form_text(form, "lang")
    if lang in LANGUAGES:
        queue_cookie(request, LANGUAGE_COOKIE, lang, 365 * 24 * 3600)
    return redirect(request, safe_next(form_text(form, "next")))


@router.get("/notifications/stream")
async def notification_stream(
    request: Request,
    factory: SessionFactoryDep,
    actor: WebActor,
    after: uuid.UUID | None = None,
    max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300,
) -> Response:
    """The API's notification event stream, authenticated by the session cookie."""
    assert actor.user_id is not None
    guard = session_recheck(request, factory, actor, credential=request.state.web_token)
    release = stream_slot(request, actor)
    return SlotStreamingResponse(
        notification_events(request, factory, actor.user_id, after, None, max_seconds, guard),
        release=release,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


@router.get("/crm/notifications")
async def notifications_page(request: Request, session: SessionDep, actor: WebActor) -> Response:
    """The signed-in person's newest notifications."""
    await load_shell(request, session, actor)
    rows, total = await notifications.list_for(
        session, actor, PageParams(limit=NOTIFICATIONS_SHOWN, offset=0), unread=None
    )
    return render(request, "notifications.html", {"notifications": rows, "total": total})


@router.post("/notifications/read-all")
async def read_all_notifications(
    request: Request, session: SessionDep, actor: WebActor
) -> Response:
    """Mark every notification read (the notifications service the API uses)."""
    await notifications.mark_all_read(session, actor)
    return redirect(request, "/crm/notifications")
