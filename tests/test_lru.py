"""The bounded map the GraphQL caches share (schema/lru.py)."""

from __future__ import annotations

from schema.lru import LeastRecentlyUsed


def test_the_least_recently_used_entry_goes_first_and_a_lookup_counts_as_a_use() -> None:
    cache: LeastRecentlyUsed[str, int] = LeastRecentlyUsed(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("a", 10)  # storing again is a use too, and replaces the value
    cache.put("d", 4)
    assert (cache.get("a"), cache.get("c"), cache.get("d")) == (10, None, 4)


def test_get_or_make_makes_once_and_keeps_none() -> None:
    cache: LeastRecentlyUsed[str, int | None] = LeastRecentlyUsed(4)
    made: list[str] = []

    def make(key: str) -> int | None:
        made.append(key)
        return None if key == "nothing" else len(key)

    for key in ("nothing", "four", "nothing", "four"):
        cache.get_or_make(key, lambda key=key: make(key))  # type: ignore[misc]
    assert made == ["nothing", "four"]
    assert cache.get_or_make("four", lambda: 0) == 4
