"""Turning an uploaded file into header + rows: encoding, delimiter, header names, values.

Everything here streams: files are read chunk by chunk, decoded incrementally and parsed row by
row, so memory does not grow with the file. XLSX is read from a seekable file with openpyxl's
streaming (read-only) reader, after the archive passed a decompression-bomb check.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import threading
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import IO, Any, BinaryIO, ClassVar

from pydantic_core import from_json

from leadflow.imports import errors
from leadflow.imports.headers import (  # noqa: F401  (the header rules, as before here)
    IDENTITY_FIELDS,
    SYNONYMS,
    ColumnPlan,
    header_key,
    plan_columns,
)


class FileProblem(ValueError):
    """The file as a whole cannot be imported (nothing is written)."""

    # What the API answers with (the endpoint raises it with this message and `extra`).
    error: ClassVar[type[errors.InvalidFile]] = errors.InvalidFile

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


# ---- decoding --------------------------------------------------------------------------------


def detect_encoding(head: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM) or Windows-1252."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut multi-byte sequence at the very end of the sample is still UTF-8.
        if exc.start < len(head) - 3:
            return "cp1252"
    return "utf-8"


# NUL characters (legacy exports pad fields with them): PostgreSQL cannot store them in text,
# and one would refuse the whole chunk's COPY, so they are dropped from every cell and header.
_NUL = "\x00"


def decode_lines(chunks: Iterable[bytes], encoding: str | None = None) -> Iterator[str]:
    """Decoded text lines (with line ends) from byte chunks."""
    it = iter(chunks)
    head = b""
    # Look at up to 64 KiB before choosing the encoding, however small the chunks are.
    while len(head) < 65536:
        piece = next(it, None)
        if piece is None:
            break
        head += piece
    enc = encoding or detect_encoding(head[:65536])
    decoder = codecs.getincrementaldecoder(enc)(errors="replace")
    pending = ""
    for chunk in _chain(head, it):
        pending += decoder.decode(chunk)
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def sniff_delimiter(sample: str) -> str:
    """`,`, `;` or tab, from the first lines."""
    lines = [ln for ln in sample.splitlines() if ln.strip()][:20]
    if not lines:
        raise FileProblem("The file is empty")
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t").delimiter
    except csv.Error:
        counts = {d: lines[0].count(d) for d in (",", ";", "\t")}
        return max(counts, key=lambda d: counts[d])


def csv_rows(lines: Iterator[str]) -> tuple[list[str], Iterator[list[str]]]:
    """Header and row iterator of CSV text lines (delimiter detected)."""
    buffered: list[str] = []
    for line in lines:
        buffered.append(line)
        if len(buffered) >= 20:
            break
    sample = "".join(buffered)
    if not sample.strip():
        raise FileProblem("The file is empty")
    delimiter = sniff_delimiter(sample)
    reader = csv.reader(_prepend(buffered, lines), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error) as exc:
        raise FileProblem(f"The file could not be parsed as CSV: {exc}") from None
    header = [h.replace(_NUL, "").strip().lstrip("\ufeff") for h in header]
    if not any(header):
        raise FileProblem("The first line must name the columns")
    return header, _safe(reader)


def _prepend(first: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from first
    yield from rest


def _safe(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:
        raise FileProblem(f"The file could not be parsed as CSV: {exc}") from None


def json_rows(data: Any) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and rows of a JSON array of objects."""
    if not isinstance(data, list) or not data:
        raise FileProblem("Expected a non-empty array of objects")
    if not all(isinstance(r, dict) for r in data):
        raise FileProblem("Every array element must be an object")
    keys: list[str] = []
    for r in data:
        for k in r:
            if k not in keys:
                keys.append(str(k))
    header = [k.replace(_NUL, "") for k in keys]
    return header, ([r.get(k) for k in keys] for r in data)


