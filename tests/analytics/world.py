"""A small organisation whose history is written through the real endpoints at frozen times,
so every analytics figure has an exact expected value (worked out in the test modules).

Europe/Berlin (the default calendar: Mon-Fri 08:00-18:00, German holidays); the clocks
switch to summer time on Sunday 2026-03-29 at 01:00 UTC. Leads, by creation (UTC → local):

lead  created UTC  local (Berlin)    source  assignee  later
L0    02-28 23:30  Sun 03-01 00:30   web     -         -
L1    03-02 09:00  Mon 03-02 10:00   web     c1        03-02 10:00 contacted (60 min, in time);
                                                       03-05 call by c1; 03-10 won
L2    03-28 23:30  Sun 03-29 00:30   web     c1        03-30 07:30 qualified (1920 min, in
                                                       time); 04-02 won
L3    03-29 00:30  Sun 03-29 01:30   fair    c2        value 2000; 03-30 12:00 call by c2
                                                       (2130 min, late); 04-03 proposal
L4    03-29 22:30  Mon 03-30 00:30   fair    c3        never answered (breached)
L5    03-31 10:00  Tue 03-31 12:00   -       -         value 1000; 04-06 lost
L6    03-31 22:30  Wed 04-01 00:30   web     -         value 500
L8    04-05 22:30  Mon 04-06 00:30   web     -         -
L7    04-09 22:30  Fri 04-10 00:30   web     -         -
L9    04-10 10:15  Fri 04-10 12:15   web     c1        deadline 12:15 UTC, reminder 11:45 UTC

SLA deadlines are 120 business minutes after the assignment: L2, L3 and L4 all get Monday
03-30 10:00 CEST (08:00 UTC); L1 gets 03-02 12:00 CET (11:00 UTC). The queries run at
`NOW` (Friday 2026-04-10 12:00 UTC). c1 and c2 are in the manager's team, c3 is not; the
admin creates every lead. Another organisation has one won lead of its own in March.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from leadflow.kit.clock import clock
from tests.fixtures.factories import Factory, Member

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
MARCH = {"date_from": "2026-03-01", "date_to": "2026-03-31"}


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A 2026 time in UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class World:
    """The organisation, its members and the ids of its leads."""

    client: httpx.AsyncClient
    factory: Factory
    members: dict[str, Member] = field(default_factory=dict)
    leads: dict[str, str] = field(default_factory=dict)

    async def at(self, when: datetime) -> None:
        """Move the clock and sign everybody in again (their tokens would have expired)."""
        clock.freeze(when)
        for name, member in self.members.items():
            self.members[name] = await self.factory.relogin(member)

    async def call(self, who: str, method: str, url: str, **kw: Any) -> Any:
        """A request as `who` that must succeed; its JSON."""
        r = await self.client.request(method, url, headers=self.members[who].headers, **kw)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    async def get(self, who: str, url: str, **params: Any) -> Any:
        """GET as `who`."""
        return await self.call(who, "GET", url, params=params)

    def uid(self, who: str) -> str:
        """A member's user id."""
        return self.members[who].id

    async def lead(self, name: str, when: datetime, **fields: Any) -> None:
        """Create a lead through the API at `when` (as the admin)."""
        await self.at(when)
        if "assignee" in fields:
            fields["assignee_id"] = self.uid(fields.pop("assignee"))
        body = await self.call(
            "admin",
            "POST",
            "/api/v1/leads",
            json={"name": name, "email": f"{name.lower()}@example.com", **fields},
        )
        self.leads[name] = body["id"]

    async def move(self, who: str, name: str, status: str, when: datetime) -> None:
        """Move a lead to `status` at `when`."""
        await self.at(when)
        await self.call(
            who, "PATCH", f"/api/v1/leads/{self.leads[name]}/status", json={"status": status}
        )

    async def contact(self, who: str, name: str, when: datetime) -> None:
        """`who` logs an outbound call with the lead at `when`."""
        await self.at(when)
        await self.call(
            who,
            "POST",
            f"/api/v1/leads/{self.leads[name]}/interactions",
            json={"type": "call", "outcome": "talked"},
        )


async def build(client: httpx.AsyncClient, factory: Factory) -> World:
    """The organisation of the module docstring, with the clock left at `NOW`."""
    clock.freeze(utc(2, 1, 9))
    w = World(client, factory)
    org = await factory.org("Analytics GmbH")
    team = await factory.team(org)
    w.members["admin"] = await factory.member(org, "admin")
    w.members["manager"] = await factory.member(org, "manager", team=team)
    w.members["c1"] = await factory.member(org, "counselor", team=team)
    w.members["c2"] = await factory.member(org, "counselor", team=team)
    w.members["c3"] = await factory.member(org, "counselor")
    w.members["c1"].user.capacity = 2
    w.members["c3"].user.capacity = 1
    await factory.session.commit()
    await w.call(
        "admin",
        "POST",
        "/api/v1/custom-fields",
        json={"key": "value", "label": "Value", "type": "number"},
    )

    await w.lead("L0", utc(2, 28, 23, 30), source="web")
    await w.lead("L1", utc(3, 2, 9), source="web", assignee="c1")
    await w.move("c1", "L1", "contacted", utc(3, 2, 10))
    await w.contact("c1", "L1", utc(3, 5, 9))
    await w.move("c1", "L1", "won", utc(3, 10, 9))
    await w.lead("L2", utc(3, 28, 23, 30), source="web", assignee="c1")
    await w.lead("L3", utc(3, 29, 0, 30), source="fair", assignee="c2", custom={"value": 2000})
    await w.lead("L4", utc(3, 29, 22, 30), source="fair", assignee="c3")
    await w.move("c1", "L2", "qualified", utc(3, 30, 7, 30))
    await w.contact("c2", "L3", utc(3, 30, 12))
    await w.lead("L5", utc(3, 31, 10), custom={"value": 1000})
    await w.lead("L6", utc(3, 31, 22, 30), source="web", custom={"value": 500})
    await w.move("c1", "L2", "won", utc(4, 2, 9))
    await w.move("c2", "L3", "proposal", utc(4, 3, 9))
    await w.lead("L8", utc(4, 5, 22, 30), source="web")
    await w.move("admin", "L5", "lost", utc(4, 6, 9))
    await w.lead("L7", utc(4, 9, 22, 30), source="web")
    await w.lead("L9", utc(4, 10, 10, 15), source="web", assignee="c1")

    # Another organisation: one lead won in March that nobody above may ever count.
    other = await factory.org("Elsewhere AG")
    w.members["other"] = await factory.member(other, "admin")
    await w.at(utc(3, 3, 9))
    fremd = {"name": "Fremd", "source": "web", "assignee_id": w.uid("other")}
    body = await w.call("other", "POST", "/api/v1/leads", json=fremd)
    await w.at(utc(3, 4, 9))
    await w.call("other", "PATCH", f"/api/v1/leads/{body['id']}/status", json={"status": "won"})

    await w.at(NOW)
    return w


def by_user(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Rows keyed by user id, without the id and name."""
    return {
        r["user_id"]: {k: v for k, v in r.items() if k not in ("user_id", "full_name")}
        for r in rows
    }


def new_id() -> str:
    """An id that exists nowhere."""
    return str(uuid.uuid4())
