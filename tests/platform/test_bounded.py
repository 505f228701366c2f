"""kit/bounded: a size-limited dict drops its oldest entries."""

from __future__ import annotations

from leadflow.kit.bounded import remember


def test_the_oldest_entries_go_first_and_a_stored_key_becomes_newest() -> None:
    cache: dict[str, int] = {}
    for i, key in enumerate("abc"):
        remember(cache, key, i, 3)
    remember(cache, "a", 10, 3)  # stored again: now the newest
    remember(cache, "d", 3, 3)
    assert cache == {"c": 2, "a": 10, "d": 3}
    assert list(cache) == ["c", "a", "d"]