class FileView(io.RawIOBase):
    """An independent read position over a shared seekable file (an upload's spool file).

    The pipeline opens its source several times (row count, header check, import); each view
    seeks the shared file under a lock before reading, so the views do not disturb each other.
    """

    def __init__(self, shared: IO[bytes], lock: threading.Lock) -> None:
        super().__init__()
        self._shared = shared
        self._lock = lock
        self._pos = 0
        with lock:
            self._size = shared.seek(0, io.SEEK_END)

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def tell(self) -> int:
        """The view's own position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the view's own position."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Read at the view's position."""
        view = memoryview(buffer).cast("B")
        with self._lock:
            self._shared.seek(self._pos)
            data = self._shared.read(len(view))
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def shared_file_openers(
    shared: IO[bytes], chunk_bytes: int
) -> tuple[Callable[[], Iterator[bytes]], Callable[[], BinaryIO]]:
    """Re-readable chunk iterator and file opener over one shared seekable file."""
    lock = threading.Lock()

    def open_file() -> BinaryIO:
        return io.BufferedReader(FileView(shared, lock), buffer_size=chunk_bytes)

    def chunks() -> Iterator[bytes]:
        with open_file() as fh:
            while piece := fh.read(chunk_bytes):
                yield piece

    return chunks, open_file


# A deflate stream expands at most ~1000:1; real worksheets compress 5-30:1. A big member far
# above that is a decompression bomb, whatever its declared total.
XLSX_MAX_RATIO = 100
XLSX_RATIO_MIN_BYTES = 1 << 20


class XlsxTooLarge(FileProblem):
    """The workbook would unpack to more than the configured limits."""

    error = errors.XlsxTooLarge


class DatesAmbiguous(FileProblem):
    """A date column fits day-first and month-first for every value (`columns` names it)."""

    error = errors.AmbiguousDates


def check_xlsx_archive(fh: BinaryIO, *, max_uncompressed: int) -> None:
    """Reject a workbook whose members would unpack too large, before openpyxl opens it.

    zipfile never inflates a member past its declared size, so the declared sizes bound what
    openpyxl can read.
    """
    try:
        with zipfile.ZipFile(fh) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileProblem(f"The file is not a readable XLSX workbook: {exc}") from None
    finally:
        fh.seek(0)
    total = 0
    for info in members:
        total += info.file_size
        if total > max_uncompressed:
            raise XlsxTooLarge(f"The workbook unpacks to more than {max_uncompressed} bytes")
        if info.file_size > XLSX_RATIO_MIN_BYTES and info.file_size > XLSX_MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise XlsxTooLarge(
                f"The workbook member {info.filename!r} is compressed more than "
                f"{XLSX_MAX_RATIO}:1 (a decompression bomb?)"
            )


