"""No NUL character in text, whatever the database.

PostgreSQL cannot store U+0000 in text (the request failed at the write with a 422), while
SQLite stores it and every reader of the value then meets it (exports, webhooks, e-mail
headers). The API's routers check each request's query values and JSON body strings, the
web app's routers its query values and form fields, before authentication and
the handler run, so both engines answer the same clear 422 and write nothing. Not checked
here: the import upload (its parser drops NULs from cells, as documented; its options are
refused by `imports.options.parse_options`, the wizard's too) and the seed's
`/api/process-request` (it answers in the seed's error shape and checks its payload itself
with `nul_path`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from leadflow.exceptions import ValidationFailed

DETAIL = "Text may not contain the NUL character (U+0000)"
# UTF-8 JSON can carry U+0000 only escaped (the parser refuses a raw control character in a
# string); JSON in UTF-16 or UTF-32, which the parser also reads, has NUL bytes throughout.
_ESCAPED_NUL = re.compile(rb"\\u0000", re.IGNORECASE)
_JSON = re.compile(r"^application/(?:[\w.+-]+\+)?json\b", re.IGNORECASE)

# A container being walked and how it was reached: (its parent's entry, its key) or None.
_Entry = tuple[Any, Any]


def _shown(key: object) -> str:
    """A key as an error's `loc` can carry it (NUL and lone surrogates escaped)."""
    return str(key).replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode()


def _path_to(entry: _Entry) -> list[str]:
    keys: list[str] = []
    link = entry[1]
    while link is not None:
        parent, key = link
        keys.append(_shown(key))
        link = parent[1]
    return keys[::-1]


def nul_path(value: Any) -> list[str] | None:
    """Where parsed JSON holds a NUL in a string (a key or a value): the keys and list
    indexes leading to it, else None. One pass without recursion that keeps only the
    containers still to visit, so a body nested as deep as the parser allows costs no more
    than a flat one."""
    if isinstance(value, str):
        return [] if "\x00" in value else None
    todo: list[_Entry] = [(value, None)] if isinstance(value, dict | list) else []
    while todo:
        entry = todo.pop()
        container = entry[0]
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, child in items:
            if isinstance(key, str) and "\x00" in key:
                return [*_path_to(entry), _shown(key)]
            if isinstance(child, str):
                if "\x00" in child:
                    return [*_path_to(entry), _shown(key)]
            elif isinstance(child, dict | list):
                todo.append((child, (entry, key)))
    return None


def _refuse(where: str, path: list[str]) -> ValidationFailed:
    return ValidationFailed(DETAIL, errors=[{"loc": [where, *path], "msg": DETAIL}])


def _query_nul(request: Request) -> None:
    if b"%00" in request.scope.get("query_string", b""):
        for key, value in request.query_params.multi_items():
            if "\x00" in key or "\x00" in value:
                raise _refuse("query", [_shown(key)])


async def refuse_nul_form(request: Request) -> None:
    """The web app's forms: a 422 page for a NUL in a query value or a form field, URL-encoded
    (a browser sends it as `%00`; a `%` typed in a field arrives as `%25`) or multipart (its
    text fields; files are the handler's). These routes' bodies are within the general body
    limit, so reading them before sign-in costs little; the parsed form stays with the
    request for the handler."""
    _query_nul(request)
    kind = request.headers.get("content-type", "").lower()
    if kind.startswith("application/x-www-form-urlencoded"):
        body = await request.body()
        if b"%00" in body or b"\x00" in body:
            raise ValidationFailed(DETAIL)
    elif kind.startswith("multipart/form-data"):
        for key, value in (await request.form()).multi_items():
            if isinstance(value, str) and ("\x00" in key or "\x00" in value):
                raise _refuse("form", [_shown(key)])


async def refuse_nul_upload_form(request: Request) -> None:
    """`refuse_nul_form` for the import wizard, whose uploads may be 100 MB: its multipart
    steps are not read before sign-in (the import's option parser refuses a NUL in them);
    a URL-encoded body is checked when its declared size is within the general limit."""
    _query_nul(request)
    kind = request.headers.get("content-type", "").lower()
    if not kind.startswith("application/x-www-form-urlencoded"):
        return
    size = request.headers.get("content-length", "")
    if not size.isdigit() or int(size) > request.app.state.settings.max_body_bytes:
        return
    body = await request.body()
    if b"%00" in body or b"\x00" in body:
        raise ValidationFailed(DETAIL)


async def refuse_nul_text(request: Request) -> None:
    """A 422 for a NUL character in the request's query values or JSON body strings."""
    _query_nul(request)
    if not _JSON.match(request.headers.get("content-type", "")):
        return
    body = await request.body()  # kept by the request: the handler's parse reads it again
    if not (_ESCAPED_NUL.search(body) or b"\x00" in body):
        return
    try:
        parsed = await request.json()
    except (ValueError, RecursionError):
        return  # not JSON (or nested beyond the parser): the body's own parsing reports it
    found = nul_path(parsed)
    if found is not None:
        raise _refuse("body", found)
