"""Errors of lead imports, and the codes of rows an import reports as failed."""

from __future__ import annotations

from leadflow.exceptions import BadRequest, Conflict, LeadflowError
from leadflow.kit.errors import UNSUPPORTED_MEDIA_TYPE

# Row-error codes (`{row, column, value, message, code}` in an import's report).
INVALID_VALUE = "invalid_value"
DUPLICATE_OUT_OF_SCOPE = "duplicate_out_of_scope"
# The row passed the checks, but the database refused to store one of its values.
REFUSED_BY_DATABASE = "refused_by_database"


class InvalidFile(LeadflowError):
    """The uploaded file cannot be imported at all (nothing is written)."""

    status = 422
    code = "invalid_file"
    title = "The file cannot be imported"


class XlsxTooLarge(InvalidFile):
    """The workbook would unpack to more than the configured limits."""

    code = "xlsx_too_large"


class UnsupportedMediaType(BadRequest):
    """The import body's content type is not CSV, JSON, XLSX or a form."""

    code = UNSUPPORTED_MEDIA_TYPE


class ImportNotFinished(Conflict):
    """An import that has not finished (pending or running) would be undone."""

    code = "import_not_finished"


class RowsRefused(InvalidFile):
    """The database refused more rows of one chunk than an import reports one by one."""

    code = "rows_refused"
    title = "The database refused the file's rows"


class AmbiguousDates(InvalidFile):
    """A date column reads as day-first and as month-first for every value of the file."""

    code = "ambiguous_dates"


# Warning codes (`warnings` of an import and its preview: the row was imported).
OWNER_NOT_FOUND = "owner_not_found"
OWNER_AMBIGUOUS = "owner_ambiguous"
OWNER_NOT_ALLOWED = "owner_not_allowed"
STAGE_FALLBACK = "stage_fallback"
OWNER_ID_COLUMN = "owner_id_column"
