"""A lead's payload is the same JSON whether the lead is a model row or an import's record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from leadflow.db.types import WireIds, new_wire_id
from leadflow.kit.records import RecordView
from leadflow.models.lead import Lead
from leadflow.webhooks.handlers import LEAD_FIELDS, lead_data
from leadflow.webhooks.service import to_json

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_an_imported_record_gives_the_json_of_the_same_lead_as_a_row() -> None:
    wire = WireIds()
    assignee, batch = uuid.uuid4(), uuid.uuid4()
    record = {
        "id": new_wire_id(),
        "first_name": "Lea",
        "full_name": "Lea",
        "email": "lea@example.com",
        "status": "new",
        "tags": ["vip"],
        "custom": {},
        "assignee_id": wire[assignee],
        "import_batch_id": wire[batch],
        "score": 0,
        "needs_action": True,
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }
    row = Lead(**{**record, "id": uuid.UUID(str(record["id"]))})
    row.assignee_id, row.import_batch_id = assignee, batch
    from_record = lead_data(RecordView(record))
    # Ids as text: orjson encodes them without its fallback (the driver's UUID is a subclass).
    assert [type(from_record[f]) for f in ("id", "assignee_id", "import_batch_id")] == [str] * 3
    assert from_record["id"] == str(record["id"])
    assert to_json(from_record) == to_json(lead_data(row))
    assert set(from_record) == set(LEAD_FIELDS)
    # A lead without an assignee or batch keeps them null.
    bare = lead_data(RecordView({**record, "assignee_id": None, "import_batch_id": None}))
    assert (bare["assignee_id"], bare["import_batch_id"]) == (None, None)
