"""What a file is: the product that exported it (by its header) and the date order of its date
columns (by their values). Both are decided once per file, not per row."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from leadflow.imports.headers import header_key
from leadflow.imports.parsing import DMY, MDY, NUMERIC_DATE, text

# ---- source product ------------------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    """A CRM export: when it may be the source (`eligible`) and its documented columns."""

    key: str
    name: str
    eligible: Callable[[list[str], set[str]], bool]
    # Documented export columns (folded); a tuple entry is alternatives of one column.
    columns: tuple[str | tuple[str, ...], ...]


def _any_of(*keys: str) -> Callable[[list[str], set[str]], bool]:
    wanted = frozenset(keys)
    return lambda _raw, folded: bool(wanted & folded)


def _prefixed(_raw: list[str], folded: set[str]) -> bool:
    return any(k.startswith(("person ", "organization ")) for k in folded)


def _own_export(raw: list[str], _folded: set[str]) -> bool:
    return {"first_name", "last_contacted_at", "utm_source"} <= set(raw)


PRODUCTS: tuple[Product, ...] = (
    Product(
        "leadflow",
        "Leadflow",
        _own_export,
        (
            "id",
            "created at",
            "status",
            "first name",
            "last name",
            "email",
            "phone",
            "tags",
            "source",
            "utm source",
            "utm medium",
            "utm campaign",
            "last contacted at",
        ),
    ),
    Product(
        "hubspot",
        "HubSpot",
        _any_of("lifecycle stage", "contact owner", "lebenszyklusphase", "kontaktinhaber"),
        (
            "first name",
            "last name",
            "email",
            "phone number",
            "mobile phone number",
            "company name",
            "lifecycle stage",
            "lead status",
            "contact owner",
            "create date",
            "last activity date",
        ),
    ),
    Product(
        "salesforce",
        "Salesforce",
        _any_of("firstname", "lastname", "leadsource", "mobilephone", "ownerid"),
        (
            "firstname",
            "lastname",
            "email",
            "phone",
            "mobilephone",
            "company",
            "title",
            "leadsource",
            "status",
            ("owner", "ownerid"),
        ),
    ),
    Product(
        "pipedrive",
        "Pipedrive",
        _prefixed,
        (
            "person name",
            "person email",
            "person phone",
            "organization name",
            "person label",
            "person note",
            "person owner",
        ),
    ),
    Product(
        "zoho",
        "Zoho CRM",
        _any_of("lead owner"),
        (
            "first name",
            "last name",
            "email",
            "phone",
            "mobile",
            "company",
            "lead source",
            "lead status",
            "lead owner",
        ),
    ),
    Product(
        "odoo",
        "Odoo CRM",
        _any_of("salesperson", "sales team"),
        (
            "contact name",
            "email",
            "phone",
            "mobile",
            "company name",
            "stage",
            "salesperson",
            "tags",
        ),
    ),
    Product(
        "linkedin_sales_navigator",
        "LinkedIn Sales Navigator",
        _any_of("primary email"),
        ("first name", "last name", "primary email", "title", "company"),
    ),
)


@dataclass(frozen=True)
class ProductGuess:
    """The product a file most likely comes from; `key` None when none fits."""

    key: str | None
    name: str | None
    confidence: float


def detect_product(headers: list[str]) -> ProductGuess:
    """The exporting product: the share of its documented columns the header has (0–1)."""
    folded = {header_key(h) for h in headers if h.strip()}
    best = ProductGuess(None, None, 0.0)
    for product in PRODUCTS:
        if not product.eligible(headers, folded):
            continue
        hits = sum(
            1 for col in product.columns if (set(col) if isinstance(col, tuple) else {col}) & folded
        )
        score = round(hits / len(product.columns), 2)
        if score > best.confidence:
            best = ProductGuess(product.key, product.name, score)
    return best if best.confidence >= 0.5 else ProductGuess(None, None, best.confidence)


# ---- date order ------------------------------------------------------------------------------


@dataclass
class DateEvidence:
    """What a date column's values say about their order."""

    numeric: bool = False  # some value is 11/03/2026-like
    day_first: bool = False  # some such value has a first part above 12
    month_first: bool = False  # some such value has a second part above 12
    families: list[str] = field(default_factory=list)  # formats seen, first seen first
    examples: list[str] = field(default_factory=list)  # ambiguous values, for the report

    @property
    def order(self) -> str | None:
        """DD/MM/YYYY or MM/DD/YYYY when the values decide it, else None."""
        if self.day_first != self.month_first:
            return DMY if self.day_first else MDY
        return None

    @property
    def ambiguous(self) -> bool:
        """Numeric dates whose order no value decides, or values that contradict each other."""
        return self.numeric and self.order is None

    def add(self, values: Iterable[Any]) -> None:
        """Take distinct cell values into account."""
        for value in values:
            if not isinstance(value, str):
                self._family("spreadsheet date")
                continue
            raw = text(value)
            m = NUMERIC_DATE.match(raw)
            if m is None:
                if raw[:1].isdigit():
                    self._family("YYYY-MM-DD" if raw[4:5] == "-" else "DD.MM.YYYY")
                continue
            self.numeric = True
            a, b = int(m.group(1)), int(m.group(2))
            if a > 12 >= b:
                self.day_first = True
            elif b > 12 >= a:
                self.month_first = True
            elif a != b and len(self.examples) < 3 and raw not in self.examples:
                self.examples.append(raw)

    def _family(self, name: str) -> None:
        if name not in self.families:
            self.families.append(name)

    @property
    def format(self) -> str | None:
        """The format the column is read in (None when undecided or empty)."""
        if self.numeric:
            return self.order
        return self.families[0] if self.families else None


SAMPLE_ROWS = 2000
_MAX_DISTINCT = 50_000


def _cell(row: list[Any], i: int) -> Any:
    """A date column's value in `row`, or None when empty or not a date at all (a JSON file
    may hold an object or a list there; the row fails as a bad date when it is built)."""
    value = row[i] if i < len(row) else None
    if value in (None, "") or isinstance(value, (dict, list)):
        return None
    return value


def scan_dates(
    rows: Iterator[list[Any]], columns: list[int], *, sample_rows: int | None = SAMPLE_ROWS
) -> dict[int, DateEvidence]:
    """The evidence of each date column: from the first `sample_rows` rows, and from the rest
    of the file only for columns whose order those rows left open (all rows when None)."""
    found = {i: DateEvidence() for i in columns}
    if not columns:
        return found
    # Insertion-ordered (dicts, not sets): the examples a report names are the file's first.
    seen: dict[int, dict[Any, None]] = {i: {} for i in columns}
    for n, row in enumerate(rows, 1):
        for i in columns:
            if (value := _cell(row, i)) is not None:
                seen[i][value] = None
        if sample_rows is not None and n >= sample_rows:
            break
    for i in columns:
        found[i].add(seen[i])
    open_ = [i for i in columns if found[i].numeric and found[i].order is None]
    if sample_rows is None or not open_:
        return found
    # Every value so far fits both orders: read on until one decides (or the file ends).
    rest: dict[int, dict[Any, None]] = {i: {} for i in open_}
    for row in rows:
        for i in open_:
            if (value := _cell(row, i)) is not None and value not in seen[i]:
                rest[i][value] = None
        if any(len(v) >= _MAX_DISTINCT for v in rest.values()):
            for i in open_:
                found[i].add(rest[i])
                seen[i].update(rest[i])
                rest[i] = {}
            open_ = [i for i in open_ if found[i].order is None]
            rest = {i: rest[i] for i in open_}
            if not open_:
                break
    for i in open_:
        found[i].add(rest[i])
    return found
