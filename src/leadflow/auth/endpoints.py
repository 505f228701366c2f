"""/api/v1/auth: register, login, refresh, logout, me (aliases /api/auth/...)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import ValidationError

from leadflow.auth import service
from leadflow.auth.dependencies import CurrentActor, CurrentPerson
from leadflow.auth.errors import MalformedBody
from leadflow.auth.schemas import (
    LoginIn,
    MeOut,
    OrganizationRef,
    RefreshIn,
    RegisterIn,
    RegisterOut,
    TokenPair,
    UserRef,
)
from leadflow.db.session import SessionDep
from leadflow.exceptions import ValidationFailed
from leadflow.organizations import service as orgs
from leadflow.users import service as users

router = APIRouter(tags=["auth"])

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginIn.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "description": "email"},
                        "password": {"type": "string"},
                    },
                }
            },
        },
    }
}


@router.post("/register", response_model=RegisterOut, status_code=status.HTTP_201_CREATED)
async def register(request: Request, session: SessionDep, body: RegisterIn) -> RegisterOut:
    """Create an organisation and its first admin; returns tokens (limited per client IP)."""
    user, org, pair = await service.register(
        session, request.app.state.settings, request.app.state.register_limiter, body
    )
    return RegisterOut(
        **pair.model_dump(),
        user=UserRef(id=user.id, email=user.email, full_name=user.full_name, role="admin"),
        organization=OrganizationRef(id=org.id, name=org.name),
    )


async def _login_body(request: Request) -> LoginIn:
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            return LoginIn(
                email=str(form.get("username") or form.get("email") or ""),
                password=str(form.get("password") or ""),
            )
        return LoginIn.model_validate_json(await request.body())
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
        raise ValidationFailed("Email and password are required", errors=errors) from exc
    except ValueError as exc:
        raise MalformedBody("Malformed request body") from exc


@router.post("/login", response_model=TokenPair, openapi_extra=_LOGIN_BODY)
async def login(request: Request, session: SessionDep) -> TokenPair:
    """Email and password (JSON, or the OAuth2 form with `username`) → tokens."""
    body = await _login_body(request)
    return await service.login(
        session,
        request.app.state.settings,
        request.app.state.login_limiter,
        body.email,
        body.password,
    )


@router.post("/refresh", response_model=TokenPair)
async def refresh(request: Request, session: SessionDep, body: RefreshIn) -> TokenPair:
    """Exchange a refresh token for a new pair (the old one is spent)."""
    return await service.refresh(session, request.app.state.settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(session: SessionDep, actor: CurrentPerson) -> Response:
    """End this session; its access token stops working at once (not for API keys)."""
    await service.logout(session, actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
async def me(session: SessionDep, actor: CurrentActor) -> MeOut:
    """The signed-in user with role, permissions and organisation."""
    org = await orgs.get_organization(session, actor.organization_id)
    if actor.user_id is not None and actor.api_key_id is None:
        user = await users.get_user(session, actor, actor.user_id)
        ident = (user.id, user.email, user.full_name)
    else:
        ident = (actor.api_key_id, actor.label, actor.label)  # type: ignore[assignment]
    return MeOut(
        id=ident[0],
        email=ident[1],
        full_name=ident[2],
        role=actor.role,
        permissions=sorted(actor.permissions),
        team_id=actor.team_id,
        organization=OrganizationRef(id=org.id, name=org.name),
        impersonation=await service.impersonation_of(session, actor),
    )
