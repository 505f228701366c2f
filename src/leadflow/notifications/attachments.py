"""Files attached to queued emails, stored by reference.

An outbox email carries `attachments: [{filename, content_type, source, ref}]`, not the bytes:
the file stays where its owner keeps it (and is pruned on that owner's retention), and the
outbox payload stays small. The owning domain registers a loader per `source`; delivery loads
each file when it sends. A file that is gone by then fails the email for good.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.notifications.email import Attachment

# (session, ref) -> the file's bytes, or None when it no longer exists.
Loader = Callable[[AsyncSession, str], Awaitable[bytes | None]]
_LOADERS: dict[str, Loader] = {}


class AttachmentMissing(Exception):
    """An attachment cannot be loaded (unknown source, or the file is gone); not retried."""

    permanent = True


@dataclass(frozen=True)
class AttachmentRef:
    """Where delivery finds an attachment: a `source` with a registered loader, and its `ref`."""

    filename: str
    content_type: str
    source: str
    ref: str

    def payload(self) -> dict[str, str]:
        """The JSON form stored in the outbox payload."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "source": self.source,
            "ref": self.ref,
        }


def register_loader(source: str, loader: Loader) -> None:
    """Load attachments of `source` with `loader` at delivery time."""
    _LOADERS[source] = loader


async def load(session: AsyncSession, specs: list[Mapping[str, Any]]) -> tuple[Attachment, ...]:
    """The attachments described in an outbox payload, read now; AttachmentMissing if any
    cannot be read."""
    out = []
    for spec in specs:
        loader = _LOADERS.get(str(spec.get("source")))
        if loader is None:
            raise AttachmentMissing(f"no loader for attachment source {spec.get('source')!r}")
        data = await loader(session, str(spec["ref"]))
        if data is None:
            raise AttachmentMissing(f"attachment {spec['filename']!r} is no longer stored")
        out.append(Attachment(str(spec["filename"]), str(spec["content_type"]), data))
    return tuple(out)
