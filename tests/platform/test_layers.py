"""The layering of `src/leadflow`, read from the import statements of every module (`ast`).

What may import what (docs: DESIGN.md, "Layout"): the foundation (kit, config, db, models,
exceptions) knows no domain; no domain imports the application (`leadflow.app`); row scopes
and permission errors are built in `authz` only; and no new cycle between packages appears.
Every import counts, also those inside functions or `TYPE_CHECKING` blocks: a lazy import
hides a cycle from Python, not from the design.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import leadflow

ROOT = Path(leadflow.__file__).parent
FOUNDATION = frozenset({"kit", "config", "db", "models", "exceptions"})
# Entry points that assemble everything; they may import any package.
ENTRY_POINTS = frozenset({"app", "cli", "seed", "wiring"})
# The HTTP layer: modules that hold routes (`endpoints.py`, `api_key_endpoints.py`). It sits
# above every domain: an endpoint may call any domain's service and the `auth` dependencies,
# and only entry points import it. Cycles are checked between the domains below it.


def _is_http(name: str) -> bool:
    return name.rsplit(".", 1)[-1].endswith("endpoints")


@dataclass
class Module:
    """One source module: its dotted name, top-level package and parsed tree."""

    name: str
    package: str
    path: Path
    tree: ast.Module
    imports: set[str] = field(default_factory=set)


def _packages() -> frozenset[str]:
    return frozenset(
        p.stem if p.is_file() else p.name
        for p in ROOT.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    )


@cache
def _modules() -> tuple[Module, ...]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = ["leadflow", *path.relative_to(ROOT).with_suffix("").parts]
        is_init = parts[-1] == "__init__"
        if is_init:
            parts = parts[:-1]
        if len(parts) < 2 or parts[1] == "migrations":
            continue
        module = Module(".".join(parts), parts[1], path, ast.parse(path.read_text(), str(path)))
        package_parts = parts if is_init else parts[:-1]
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Import):
                module.imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package_parts[: len(package_parts) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                module.imports.add(target)
                # `from leadflow import leads` names a package, not a symbol of leadflow.
                module.imports.update(f"{target}.{alias.name}" for alias in node.names)
        found.append(module)
    return tuple(found)


def _imported_packages(module: Module) -> set[str]:
    packages = _packages()
    out = set()
    for name in module.imports:
        parts = name.split(".")
        if parts[0] == "leadflow" and len(parts) > 1 and parts[1] in packages:
            out.add(parts[1])
    out.discard(module.package)
    return out


def _graph(*, http: bool = True) -> dict[str, set[str]]:
    """Package -> the packages its modules import (`http=False`: without the HTTP layer)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module in _modules():
        if http or not _is_http(module.name):
            edges[module.package] |= _imported_packages(module)
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _cycle_edges(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Edges u -> v where v also reaches u: exactly the edges that lie on some cycle."""
    reach = {node: _reachable(edges, node) for node in edges}
    return {(u, v) for u, targets in edges.items() for v in targets if u in reach.get(v, set())}


def test_the_import_graph_is_read() -> None:
    """Guards the reader itself: known edges are found, relative imports included."""
    edges = _graph()
    assert "leads" in edges["app"] and "db" in edges["models"]
    assert len(_modules()) > 100


def test_foundation_imports_no_domain() -> None:
    bad = sorted(
        f"{m.name} imports leadflow.{pkg}"
        for m in _modules()
        if m.package in FOUNDATION
        for pkg in _imported_packages(m) - FOUNDATION
    )
    assert not bad, "kit/config/db/models/exceptions must not import a domain:\n" + "\n".join(bad)


def test_no_domain_imports_the_app() -> None:
    bad = sorted(
        m.name
        for m in _modules()
        if m.package not in ENTRY_POINTS and "app" in _imported_packages(m)
    )
    assert not bad, f"only entry points import leadflow.app: {bad}"


def test_no_cycles_between_domains() -> None:
    """Below the HTTP layer the packages form a DAG: a dependency points one way only (a
    reaction that would point back is a subscriber to the other domain's events)."""
    graph = {
        pkg: targets - FOUNDATION - ENTRY_POINTS
        for pkg, targets in _graph(http=False).items()
        if pkg not in FOUNDATION | ENTRY_POINTS
    }
    cycles = sorted(_cycle_edges(graph))
    assert not cycles, (
        "these imports form a cycle between packages (depend on the other package's "
        f"service through an event, or move the code): {cycles}"
    )


def test_only_entry_points_import_the_http_layer() -> None:
    bad = sorted(
        f"{m.name} imports {name}"
        for m in _modules()
        if m.package not in ENTRY_POINTS and not _is_http(m.name)
        for name in m.imports
        if name.startswith("leadflow.")
        and any(_is_http(".".join(name.split(".")[:k])) for k in range(3, name.count(".") + 2))
    )
    assert not bad, "only app/cli import endpoints modules:\n" + "\n".join(bad)


def test_http_layer_is_recognised() -> None:
    """Guards `_is_http`: route modules are found, services are not."""
    names = {m.name for m in _modules() if _is_http(m.name)}
    assert {"leadflow.leads.endpoints", "leadflow.auth.api_key_endpoints"} <= names
    assert "leadflow.leads.service" not in names and len(names) >= 15


def test_cycle_detection_finds_a_new_cycle() -> None:
    """The check above can fail: a made-up back edge is reported, a one-way edge is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}
    assert _cycle_edges(graph) == set()
    graph["c"].add("a")
    assert _cycle_edges(graph) == {("a", "b"), ("b", "c"), ("c", "a")}


def _functions(module: Module) -> list[str]:
    return [
        node.name
        for node in ast.walk(module.tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def test_row_scopes_are_built_in_authz_only() -> None:
    """Repositories combine authz's scope clauses with their filters; they build none."""
    bad = []
    for m in _modules():
        if m.package == "authz":
            continue
        bad += [
            f"{m.name}.{name}"
            for name in _functions(m)
            if name.endswith(("scope_conditions", "scope_clause"))
        ]
        bad += [
            f"{m.name} imports {name}"
            for name in m.imports
            if name.endswith("scope_conditions") and not name.startswith("leadflow.authz.")
        ]
    assert not bad, bad


def _names_missing_permission(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "Missing permission" in node.value or node.value == "missing_permission"
    if isinstance(node, ast.Name):
        return node.id == "MissingPermission"
    if isinstance(node, ast.Attribute):
        return node.attr == "MissingPermission"
    return isinstance(node, ast.alias) and node.name == "MissingPermission"


def test_permission_errors_come_from_actor_require() -> None:
    """`Actor.require` is the one place a "Missing permission" error is raised (its class and
    code are defined in `authz.errors`)."""
    allowed = {"leadflow.authz.actor", "leadflow.authz.errors"}
    bad = sorted(
        f"{m.name}:{getattr(node, 'lineno', '?')}"
        for m in _modules()
        if m.name not in allowed
        for node in ast.walk(m.tree)
        if _names_missing_permission(node)
    )
    assert not bad, f"use actor.require(permission) instead: {bad}"


def _is_dialect_test(node: ast.AST) -> bool:
    """`x == "postgresql"`, `x.dialect.name != "sqlite"`, `match` on a dialect name…"""
    if isinstance(node, ast.Attribute) and node.attr == "name":
        inner = node.value
        return isinstance(inner, ast.Attribute) and inner.attr == "dialect"
    if isinstance(node, ast.Compare):
        sides = [node.left, *node.comparators]
        return any(isinstance(n, ast.Constant) and n.value in _DIALECTS for n in sides)
    if isinstance(node, ast.MatchValue):
        value = node.value
        return isinstance(value, ast.Constant) and value.value in _DIALECTS
    return False


_DIALECTS = ("postgresql", "sqlite")


def test_dialect_differences_live_in_db() -> None:
    """Domain code asks `leadflow.db.dialect` instead of testing the dialect itself."""
    bad = sorted(
        f"{m.name}:{getattr(node, 'lineno', '?')}"
        for m in _modules()
        if m.package != "db"
        for node in ast.walk(m.tree)
        if _is_dialect_test(node)
    )
    assert not bad, f"use leadflow.db.dialect instead: {bad}"


# Who may write the `leads` table: the leads service (the one door), SLA for its own clock
# columns (as a subscriber of the lead events), and the demo seed.
LEAD_WRITERS = frozenset({"leads", "sla", "seed"})


def _lead_writes(module: Module) -> list[int]:
    """Lines that build a `Lead(...)` or an `insert(Lead)` / `update(Lead)` statement."""
    lines = []
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name == "Lead" or (
            name in ("insert", "update")
            and any(isinstance(a, ast.Name) and a.id == "Lead" for a in node.args)
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_leads_service_writes_leads() -> None:
    bad = sorted(
        f"{m.name}:{line}"
        for m in _modules()
        if m.package not in LEAD_WRITERS
        for line in _lead_writes(m)
    )
    assert not bad, f"write leads through leads.service / leads.bulk: {bad}"


def test_lead_writes_are_found() -> None:
    """Guards the check above: the leads service's own writes are seen."""
    found = {m.name for m in _modules() if _lead_writes(m)}
    assert {"leadflow.leads.service", "leadflow.leads.repository"} <= found
