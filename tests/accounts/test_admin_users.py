"""/api/v1/admin/users in seed 003's shapes: list, create, get, change, deactivate, bulk
actions; who may call them, other organisations' ids and bad input."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.audit_log import AuditLog
from leadflow.models.invitation import Invitation
from leadflow.models.outbox import OutboxMessage
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from tests.accounts.helpers import ADMIN_USERS, audit_actions, count, custom_role
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory

READ_KEYS = {
    "id",
    "full_name",
    "email",
    "phone",
    "role",
    "status",
    "team_id",
    "has_password",
    "last_login_at",
    "created_at",
    "updated_at",
}


async def test_list_has_the_seed_shape_filters_and_pages(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    reps = [await factory.user(org, "counselor") for _ in range(3)]
    await factory.user(org, "viewer", status="inactive")
    await factory.user(await factory.org(), "counselor")  # another organisation

    r = await client.get(
        ADMIN_USERS, headers=admin.headers, params={"role": "counselor", "limit": 2, "offset": 2}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    by_name = sorted(reps, key=lambda u: (u.full_name.lower(), str(u.id)))
    assert {k: body[k] for k in ("total", "page", "limit", "offset")} == {
        "total": 3,
        "page": 2,
        "limit": 2,
        "offset": 2,
    }
    assert [u["id"] for u in body["users"]] == [str(by_name[2].id)]
    assert set(body["users"][0]) == READ_KEYS
    assert body["users"][0]["role"] == "counselor" and body["users"][0]["has_password"] is True

    everyone = (await client.get(ADMIN_USERS, headers=admin.headers)).json()
    assert (everyone["total"], everyone["page"], everyone["limit"]) == (5, 1, 50)
    inactive = await client.get(ADMIN_USERS, headers=admin.headers, params={"status": "inactive"})
    assert [u["role"] for u in inactive.json()["users"]] == ["viewer"]
    found = await client.get(
        ADMIN_USERS, headers=admin.headers, params={"search": admin.user.email.split("@")[0]}
    )
    assert [u["id"] for u in found.json()["users"]] == [admin.id]


async def test_create_without_invite_then_get_and_change(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        ADMIN_USERS,
        headers=admin.headers,
        json={
            "full_name": "Lena Berater",
            "email": "Lena.Berater@Example.com",
            "phone": "0151 23456789",
            "role": "counselor",
            "status": "active",
            "send_invite": False,
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    user_id = created.pop("user_id")
    assert created == {"invite_sent": False, "invite_expires_at": None}
    got = (await client.get(f"{ADMIN_USERS}/{user_id}", headers=admin.headers)).json()
    assert {k: got[k] for k in ("full_name", "email", "phone", "role", "status")} == {
        "full_name": "Lena Berater",
        "email": "lena.berater@example.com",
        "phone": "+4915123456789",
        "role": "counselor",
        "status": "active",
    }
    assert got["has_password"] is False
    assert await count(session, Invitation) == 0
    assert await count(session, OutboxMessage) == 0
    # No password yet: nobody can sign in as the new member.
    login = await client.post(
        "/api/v1/auth/login", json={"email": "lena.berater@example.com", "password": "x" * 12}
    )
    assert login.status_code == 401

    r = await client.patch(
        f"{ADMIN_USERS}/{user_id}",
        headers=admin.headers,
        json={"full_name": "Lena B.", "email": "LENA@example.com", "phone": None, "role": "viewer"},
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert {k: changed[k] for k in ("full_name", "email", "phone", "role")} == {
        "full_name": "Lena B.",
        "email": "lena@example.com",
        "phone": None,
        "role": "viewer",
    }
    update = await session.scalar(
        select(AuditLog).where(AuditLog.action == "user.update", AuditLog.resource_id == user_id)
    )
    assert update is not None and update.actor_user_id == admin.user.id
    viewer = await org_repo.get_role_by_name(session, org.id, "viewer")
    assert viewer is not None
    assert update.after == {
        "full_name": "Lena B.",
        "email": "lena@example.com",
        "phone": None,
        "role": "viewer",
        "role_id": str(viewer.id),
    }
    assert await audit_actions(session, org.id) == ["user.create", "user.update"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "bad", "full_name": "X", "role": "counselor"}, "email"),
        ({"email": "x@example.com", "full_name": "X", "role": "wizard"}, "role"),
        ({"email": "x@example.com", "full_name": "", "role": "counselor"}, "full_name"),
        ({"email": "x@example.com", "full_name": "X" * 201, "role": "counselor"}, "full_name"),
        ({"email": "x@example.com", "full_name": "X", "role": "counselor", "phone": "12"}, "phone"),
        ({"email": "x@example.com", "full_name": "X", "role": "counselor", "status": "gone"}, None),
        ({"email": "x@example.com", "full_name": "X", "role": "counselor", "extra": 1}, None),
        (
            {"email": "x@example.com", "full_name": "X", "role": "counselor", "password": "p" * 12},
            None,
        ),
        (
            {
                "email": "x@example.com",
                "full_name": "X",
                "role": "counselor",
                "status": "inactive",
                "send_invite": True,
            },
            "send_invite",
        ),
        ({"email": None, "full_name": "X", "role": "counselor"}, "email"),
        ({"full_name": "X", "role": "counselor"}, "email"),
    ],
)
async def test_create_bad_input_is_422_and_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
    field: str | None,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    users, audits = await count(session, User), await count(session, AuditLog)
    r = await client.post(ADMIN_USERS, headers=admin.headers, json=payload)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "validation_error"
    assert r.headers["content-type"].startswith("application/problem+json")
    if field is not None:
        assert field in [e["loc"][-1] for e in body["errors"]]
    assert (await count(session, User), await count(session, AuditLog)) == (users, audits)


async def test_create_with_a_taken_email_is_409(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    elsewhere = await factory.user(await factory.org())
    before = await count(session, User)
    r = await client.post(
        ADMIN_USERS,
        headers=admin.headers,
        json={"full_name": "Dup", "email": elsewhere.email.upper(), "role": "viewer"},
    )
    assert (r.status_code, r.json()["code"]) == (409, "email_taken")
    assert await count(session, User) == before


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"full_name": None}, 422, "validation_error"),
        ({"role": None}, 422, "validation_error"),
        ({"status": None}, 422, "validation_error"),
        ({"email": "not-an-email"}, 422, "validation_error"),
        ({"phone": "abc"}, 422, "validation_error"),
        ({"role": "wizard"}, 422, "validation_error"),
        ({"status": "sleeping"}, 422, "validation_error"),
        ({"reassign_to": "00000000-0000-0000-0000-000000000001"}, 422, "validation_error"),
        ({"nickname": "x"}, 422, "validation_error"),
        ({"team_id": "00000000-0000-0000-0000-000000000001"}, 404, "not_found"),
        ({"email": "TAKEN"}, 409, "email_taken"),
    ],
)
async def test_change_bad_input_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
    status: int,
    code: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    taken = await factory.user(org, "viewer")
    if payload.get("email") == "TAKEN":
        payload = {"email": taken.email}
    audits = await count(session, AuditLog)
    r = await client.patch(f"{ADMIN_USERS}/{rep.id}", headers=admin.headers, json=payload)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert await count(session, AuditLog) == audits
    fresh = await session.scalar(
        select(User).where(User.id == rep.id).execution_options(populate_existing=True)
    )
    assert fresh is not None
    assert (fresh.email, fresh.full_name, fresh.status, fresh.role_id) == (
        rep.email,
        rep.full_name,
        "active",
        rep.role_id,
    )


async def test_nobody_changes_own_role_or_status_nor_deletes_themselves(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.user(org, "admin")  # not the last admin: the self rules alone decide
    me = f"{ADMIN_USERS}/{admin.id}"
    r = await client.patch(me, headers=admin.headers, json={"role": "viewer"})
    assert (r.status_code, r.json()["code"]) == (409, "self_role_change")
    r = await client.patch(me, headers=admin.headers, json={"status": "inactive"})
    assert (r.status_code, r.json()["code"]) == (409, "self_deactivation")
    r = await client.delete(me, headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (409, "self_deactivation")
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=admin.headers,
        json={"user_ids": [admin.id], "action": "delete"},
    )
    assert r.json()["results"][0]["code"] == "self_deactivation"
    assert (await client.get("/api/v1/auth/me", headers=admin.headers)).status_code == 200
    assert await audit_actions(session, org.id) == []


async def test_a_user_admin_cannot_reach_beyond_their_own_power(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    await custom_role(session, org, "useradmin", ["users:read", "admin:users", "leads:read"])
    ua = await factory.member(org, "useradmin")
    boss = await factory.user(org, "admin")
    rep = await factory.user(org, "counselor")
    r = await client.post(
        ADMIN_USERS,
        headers=ua.headers,
        json={"full_name": "New Boss", "email": "boss2@example.com", "role": "admin"},
    )
    assert (r.status_code, r.json()["code"]) == (403, "privilege_escalation")
    for method, url in (
        ("DELETE", f"{ADMIN_USERS}/{boss.id}"),
        ("PATCH", f"{ADMIN_USERS}/{rep.id}"),  # a counselor holds leads:write, ua does not
        ("POST", f"{ADMIN_USERS}/{rep.id}/invite"),
    ):
        body = {"full_name": "Changed"} if method == "PATCH" else None
        r = await client.request(method, url, headers=ua.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "privilege_escalation"), url
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=ua.headers,
        json={"user_ids": [str(boss.id)], "action": "deactivate"},
    )
    [result] = r.json()["results"]
    assert (result["ok"], result["http_status"], result["code"]) == (
        False,
        403,
        "privilege_escalation",
    )
    assert await audit_actions(session, org.id) == []


async def test_bulk_action_reports_each_id(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    a, b = await factory.user(org, "counselor"), await factory.user(org, "viewer")
    stranger = await factory.user(await factory.org(), "counselor")
    unknown = new_uuid()
    ids = [str(a.id), admin.id, str(stranger.id), str(b.id), unknown, str(a.id)]
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=admin.headers,
        json={"user_ids": ids, "action": "deactivate"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["action"], body["succeeded"], body["failed"]) == ("deactivate", 2, 3)
    got = [
        (x["user_id"], x["ok"], x["status"], x["http_status"], x["code"]) for x in body["results"]
    ]
    assert got == [
        (str(a.id), True, "inactive", None, None),
        (admin.id, False, None, 409, "self_deactivation"),
        (str(stranger.id), False, None, 404, "not_found"),
        (str(b.id), True, "inactive", None, None),
        (unknown, False, None, 404, "not_found"),
    ]
    rows = await session.execute(select(User.id, User.status).where(User.organization_id == org.id))
    statuses = {i: s for i, s in rows.all()}
    assert statuses == {admin.user.id: "active", a.id: "inactive", b.id: "inactive"}
    assert (
        await session.scalar(
            select(User.status)
            .where(User.id == stranger.id)
            .execution_options(populate_existing=True)
        )
    ) == "active"

    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=admin.headers,
        json={"user_ids": [str(a.id)], "action": "activate"},
    )
    assert r.json()["results"] == [
        {
            "user_id": str(a.id),
            "ok": True,
            "status": "active",
            "leads_reassigned": 0,
            "leads_unassigned": 0,
            "http_status": None,
            "code": None,
            "detail": None,
        }
    ]
    # "delete" deactivates as DELETE does: users are kept (history points at them).
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=admin.headers,
        json={"user_ids": [str(a.id)], "action": "delete"},
    )
    assert r.json()["results"][0]["status"] == "inactive"
    assert await count(session, User, User.id == a.id) == 1
    assert await audit_actions(session, org.id) == [
        "user.deactivate",
        "user.deactivate",
        "user.update",
        "user.deactivate",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"user_ids": [], "action": "deactivate"},
        {"user_ids": ["not-a-uuid"], "action": "deactivate"},
        {"user_ids": [new_uuid() for _ in range(101)], "action": "deactivate"},
        {"user_ids": [new_uuid()], "action": "explode"},
        {"user_ids": [new_uuid()]},
        {"user_ids": None, "action": "activate"},
        {"user_ids": [new_uuid()], "action": "activate", "reassign_to": new_uuid()},
        {"user_ids": [new_uuid()], "action": "deactivate", "reassign_to": new_uuid()},
    ],
)
async def test_bulk_action_bad_input_is_422(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(f"{ADMIN_USERS}/bulk-action", headers=admin.headers, json=payload)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), r.text
    assert await audit_actions(session, org.id) == []


@pytest.mark.parametrize("role", ["counselor", "manager", "viewer"])
async def test_every_admin_user_endpoint_is_403_for_non_admins(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, role: str
) -> None:
    org = await factory.org()
    m = await factory.member(org, role)
    target = await factory.user(org, "counselor")
    calls: list[tuple[str, str, object]] = [
        ("GET", ADMIN_USERS, None),
        ("POST", ADMIN_USERS, {"full_name": "Z", "email": "z@example.com", "role": "viewer"}),
        ("GET", f"{ADMIN_USERS}/{target.id}", None),
        ("PATCH", f"{ADMIN_USERS}/{target.id}", {"full_name": "Hacked"}),
        ("DELETE", f"{ADMIN_USERS}/{target.id}", None),
        ("POST", f"{ADMIN_USERS}/bulk-action", {"user_ids": [str(target.id)], "action": "delete"}),
        ("POST", f"{ADMIN_USERS}/{target.id}/invite", None),
        ("POST", f"{ADMIN_USERS}/{target.id}/impersonate", None),
        ("GET", "/api/v1/admin/permissions", None),
    ]
    users = await count(session, User)
    for method, url, body in calls:
        r = await client.request(method, url, headers=m.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "missing_permission"), (method, url)
    assert await count(session, User) == users
    assert await audit_actions(session, org.id) == []


async def test_another_organisations_users_are_404(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    theirs = await factory.user(await factory.org(), "counselor")
    for uid in (str(theirs.id), new_uuid()):
        for method, url, body in (
            ("GET", f"{ADMIN_USERS}/{uid}", None),
            ("PATCH", f"{ADMIN_USERS}/{uid}", {"full_name": "Mine now"}),
            ("DELETE", f"{ADMIN_USERS}/{uid}", None),
            ("POST", f"{ADMIN_USERS}/{uid}/invite", None),
            ("POST", f"{ADMIN_USERS}/{uid}/impersonate", None),
        ):
            r = await client.request(method, url, headers=admin.headers, json=body)
            assert (r.status_code, r.json()["code"]) == (404, "not_found"), (method, url)
    # Nor may another organisation's member receive this one's leads.
    r = await client.delete(
        f"{ADMIN_USERS}/{rep.id}", headers=admin.headers, params={"reassign_to": str(theirs.id)}
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    for bad in ("not-a-uuid", "1" * 400):
        r = await client.get(f"{ADMIN_USERS}/{bad}", headers=admin.headers)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    assert await audit_actions(session, org.id) == []
    fresh = await session.scalar(
        select(User).where(User.id == theirs.id).execution_options(populate_existing=True)
    )
    assert fresh is not None and (fresh.full_name, fresh.status) == (theirs.full_name, "active")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"offset": 10**19},
        {"status": "sleeping"},
        {"search": "x" * 201},
        {"role": "r" * 61},
    ],
)
async def test_list_bad_query_is_422(
    client: httpx.AsyncClient, factory: Factory, params: dict[str, int | str]
) -> None:
    admin = await factory.member(await factory.org())
    r = await client.get(ADMIN_USERS, headers=admin.headers, params=params)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), params


async def test_the_users_api_keeps_its_own_shape(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for path in ("/api/v1/users", "/api/users"):
        body = (await client.get(path, headers=admin.headers)).json()
        assert set(body) == {"items", "total", "limit", "offset"}, path
    admin_shape = (await client.get(ADMIN_USERS, headers=admin.headers)).json()
    assert set(admin_shape) == {"users", "total", "page", "limit", "offset"}
