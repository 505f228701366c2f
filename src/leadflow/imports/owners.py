"""Owner columns: which user of the organisation an owner value names, and whether the importer
may give them the lead. Resolved once per distinct value (cached), never per row."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from leadflow.imports import errors
from leadflow.kit.normalize import fold


@dataclass(frozen=True)
class Member:
    """An active user of the organisation, as owner values may name them."""

    id: uuid.UUID
    email: str
    full_name: str


@dataclass(frozen=True)
class OwnerChoice:
    """What an owner value resolved to: the assignee (None: left to the rules) and, when it
    did not resolve, the warning code and message."""

    user: Member | None
    code: str | None = None
    message: str | None = None

    @property
    def assignee(self) -> uuid.UUID | None:
        """The user to assign, when the value named one the importer may assign."""
        return self.user.id if self.user is not None and self.code is None else None


def _name_key(name: str) -> str:
    # Case, accents and spacing do not matter: "Jörg  MÜLLER" is "jorg muller".
    return " ".join(re.sub(r"[^\w]+", " ", fold(name)).split())


class OwnerResolver:
    """Names active users by email (case-insensitive), full name (case- and accent-insensitive,
    unique matches only) or id; applies the importer's right to assign to others."""

    def __init__(
        self, members: list[Member], *, importer: uuid.UUID | None, may_assign_others: bool
    ) -> None:
        self.by_id = {m.id: m for m in members}
        self.by_email = {m.email.strip().lower(): m for m in members}
        self.by_name: dict[str, list[Member]] = {}
        for m in members:
            self.by_name.setdefault(_name_key(m.full_name), []).append(m)
        self.importer = importer
        self.may_assign_others = may_assign_others
        self._cache: dict[str, OwnerChoice] = {}

    def choose(self, raw: str) -> OwnerChoice:
        """The owner a value names (cached per distinct value)."""
        hit = self._cache.get(raw)
        if hit is not None:
            return hit
        choice = self._choose(raw)
        if len(self._cache) < 5000:
            self._cache[raw] = choice
        return choice

    def _choose(self, raw: str) -> OwnerChoice:
        value = raw.strip()
        user = self._find(value)
        if isinstance(user, OwnerChoice):
            return user
        if user.id != self.importer and not self.may_assign_others:
            return OwnerChoice(
                user,
                errors.OWNER_NOT_ALLOWED,
                f"owner {value!r}: you may not assign leads to others (leads:assign); "
                "left to the assignment rules",
            )
        return OwnerChoice(user)

    def _find(self, value: str) -> Member | OwnerChoice:
        found: Member | None = None
        if "@" in value:
            found = self.by_email.get(value.lower())
        else:
            try:
                found = self.by_id.get(uuid.UUID(value))
            except ValueError:
                same = self.by_name.get(_name_key(value), [])
                if len(same) > 1:
                    return OwnerChoice(
                        None,
                        errors.OWNER_AMBIGUOUS,
                        f"owner {value!r}: {len(same)} users have this name; "
                        "left to the assignment rules (use the email)",
                    )
                found = same[0] if same else None
        if found is None:
            return OwnerChoice(
                None,
                errors.OWNER_NOT_FOUND,
                f"owner {value!r} is not an active user of this organisation; "
                "left to the assignment rules",
            )
        return found
