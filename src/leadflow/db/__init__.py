"""Database access: engine, sessions, portable types, declarative base."""

from leadflow.db.base import Base
from leadflow.db.engine import Database, get_database, session_scope

__all__ = ["Base", "Database", "get_database", "session_scope"]
