"""The error codes clients see form one catalogue (docs: api.md, "Error codes").

Each code has a name: a `LeadflowError` subclass per code, or an upper-case constant for a code
that is not an exception (an import's row errors, the warnings of an answer, the codes kit's
handlers set), both in the owning package's `errors.py` (the generic classes in
`leadflow.exceptions`). Call sites raise or pass those names, never a string literal; every
code is listed in docs/api.md, and no two unrelated classes share a code.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

import leadflow.app  # noqa: F401  (imports every module that defines an error class)
from leadflow.exceptions import Conflict, LeadflowError
from tests.platform.test_layers import ROOT, _modules

API_DOC = ROOT.parents[1] / "docs" / "api.md"
GENERIC = "leadflow.exceptions"


def _is_catalogue(module: str) -> bool:
    return module == GENERIC or module.rsplit(".", 1)[-1] == "errors"


def _text(node: ast.AST | None) -> str | None:
    """The string a node is a literal of, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _class_codes(node: ast.ClassDef) -> Iterator[tuple[int, str]]:
    """Line and value of each `code = "…"` in a class body."""
    targets: list[ast.expr]
    value: ast.expr | None
    for stmt in node.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        else:
            continue
        code = _text(value)
        if code is not None and any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
            yield stmt.lineno, code


def _literal_codes(tree: ast.Module, *, catalogue: bool) -> Iterator[str]:
    """Where a code is written as a string literal: a `code="…"` argument (anywhere), and
    outside the catalogue modules a `{"code": "…"}` entry or a class-level `code = "…"`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "code" and (code := _text(kw.value)) is not None:
                    yield f"{node.lineno}: code={code!r}"
        elif isinstance(node, ast.Dict) and not catalogue:
            for key, value in zip(node.keys, node.values, strict=True):
                if _text(key) == "code" and (code := _text(value)) is not None:
                    yield f"{node.lineno}: {{'code': {code!r}}}"
        elif isinstance(node, ast.ClassDef) and not catalogue:
            for lineno, code in _class_codes(node):
                yield f"{lineno}: class {node.name}: code = {code!r}"


def _constants(tree: ast.Module) -> Iterator[tuple[str, str]]:
    """Module-level `NAME = "code"` assignments (upper-case names)."""
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            continue
        target, code = stmt.targets[0], _text(stmt.value)
        if isinstance(target, ast.Name) and target.id.isupper() and code is not None:
            yield target.id, code


def _error_classes() -> list[type[LeadflowError]]:
    found: list[type[LeadflowError]] = []
    todo: list[type[LeadflowError]] = [LeadflowError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("leadflow."):
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _code_constants() -> dict[str, str]:
    """`module.NAME` -> code of every constant in a catalogue module."""
    return {
        f"{m.name}.{name}": value
        for m in _modules()
        if _is_catalogue(m.name)
        for name, value in _constants(m.tree)
    }


def _catalogue(markdown: str) -> set[tuple[str, str]]:
    """(code, HTTP status cell) of every table row under the "## Error codes" heading."""
    section = re.search(r"^## Error codes\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    if section is None:
        return set()
    rows = set()
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        code = re.fullmatch(r"`([a-z0-9_]+)`", cells[0]) if len(cells) >= 3 else None
        if code:
            rows.add((code.group(1), cells[1]))
    return rows


def _shared_codes(classes: Iterable[type[LeadflowError]]) -> list[str]:
    """Codes held by two classes of which neither subclasses the other."""
    by_code: dict[str, list[type[LeadflowError]]] = defaultdict(list)
    for cls in classes:
        by_code[cls.code].append(cls)
    return sorted(
        f"{code}: {a.__qualname__} and {b.__qualname__}"
        for code, group in by_code.items()
        for i, a in enumerate(group)
        for b in group[i + 1 :]
        if not (issubclass(a, b) or issubclass(b, a))
    )


def test_no_literal_codes_at_call_sites() -> None:
    bad = sorted(
        f"{m.name}:{where}"
        for m in _modules()
        for where in _literal_codes(m.tree, catalogue=_is_catalogue(m.name))
    )
    assert not bad, (
        "name the code in the package's errors.py (an error class, or a constant for a code "
        "that is not an exception) and use that name:\n" + "\n".join(bad)
    )


def test_every_error_class_is_listed_with_its_status() -> None:
    rows = _catalogue(API_DOC.read_text())
    classes = _error_classes()
    assert len(classes) > 50 and len(rows) > 50  # the walk and the reader found the catalogue
    missing = sorted(
        f"{cls.__module__}.{cls.__qualname__}: `{cls.code}` | {cls.status}"
        for cls in classes
        if (cls.code, str(cls.status)) not in rows
    )
    assert not missing, "add to docs/api.md, Error codes:\n" + "\n".join(missing)


def test_every_code_constant_is_listed() -> None:
    documented = {code for code, _ in _catalogue(API_DOC.read_text())}
    constants = _code_constants()
    assert "leadflow.imports.errors.INVALID_VALUE" in constants
    missing = sorted(
        f"{name} = {code!r}" for name, code in constants.items() if code not in documented
    )
    assert not missing, "add to docs/api.md, Error codes:\n" + "\n".join(missing)


def test_the_catalogue_lists_no_unknown_code() -> None:
    """A row whose code nothing defines any more is stale."""
    known = {cls.code for cls in _error_classes()} | set(_code_constants().values())
    stale = sorted(code for code, _ in _catalogue(API_DOC.read_text()) if code not in known)
    assert not stale, f"docs/api.md lists codes the code base does not define: {stale}"


def test_codes_are_unique_per_class() -> None:
    shared = _shared_codes(_error_classes())
    assert not shared, "two unrelated error classes share a code:\n" + "\n".join(shared)


def test_error_classes_say_when_they_are_raised() -> None:
    bare = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _error_classes()
        if _is_catalogue(cls.__module__) and not (cls.__doc__ or "").strip()
    )
    assert not bare, f"give these a one-line docstring: {bare}"


def test_the_checks_can_fail() -> None:
    """Guards the helpers: each finds a made-up violation and passes the named form."""
    source = ast.parse(
        "raise Conflict('x', code='dup')\n"
        "row = {'row': 1, 'code': 'bad_row'}\n"
        "class Dup(Conflict):\n    code = 'dup'\n"
        "raise DuplicateLead('x')\n"
        "row = {'code': BAD_ROW}\n"
        "class Named(Conflict):\n    code = DUP\n"
    )
    assert len(list(_literal_codes(source, catalogue=False))) == 3
    assert len(list(_literal_codes(source, catalogue=True))) == 1  # the call, even in errors.py
    assert list(_constants(ast.parse("BAD_ROW = 'bad_row'\nlower = 'x'\nN = 1\n"))) == [
        ("BAD_ROW", "bad_row")
    ]

    class Dup(Conflict):
        code = "dup"

    class Again(Conflict):
        code = "dup"

    class Narrower(Dup):
        """Same code, narrower class: allowed."""

    assert _shared_codes([Dup, Narrower]) == []
    shared = _shared_codes([Dup, Again, Narrower])
    assert len(shared) == 2 and all(s.startswith("dup: ") for s in shared)  # Again vs both

    doc = (
        "## Error codes\n\n| code | HTTP status | when |\n| --- | --- | --- |\n"
        "| `dup` | 409 | twice |\n\n## Next\n\n| `later` | 400 | not in the section |\n"
    )
    assert _catalogue(doc) == {("dup", "409")}
    assert _catalogue("## Other\n| `dup` | 409 | x |\n") == set()
