"""An uploaded file as an import `Source` (the API's import endpoints and the web wizard)."""

from __future__ import annotations

from typing import IO, Literal

from leadflow.imports import parsing
from leadflow.imports.batches import FILE_CHUNK_BYTES
from leadflow.imports.rows import Source


def file_source(
    fmt: Literal["csv", "xlsx"], spool: IO[bytes], filename: str | None = None
) -> Source:
    """A re-readable source over a spooled upload (several readers share the file)."""
    chunks, open_file = parsing.shared_file_openers(spool, FILE_CHUNK_BYTES)
    return Source(fmt=fmt, chunks=chunks, filename=filename, open_file=open_file)


def upload_format(filename: str | None, content_type: str | None) -> Literal["csv", "xlsx"]:
    """XLSX by name or content type, else CSV (as a form upload of the API is read)."""
    name = (filename or "").lower()
    if name.endswith(".xlsx") or "spreadsheetml" in (content_type or ""):
        return "xlsx"
    return "csv"
