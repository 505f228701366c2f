"""Password hashing with argon2 (pwdlib), run off the event loop in a small thread pool."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

_hasher = PasswordHash((Argon2Hasher(),))
# Verified against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("leadflow-timing-equaliser")

MIN_PASSWORD_LENGTH = 10

# Argon2 is deliberately slow and memory-hungry (about 64 MiB per hash). A few threads keep a
# burst of logins from blocking the event loop without letting it take every core or all
# memory; extra hashes queue here instead. The argon2 C code releases the GIL.
HASH_THREADS = max(2, min(4, os.cpu_count() or 1))
_pool = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="leadflow-argon2")


def hash_password(password: str) -> str:
    """Argon2id hash of `password` (blocking: CLI and tests; requests use the async one)."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check `password`; with no hash, spend the same time and fail (blocking)."""
    if not password_hash:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # malformed hash in the database counts as a mismatch
        return False


async def hash_password_async(password: str) -> str:
    """`hash_password` in the hashing pool, so the event loop keeps serving requests."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_password_async(password: str, password_hash: str | None) -> bool:
    """`verify_password` in the hashing pool, so the event loop keeps serving requests."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool, verify_password, password, password_hash
    )
