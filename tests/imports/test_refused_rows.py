"""A value the row checks let through but the database refuses costs its row, not the import.

The refusal is made real here: a CHECK constraint (PostgreSQL) or a trigger (SQLite) on
`leads` that refuses one company name. Before, one such value refused its whole chunk: the
synchronous import answered an error for the file, a background import failed with every
row after the last committed chunk left out."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.imports import pipeline
from leadflow.imports.errors import REFUSED_BY_DATABASE
from leadflow.models.assignment_rule import AssignmentRule
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.models.import_batch import ImportBatch, ImportRowError
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from leadflow.models.organization import Organization
from leadflow.models.outbox import Notification
from tests.fixtures.factories import Factory, background_batch, run_batch, sync_import

REFUSED = "Refused GmbH"
ROWS = 2_500  # two chunks of the background import
REFUSED_AT = (3, 1_500, 2_400)  # data rows (the file's row numbers are one more)


def _body(rows: int = ROWS, refused: tuple[int, ...] = REFUSED_AT) -> str:
    lines = ["Name,E-Mail,Firma"]
    for i in range(1, rows + 1):
        company = REFUSED if i in refused else f"Firma {i}"
        lines.append(f"Person {i},person{i}@example.com,{company}")
    return "\n".join(lines) + "\n"


async def _refuse(session: AsyncSession) -> None:
    """Make the database itself refuse a lead whose company is REFUSED."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(
            sql_text(
                "ALTER TABLE leads ADD CONSTRAINT test_refused"
                f" CHECK (company IS DISTINCT FROM '{REFUSED}')"
            )
        )
    else:
        await session.execute(
            sql_text(
                "CREATE TRIGGER test_refused_insert BEFORE INSERT ON leads"
                f" WHEN NEW.company = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )
        await session.execute(
            sql_text(
                "CREATE TRIGGER test_refused_update BEFORE UPDATE ON leads"
                f" WHEN NEW.company = '{REFUSED}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        )


async def test_a_background_import_reports_the_refused_rows_and_imports_the_rest(
    committed_db: Database, tmp_path: Path
) -> None:
    async with committed_db.sessionmaker() as session:
        await _refuse(session)
        await session.commit()
        batch_id = await background_batch(session, _body().encode())
    assert await run_batch(committed_db, batch_id, tmp_path / "data") == "completed"
    async with committed_db.sessionmaker() as s:
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None
        assert (batch.total_rows, batch.imported_count, batch.error_count) == (ROWS, ROWS - 3, 3)
        assert batch.skipped_count == 0
        errors = (await s.scalars(select(ImportRowError).order_by(ImportRowError.row))).all()
        assert [e.row for e in errors] == [i + 1 for i in REFUSED_AT]
        assert {e.code for e in errors} == {REFUSED_BY_DATABASE}
        assert all(e.raw[2] == REFUSED for e in errors)
        assert all("refused" in e.message for e in errors)
        emails = set(await s.scalars(select(Lead.email)))
        assert emails == {
            f"person{i}@example.com" for i in range(1, ROWS + 1) if i not in REFUSED_AT
        }
        # Each written lead has its one first status row: nothing of a refused set remains.
        history = await s.scalar(select(func.count()).select_from(LeadStatusChange))
        assert history == ROWS - 3


async def test_a_synchronous_import_reports_the_refused_rows_and_imports_the_rest(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    await _refuse(session)
    admin = await factory.member(await factory.org())
    out = await sync_import(client, admin.headers, _body(40, (3, 17)))
    assert (out["imported_count"], out["error_count"]) == (38, 2)
    errors = out["errors"]
    assert isinstance(errors, list)
    assert [(e["row"], e["code"]) for e in errors] == [
        (4, REFUSED_BY_DATABASE),
        (18, REFUSED_BY_DATABASE),
    ]
    stored = await session.scalar(select(func.count()).select_from(Lead))
    assert stored == 38


async def test_an_update_the_database_refuses_is_the_rows_error(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    admin = await factory.member(await factory.org())
    first = await sync_import(client, admin.headers, _body(5, ()))
    assert first["imported_count"] == 5, first
    await _refuse(session)
    again = _body(5, (2, 4)).replace("Firma 1\n", "Neue Firma\n")
    out = await sync_import(client, admin.headers, again, on_duplicate="update")
    # Rows 1, 3 and 5 are written (their analysis runs again); 2 and 4 are refused.
    assert (out["updated_count"], out["error_count"], out["skipped_count"]) == (3, 2, 0), out
    assert [(e["row"], e["code"]) for e in out["errors"]] == [
        (3, REFUSED_BY_DATABASE),
        (5, REFUSED_BY_DATABASE),
    ]
    companies = dict((await session.execute(select(Lead.email, Lead.company))).all())
    assert companies["person1@example.com"] == "Neue Firma"
    assert companies["person2@example.com"] == "Firma 2"
    assert companies["person4@example.com"] == "Firma 4"


async def test_many_refused_rows_in_one_chunk_stop_the_import_as_before(
    committed_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Beyond a few refused rows per chunk the cause is not in the rows: each would cost a
    # write of its own, so the import stops with the database's reason.
    monkeypatch.setattr(pipeline, "MAX_REFUSED_PER_CHUNK", 1)
    async with committed_db.sessionmaker() as session:
        await _refuse(session)
        await session.commit()
        batch_id = await background_batch(session, _body(20, (4, 9)).encode())
    assert await run_batch(committed_db, batch_id, tmp_path / "data") == "failed"
    async with committed_db.sessionmaker() as s:
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None and batch.failure is not None
        assert batch.failure.startswith("The database refused more than 1 rows"), batch.failure
        # Row 4 was written before the refusals added up: the chunk is not kept at all.
        assert await s.scalar(select(func.count()).select_from(Lead)) == 0


async def test_many_refused_rows_answer_a_synchronous_import_with_422_and_write_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "MAX_REFUSED_PER_CHUNK", 1)
    await _refuse(session)
    admin = await factory.member(await factory.org())
    r = await client.post(
        "/import/leads",
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=_body(20, (4, 9)).encode(),
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "rows_refused"
    assert await session.scalar(select(func.count()).select_from(Lead)) == 0


async def test_a_round_robin_import_goes_on_after_a_refused_part(
    committed_db: Database, tmp_path: Path
) -> None:
    # While chunk N is written, chunk N+1 is matched and its leads take round-robin slots.
    # Rolling back chunk N's refused part must not take the rule's state away from them.
    rows, refused = 4_500, (100, 2_100, 4_100)
    async with committed_db.sessionmaker() as session:
        await _refuse(session)
        await session.commit()
        batch_id = await background_batch(session, _body(rows, refused).encode())
        batch = await session.get(ImportBatch, uuid.UUID(batch_id))
        assert batch is not None
        org = await session.get(Organization, batch.organization_id)
        assert org is not None
        factory = Factory(session, Settings.model_construct())
        reps = [await factory.user(org, "counselor") for _ in range(3)]
        session.add(
            AssignmentRule(
                organization_id=org.id,
                name="everyone",
                position=0,
                is_active=True,
                conditions={},
                strategy="round_robin",
                user_ids=[str(r.id) for r in reps],
            )
        )
        await session.commit()
    assert await run_batch(committed_db, batch_id, tmp_path / "data") == "completed"
    async with committed_db.sessionmaker() as s:
        done = await s.scalar(select(ImportBatch))
        assert done is not None and (done.imported_count, done.error_count) == (rows - 3, 3)
        grouped = await s.execute(select(Lead.assignee_id, func.count()).group_by(Lead.assignee_id))
        per_rep = {assignee: n for assignee, n in grouped.all()}
        assert set(per_rep) == {r.id for r in reps}
        # Refused rows took their slots too: the shares differ by at most those.
        assert max(per_rep.values()) - min(per_rep.values()) <= 3
        rule = await s.scalar(select(AssignmentRule))
        assert rule is not None and rule.rr_counter >= rows - 3
        # Each rep's summary counts the leads they got, not the refused ones.
        told = await s.execute(
            select(Notification.user_id, Notification.data).where(
                Notification.kind == "import_assigned"
            )
        )
        assert {user: data["count"] for user, data in told.all()} == per_rep


async def test_a_later_row_with_the_email_of_a_refused_row_is_imported(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    # Row 3 is refused; row 2,400 (the next chunk) has its email: no lead has that email, so
    # it is not a duplicate and is imported.
    await _refuse(session)
    admin = await factory.member(await factory.org())
    body = _body(2_500, (3,)).replace(
        "Person 2400,person2400@example.com,", "Person 2400,person3@example.com,"
    )
    out = await sync_import(client, admin.headers, body)
    assert (out["imported_count"], out["error_count"], out["skipped_count"]) == (2_499, 1, 0)
    companies = list(
        await session.scalars(select(Lead.company).where(Lead.email == "person3@example.com"))
    )
    assert companies == ["Firma 2400"]


async def test_refused_inserts_and_updates_of_a_chunk_share_one_limit(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = await factory.member(await factory.org())
    first = await sync_import(client, admin.headers, _body(3, ()))
    assert first["imported_count"] == 3, first
    await _refuse(session)
    monkeypatch.setattr(pipeline, "MAX_REFUSED_PER_CHUNK", 1)
    # One refused update (person 2) and one refused new lead (person 9): two in one chunk.
    body = _body(3, (2,)) + f"Person 9,person9@example.com,{REFUSED}\n"
    r = await client.post(
        "/import/leads",
        params={"on_duplicate": "update"},
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=body.encode(),
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "rows_refused"


async def test_a_field_only_refused_rows_fill_is_not_defined(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    # A second e-mail column fills the custom field `email_2`, which the import defines. Here
    # only row 2 (refused) fills it, and only row 3 (kept) fills `mobile`.
    await _refuse(session)
    admin = await factory.member(await factory.org())
    body = (
        "Name,E-Mail,E-Mail 2,Telefon,Mobil,Firma\n"
        "Person 1,person1@example.com,,+49 30 1234567,,Firma 1\n"
        f"Person 2,person2@example.com,second@example.com,,,{REFUSED}\n"
        "Person 3,person3@example.com,,+49 30 7654321,+49 151 2345678,Firma 3\n"
    )
    out = await sync_import(client, admin.headers, body)
    assert (out["imported_count"], out["error_count"]) == (2, 1), out
    keys = set(await session.scalars(select(CustomFieldDefinition.key)))
    assert keys == {"mobile"}
    fields = await client.get("/api/v1/custom-fields", headers=admin.headers)
    assert [f["key"] for f in fields.json()] == ["mobile"], fields.text
