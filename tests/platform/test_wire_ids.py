"""Ids made for COPY in asyncpg's own UUID form behave as standard UUIDs everywhere."""

from __future__ import annotations

import json
import pickle
import uuid

from leadflow.db.types import WireIds, new_id, new_wire_id


def test_wire_ids_are_uuid7_and_equal_to_their_standard_form() -> None:
    ids = [new_wire_id() for _ in range(50)]
    assert all(isinstance(i, uuid.UUID) and i.version == 7 for i in ids)
    plain = [uuid.UUID(str(i)) for i in ids]
    assert plain == ids and {*plain} == {*ids} and [hash(p) for p in plain] == list(map(hash, ids))
    assert pickle.loads(pickle.dumps(ids)) == ids
    assert json.dumps([str(i) for i in ids]) == json.dumps([str(p) for p in plain])
    assert type(ids[0]) is not uuid.UUID  # the driver's form, not a copy of the standard one


def test_wire_id_cache_converts_each_id_once() -> None:
    cache = WireIds()
    org = new_id()
    first = cache[org]
    assert first == org and type(first) is not uuid.UUID
    assert cache[org] is first and cache[uuid.UUID(str(org))] is first
    wired = new_wire_id()
    assert cache[wired] is wired