def xlsx_rows(
    fh: BinaryIO, *, max_uncompressed: int, max_cells: int
) -> tuple[list[str], Iterator[list[Any]]]:
    """Header and rows of the first worksheet of an XLSX file, read as a stream.

    `fh` must be seekable and stay open while the rows are read. Raises `XlsxTooLarge` (while
    iterating) once more than `max_cells` cells were read; an empty row counts as one cell.
    """
    from openpyxl import load_workbook

    check_xlsx_archive(fh, max_uncompressed=max_uncompressed)
    try:
        book = load_workbook(fh, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        # The declared dimension is not trusted: a forged "A1:XFD1048576" would pad every row.
        sheet.reset_dimensions()
        cells = sheet.iter_rows(values_only=True)
    except Exception as exc:
        raise FileProblem(f"The file is not a readable XLSX workbook: {exc}") from None
    rows = _bounded_cells(book, cells, max_cells)
    try:
        header_row = next(rows, None)
    except BaseException:
        rows.close()
        raise
    if header_row is None or not any(header_row):
        rows.close()
        raise FileProblem("The first row must name the columns")
    header = ["" if h is None else str(h).strip() for h in header_row]
    return header, rows


def _bounded_cells(
    book: Any, rows: Iterator[tuple[Any, ...]], max_cells: int
) -> Generator[list[Any], None, None]:
    cells = 0
    try:
        while True:
            try:
                row = next(rows, None)
            except Exception as exc:  # malformed sheet XML, bad shared-string index, ...
                raise FileProblem(f"The worksheet could not be read: {exc}") from None
            if row is None:
                return
            cells += max(1, len(row))
            if cells > max_cells:
                raise XlsxTooLarge(f"The workbook has more than {max_cells} cells")
            yield list(row)
    finally:
        book.close()  # read-only workbooks keep the archive open until closed


# ---- values ------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_DOTTED = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})")
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# 11/03/2026, 11-03-2026: day-first or month-first, decided per column (`DateOrder`).
NUMERIC_DATE = re.compile(r"^(\d{1,2})[/-](\d{1,2})[/-](\d{4})")
DMY, MDY = "DD/MM/YYYY", "MM/DD/YYYY"
DATE_ORDERS = (DMY, MDY)


# The export quotes a value a spreadsheet would evaluate (kit.normalize.neutralize_formula);
# importing it back must restore the value, not keep the quote.
_QUOTED_FORMULA = ("'=", "'+", "'-", "'@", "'\t", "'\r")


def text(value: Any) -> str:
    """A cell as trimmed text ('' for empty), without the export's formula-guard quote."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value)
    if _NUL in out:
        out = out.replace(_NUL, "")
    if out.startswith(_QUOTED_FORMULA):
        out = out[1:]
    return out.strip()


def email_value(raw: str) -> str:
    """Lower-cased email; the plain-ASCII common case avoids the full validator."""
    value = raw.strip().lower()
    # The common case only: an address longer than SMTP allows (254 characters) goes to the
    # validator, which refuses it (the column holds 320).
    if len(value) <= 254 and _EMAIL.match(value) and ".." not in value:
        return value
    from leadflow.kit.normalize import normalize_email

    out = normalize_email(raw)
    return out or ""


_PHONE_JUNK = re.compile(r"[\s()./\-]")


def phone_value(raw: str, region: str) -> str:
    """E.164 phone number (ValueError when it cannot be one).

    Plain numbers (digits with spaces, dashes, dots, slashes or brackets) take a fast path:
    a national number gets the region's calling code, and the result must have a known calling
    code and 8–15 digits. Anything else goes through the full `phonenumbers` validation. At a
    million rows the full validation would cost more than the rest of the import together.
    """
    compact = _PHONE_JUNK.sub("", raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:] if compact.startswith("+") else compact
    if digits.isdigit():
        if compact.startswith("+"):
            e164 = compact
        elif compact.startswith("0"):
            e164 = f"+{_calling_code(region)}{digits[1:]}"
        else:
            e164 = ""
        if e164 and 8 <= len(e164) - 1 <= 15 and _known_code(e164[1:]):
            return e164
    from leadflow.kit.normalize import normalize_phone

    return normalize_phone(raw, region) or ""


@lru_cache(maxsize=64)
def _calling_code(region: str) -> int:
    import phonenumbers

    return int(phonenumbers.country_code_for_region(region.upper()))


def _known_code(digits: str) -> bool:
    one, two, three = _codes()
    return digits[:1] in one or digits[:2] in two or digits[:3] in three


@lru_cache(maxsize=1)
def _codes() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Known calling codes by length (1, 2, 3 digits)."""
    import phonenumbers

    known = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    one, two, three = (frozenset(c for c in known if len(c) == n) for n in (1, 2, 3))
    return one, two, three


def date_value(value: Any, tz: tzinfo = UTC, order: str | None = None) -> datetime | None:
    """DD.MM.YYYY, YYYY-MM-DD, DD/MM/YYYY or MM/DD/YYYY (optionally with a time, AM/PM and an
    offset) as aware UTC.

    `order` (`DD/MM/YYYY` or `MM/DD/YYYY`) reads dates with `/` or `-` between day and month;
    without it a value is read only when it decides itself (a part above 12), else ValueError.
    A value without an offset is a wall-clock time in `tz` (the organisation's zone); a
    value with one (`Z`, `+02:00`, `-0500`, `UTC`) keeps it.
    """
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            local = value if value.tzinfo else value.replace(tzinfo=tz)
            return local.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=tz).astimezone(UTC)
    except OverflowError:
        # Year 1 or 9999 moved across midnight by the zone: outside what a datetime holds.
        raise ValueError(f"date out of range: {value!r}") from None
    return _date_text(str(value).strip(), tz, order)


