"""A report's rows as a CSV, XLSX or PDF file in a local temporary file.

CSV and XLSX are written batch by batch (XlsxWriter in constant-memory mode), so memory stays
flat at any size. Text cells that a spreadsheet would evaluate (`= + - @`, tab, CR) get a
leading `'`, as in the lead export. The PDF holds a title, a bar chart and the table (at most
`report_pdf_max_rows` rows; the rest are counted and named in a note).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xlsxwriter
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from leadflow.kit.normalize import neutralize_formula
from leadflow.reports.builder import OutputColumn, jsonable

CONTENT_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
Batches = AsyncIterator[Sequence[Sequence[Any]]]
_CHART_BARS = 20
_CELL_CHARS = 60


@dataclass(frozen=True)
class Written:
    """The file and how many report rows it holds."""

    path: Path
    row_count: int


def cell_text(value: Any, column: OutputColumn) -> str:
    """A value as a formula-safe text cell."""
    shown = jsonable(value, column)
    if shown is None:
        return ""
    if isinstance(shown, bool):
        return "true" if shown else "false"
    if column.type == "number":
        return str(shown)
    return neutralize_formula(str(shown))


def _temp(suffix: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="leadflow-report-", suffix=suffix)
    os.close(fd)
    return Path(name)


async def write_csv(columns: Sequence[OutputColumn], batches: Batches) -> Written:
    """CSV with a header of column labels."""
    path = _temp(".csv")
    rows = 0
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralize_formula(c.label) for c in columns])
    with path.open("w", encoding="utf-8", newline="") as fh:
        async for batch in batches:
            writer.writerows(
                [cell_text(v, c) for v, c in zip(row, columns, strict=True)] for row in batch
            )
            rows += len(batch)
            fh.write(buf.getvalue())
            buf.seek(0)
            buf.truncate()
        fh.write(buf.getvalue())
    return Written(path, rows)


def sheet_name(title: str) -> str:
    """An XLSX sheet name for `title`: at most 31 characters, none of []:*?/\\, and not
    beginning or ending with an apostrophe (Excel and xlsxwriter reject those); "Report"
    when nothing is left."""
    kept = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31]
    return kept.strip("'") or "Report"


async def write_xlsx(columns: Sequence[OutputColumn], batches: Batches, title: str) -> Written:
    """XLSX, one sheet; numbers as numbers, everything else as formula-safe text."""
    path = _temp(".xlsx")
    book = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheet = book.add_worksheet(sheet_name(title))
    bold = book.add_format({"bold": True})
    for col, c in enumerate(columns):
        sheet.write_string(0, col, neutralize_formula(c.label), bold)

    def write(batch: Sequence[Sequence[Any]], first: int) -> None:
        for row, values in enumerate(batch, start=first):
            for col, (value, c) in enumerate(zip(values, columns, strict=True)):
                shown = jsonable(value, c)
                if c.type == "number" and isinstance(shown, int | float):
                    sheet.write_number(row, col, shown)
                else:
                    sheet.write_string(row, col, cell_text(value, c))

    # Formatting and zipping are CPU work: in a thread, so the event loop keeps serving.
    row = 1
    async for batch in batches:
        await asyncio.to_thread(write, batch, row)
        row += len(batch)
    await asyncio.to_thread(book.close)
    return Written(path, row - 1)


def _chart(
    columns: Sequence[OutputColumn], rows: list[list[str]], raw: list[Sequence[Any]]
) -> Drawing | None:
    """A bar chart: the first number column over the first other column (the first rows as
    sorted); without a number column, the rows per value of the first column."""
    if not rows:
        return None
    numeric = next((i for i, c in enumerate(columns) if c.type == "number"), None)
    label_at = next((i for i, c in enumerate(columns) if c.type != "number"), None)
    if numeric is not None:
        pairs = []
        for r, values in zip(rows, raw, strict=True):
            value = jsonable(values[numeric], columns[numeric])
            pairs.append((r[label_at] if label_at is not None else "", float(value or 0)))
        pairs = pairs[:_CHART_BARS]
        caption = columns[numeric].label + (
            f" by {columns[label_at].label}" if label_at is not None else ""
        )
    else:
        counts = Counter(r[0] for r in rows)
        pairs = [(k, float(v)) for k, v in counts.most_common(_CHART_BARS)]
        caption = f"Rows by {columns[0].label}"
    width, height = 170 * mm, 70 * mm
    drawing = Drawing(width, height + 12)
    chart = VerticalBarChart()
    chart.x, chart.y = 30, 30
    chart.width, chart.height = width - 40, height - 40
    chart.data = [[v for _, v in pairs]]
    chart.categoryAxis.categoryNames = [(k or "(empty)")[:14] for k, _ in pairs]
    chart.categoryAxis.labels.angle = 30 if len(pairs) > 6 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(pairs) > 6 else "n"
    chart.categoryAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = min(0.0, *(v for _, v in pairs))
    chart.valueAxis.labels.fontSize = 7
    chart.bars[0].fillColor = colors.HexColor("#2563eb")
    drawing.add(chart)
    drawing.add(String(30, height + 2, f"Chart: {caption}", fontName="Helvetica-Bold", fontSize=9))
    return drawing


async def write_pdf(
    columns: Sequence[OutputColumn],
    batches: Batches,
    *,
    title: str,
    subtitle: str,
    max_rows: int,
    total: int,
) -> Written:
    """PDF: title, a bar chart and the table of the first `max_rows` rows of `batches` (the
    caller reads no more than those); `total` is the report's row count, named in a note
    when the table shows fewer."""
    path = _temp(".pdf")
    shown: list[list[str]] = []
    raw: list[Sequence[Any]] = []
    async for batch in batches:
        for values in batch:
            if len(shown) < max_rows:
                raw.append(values)
                shown.append(
                    [cell_text(v, c)[:_CELL_CHARS] for v, c in zip(values, columns, strict=True)]
                )
    styles = getSampleStyleSheet()
    page = landscape(A4) if len(columns) > 5 else A4
    doc = SimpleDocTemplate(
        str(path),
        pagesize=page,
        title=title,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
    )
    story: list[Any] = [
        Paragraph(_escape(title), styles["Title"]),
        Paragraph(_escape(subtitle), styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    chart = _chart(columns, shown, raw)
    if chart is not None:
        story += [chart, Spacer(1, 6 * mm)]
    table = LongTable([[c.label for c in columns], *shown], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e5e7eb")),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9ca3af")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    if not shown:
        story.append(Paragraph("No rows.", styles["Normal"]))
    if total > len(shown):
        story.append(Spacer(1, 4 * mm))
        story.append(
            Paragraph(
                f"Showing the first {len(shown):,} of {total:,} rows; "
                "export as CSV or XLSX for all of them.",
                styles["Italic"],
            )
        )
    # Layout of a long table takes seconds: in a thread, so the event loop keeps serving.
    await asyncio.to_thread(doc.build, story)
    return Written(path, total)


def _escape(text: str) -> str:
    # Paragraph parses a little markup; the report's name is plain text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
