"""No NUL character in text, whatever the database.

PostgreSQL cannot store U+0000 in text (the request failed at the write with a 422), while
SQLite stores it and every reader of the value then meets it (exports, webhooks, e-mail
headers). Checked once per API request, before authentication or any handler runs, on the
JSON body and the query string, so both engines answer the same clear 422 and write nothing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from leadflow.exceptions import ValidationFailed

# JSON can carry U+0000 only escaped; a body without this text has none (the JSON parser
# refuses a raw control character in a string).
_ESCAPED_NUL = re.compile(rb"\\u0000", re.IGNORECASE)
_JSON = re.compile(r"^application/(?:[\w.+-]+\+)?json\b", re.IGNORECASE)


def _path_with_nul(value: Any) -> list[str] | None:
    """The path to a string (key or value) of parsed JSON holding a NUL, else None.
    Iterative: a body nested as deep as the parser allows is walked without recursion."""
    todo: list[tuple[Any, list[str]]] = [(value, [])]
    while todo:
        item, path = todo.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if "\x00" in key:
                    return [*path, key.replace("\x00", "\\u0000")]
                todo.append((child, [*path, key]))
        elif isinstance(item, list):
            todo.extend((child, [*path, str(i)]) for i, child in reversed(list(enumerate(item))))
    return None


def _refuse(where: str, path: list[str]) -> ValidationFailed:
    detail = "Text may not contain the NUL character (U+0000)"
    return ValidationFailed(detail, errors=[{"loc": [where, *path], "msg": detail}])


async def refuse_nul_text(request: Request) -> None:
    """A 422 for a NUL character in the request's query values or JSON body strings."""
    if b"%00" in request.scope.get("query_string", b""):
        for key, value in request.query_params.multi_items():
            if "\x00" in key or "\x00" in value:
                raise _refuse("query", [key.replace("\x00", "\\u0000")])
    if not _JSON.match(request.headers.get("content-type", "")):
        return
    body = await request.body()  # kept by the request: the handler's parse reads it again
    if not _ESCAPED_NUL.search(body):
        return
    try:
        parsed = await request.json()
    except (ValueError, RecursionError):
        return  # not JSON (or nested beyond the parser): the body's own parsing reports it
    found = _path_with_nul(parsed)
    if found is not None:
        raise _refuse("body", found)