def day_value(value: Any, order: str | None = None) -> str | None:
    """The calendar date of a value (YYYY-MM-DD) as written, for date custom fields."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return _date_text(str(value).strip(), UTC, order, True).date().isoformat()


_TIME = re.compile(
    r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(?:\s*([ap])\.?\s?m\b\.?)?", re.IGNORECASE
)
_OFFSET = re.compile(r"^(?:(Z|UTC|GMT)|([+-])(\d{2}):?(\d{2})?)$", re.IGNORECASE)


def _ymd(raw: str, order: str | None) -> tuple[tuple[int, int, int], int] | None:
    """Year, month, day and where the date ends, or None when `raw` starts with no date."""
    m = _DOTTED.match(raw)
    if m:
        d, mo, y = (int(x) for x in m.groups())
        return (y, mo, d), m.end()
    m = _ISO.match(raw)
    if m:
        y, mo, d = (int(x) for x in m.groups())
        return (y, mo, d), m.end()
    m = NUMERIC_DATE.match(raw)
    if m:
        a, b, y = (int(x) for x in m.groups())
        if order is None:
            if a > 12 >= b:
                order = DMY
            elif b > 12 >= a:
                order = MDY
            elif a <= 12 and b <= 12 and a != b:
                raise ValueError(
                    f"ambiguous date {raw!r}: day-first or month-first? (give date_formats)"
                )
        return ((y, b, a) if order != MDY else (y, a, b)), m.end()
    return None


@lru_cache(maxsize=8192)
def _date_text(raw: str, tz: tzinfo, order: str | None, naive: bool = False) -> datetime:
    # Cached: a file repeats the same few thousand dates across a million rows.
    found = _ymd(raw, order)
    if found is None:
        raise ValueError(
            f"unrecognised date {raw!r} (use DD.MM.YYYY, YYYY-MM-DD, DD/MM/YYYY or MM/DD/YYYY)"
        )
    (y, mo, d), end = found
    rest = raw[end:].strip().lstrip("T").strip()
    hh = mm = ss = 0
    tm = _TIME.match(rest)
    if tm:
        hh, mm, ss = int(tm.group(1)), int(tm.group(2)), int(tm.group(3) or 0)
        if tm.group(4):
            if not 1 <= hh <= 12:
                raise ValueError(f"not a valid time: {raw!r}")
            hh = hh % 12 + (12 if tm.group(4).lower() == "p" else 0)
        rest = rest[tm.end() :].strip()
    zone = tz
    # Text after the time that is not an offset ("Uhr") is ignored, as it always was.
    off = _OFFSET.match(rest) if rest and not naive else None
    if off is not None:
        if off.group(1):
            zone = UTC
        else:
            delta = timedelta(hours=int(off.group(3)), minutes=int(off.group(4) or 0))
            if delta >= timedelta(hours=24):
                raise ValueError(f"not a valid offset: {raw!r}")
            zone = timezone(-delta if off.group(2) == "-" else delta)
    try:
        return datetime(y, mo, d, hh, mm, ss, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"not a valid date: {raw!r}") from None


def tags_value(raw: str) -> list[str]:
    """Tags split on `,`, `;` or `|`."""
    out: list[str] = []
    for t in re.split(r"[,;|]", raw):
        t = t.strip()
        if t and t not in out and len(t) <= 60:
            out.append(t)
    return out


def load_json(raw: bytes) -> Any:
    """Parse a JSON body (FileProblem when it is not JSON)."""
    try:
        return from_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FileProblem(f"The body is not valid JSON: {exc}") from None
