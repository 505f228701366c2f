"""Import batches: the uploaded file, progress, per-row errors and what to restore on undo."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime


class ImportBatch(IdMixin, TimestampMixin, Base):
    """One import run and its counts; `processed_rows` is the resume checkpoint."""

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_org_created", "organization_id", "created_at"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="pending")
    filename: Mapped[str | None] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(10), nullable=False, default="csv")
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    total_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    imported_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    error_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    needs_action_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    without_last_contact_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ignored_columns: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    headers: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    failure: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_async: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Fencing: a new token on every claim; a checkpoint carrying an older one is refused.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    # The importer's row scope when the file was accepted (own / team / org / nobody) and
    # their team: a background run matches and updates only the leads it allowed.
    row_scope: Mapped[str | None] = mapped_column(String(10))
    team_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ImportFileChunk(Base):
    """The uploaded file, in pieces, so any worker (on any host) can read it."""

    __tablename__ = "import_file_chunks"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("import_batches.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ImportRowError(IdMixin, Base):
    """A row that could not be imported, with the original values for errors.csv."""

    __tablename__ = "import_errors"
    __table_args__ = (Index("ix_import_errors_batch_row", "batch_id", "row"),)

    batch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("import_batches.id", ondelete="CASCADE"), nullable=False
    )
    row: Mapped[int] = mapped_column(Integer, nullable=False)
    column: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    code: Mapped[str | None] = mapped_column(String(40))
    raw: Mapped[list[Any]] = mapped_column(JSONType, nullable=False, default=list)


class ImportUpdate(Base):
    """Values a batch overwrote on an existing lead (restored by undo)."""

    __tablename__ = "import_updates"

    batch_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("import_batches.id", ondelete="CASCADE"), primary_key=True
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    before: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
