"""Rows → prepared chunks: read, parsed, validated and analysed ahead of the writer.

Preparing a row is pure Python (decoding, date and phone parsing, the status and owner
matching, the local analysis); writing it is PostgreSQL's work. A large background import
prepares in a process of its own, so the two run on different cores and the writer's
process only matches duplicates and writes; smaller imports prepare in a thread, one chunk
ahead (no process to start).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from leadflow.ai import local
from leadflow.imports import parsing
from leadflow.imports.rows import (
    ImportContext,
    Source,
    build_record,
    finish_record,
    lead_context,
    open_rows,
)
from leadflow.imports.stages import StageChoice
from leadflow.kit.gc import freeze_long_lived

log = logging.getLogger("leadflow.imports")

CHUNK_ROWS = 2000
# Chunks the preparing process may run ahead of the writer: enough to never starve it, few
# enough that memory stays flat (a chunk of 2,000 rows is ~0.5 MB pickled, a few MB unpickled).
AHEAD_CHUNKS = 3
# The preparing process's niceness increment (0–19; higher yields the CPU more readily).
PREPARE_NICE = 10
# The pipe's read buffer: reading pauses once about twice this is waiting, so the process
# blocks instead of running further ahead (a larger frame is still read whole).
_PIPE_LIMIT = 1 << 20
# No frame is near this; a larger length means the stream is not ours (refused, not read).
_MAX_FRAME = 1 << 30


@dataclass
class Prepared:
    """One chunk: the rows built into finished (analysed) records, and the failed ones."""

    size: int
    built: list[tuple[int, dict[str, Any], list[Any]]]  # row, record, raw values
    errors: list[tuple[int, dict[str, Any], list[Any]]]


@dataclass
class _End:
    """The last message of a preparing process: how many rows, how statuses were read, and
    its peak resident memory (MB; None where /proc is not available)."""

    total_rows: int
    choices: dict[str, StageChoice] = field(default_factory=dict)
    peak_rss_mb: float | None = None


def _peak_rss_mb() -> float | None:
    # VmHWM, not getrusage: the latter counts the parent's image the child had between fork
    # and exec, so it reports the parent's size.
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


@dataclass
class _Failed:
    """The preparing process stopped on an exception (sent back to be raised again)."""

    error: BaseException
    traceback: str = ""


class ChunkReader:
    """Pulls the next CHUNK_ROWS data rows and prepares them (runs off the event loop)."""

    def __init__(
        self, ctx: ImportContext, rows: Iterator[list[Any]], *, skip: int, chunk_rows: int
    ) -> None:
        self.ctx = ctx
        self.rows = rows
        self.skip = skip  # rows a resumed batch already processed
        self.chunk_rows = chunk_rows
        self.total_rows = 0
        self.row_no = 1  # the header is line 1

    def next(self) -> Prepared | None:
        """The next chunk, or None at the end of the file."""
        chunk = Prepared(0, [], [])
        for values in self.rows:
            self.row_no += 1
            if not any(parsing.text(v) for v in values):
                continue
            self.total_rows += 1
            if self.total_rows <= self.skip:
                continue
            chunk.size += 1
            rec, err = build_record(self.ctx, values)
            if err is not None:
                chunk.errors.append((self.row_no, err, values))
            else:
                assert rec is not None
                chunk.built.append((self.row_no, rec, values))
            if chunk.size >= self.chunk_rows:
                break
        if not chunk.size:
            return None
        self._finish([rec for _, rec, _ in chunk.built])
        return chunk

    def _finish(self, records: list[dict[str, Any]]) -> None:
        ctx = self.ctx
        analyses: list[Any] = (
            local.analyze_batch([lead_context(r, ctx) for r in records], now=ctx.now)
            if ctx.options.analyze
            else [None] * len(records)
        )
        for rec, analysis in zip(records, analyses, strict=True):
            # Whether the file gave a status: an update moves an existing lead only then.
            rec["_status_given"] = bool(rec.get("raw_status"))
            finish_record(rec, analysis, ctx)


class Reader(Protocol):
    """Prepared chunks in file order."""

    total_rows: int

    async def next(self) -> Prepared | None:
        """The next chunk, or None after the last."""
        ...

    async def close(self) -> None:
        """Stop preparing (also when the import stops early) and free what it holds."""
        ...

    def stage_choices(self) -> dict[str, StageChoice]:
        """How each distinct status was read (complete after the last chunk)."""
        ...


class ThreadReader:
    """Prepares one chunk ahead in a worker thread of this process."""

    def __init__(self, ctx: ImportContext, rows: Iterator[list[Any]], *, skip: int) -> None:
        self.ctx = ctx
        self._reader = ChunkReader(ctx, rows, skip=skip, chunk_rows=CHUNK_ROWS)
        self._ahead: asyncio.Future[Prepared | None] | None = None
        self.total_rows = 0

    def _read_ahead(self) -> None:
        if self._ahead is None:
            self._ahead = asyncio.ensure_future(asyncio.to_thread(self._reader.next))

    async def next(self) -> Prepared | None:
        """The next chunk; the one after it starts preparing at once."""
        self._read_ahead()
        assert self._ahead is not None
        chunk = await self._ahead
        self._ahead = None
        self.total_rows = self._reader.total_rows
        if chunk is not None:
            self._read_ahead()
        return chunk

    async def close(self) -> None:
        """Let a running preparation finish before the caller tears down what it reads."""
        if self._ahead is not None and not self._ahead.done():
            await asyncio.gather(self._ahead, return_exceptions=True)
        self._ahead = None

    def stage_choices(self) -> dict[str, StageChoice]:
        """The resolver of this process read every status."""
        return self.ctx.resolver.choices()


_LENGTH = struct.Struct("!Q")


def _write(out: BinaryIO, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)))
    out.write(data)
    out.flush()


def child_main() -> None:
    """The preparing process: reads its job from stdin, writes every prepared chunk to the
    pipe that was its stdout, then an `_End` (or a `_Failed`)."""
    # The parent stops this process when the import stops; a Ctrl-C or a service manager's
    # SIGTERM to the whole group must not cut the import short under a worker that finishes
    # its running jobs.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # It runs chunks ahead and needs only spare time: where cores are few, the writer and
    # PostgreSQL (which waits for the writer within each chunk) go first.
    with contextlib.suppress(OSError):
        os.nice(PREPARE_NICE)
    # The frames travel on what was fd 1; anything else that writes to stdout (a library's
    # print) goes to stderr instead of into the frames.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    job = pickle.load(sys.stdin.buffer)  # noqa: S301 (from the parent, over a private pipe)
    ctx: ImportContext = job["ctx"]
    freeze_long_lived()  # the modules and the job: the process lives for one import
    # Here, not at the top: batches imports the pipeline, which imports this module.
    from leadflow.imports.batches import file_chunks

    file = Path(job["path"])
    source = Source(
        fmt=job["fmt"],
        chunks=file_chunks(file),
        filename=job["filename"],
        open_file=lambda: file.open("rb"),
        path=file,
    )
    try:
        _, rows = open_rows(source, ctx.settings)
        reader = ChunkReader(ctx, rows, skip=job["skip"], chunk_rows=job["chunk_rows"])
        while (chunk := reader.next()) is not None:
            _write(out, chunk)
        _write(out, _End(reader.total_rows, ctx.resolver.choices(), _peak_rss_mb()))
    except BrokenPipeError:
        return  # the writer stopped reading: the import ended early
    except Exception as exc:
        _write(out, _Failed(_sendable(exc), traceback.format_exc()))


def _sendable(exc: BaseException) -> BaseException:
    """`exc` if it survives the trip to the parent (pickled and unpickled), else its text."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own object)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


class PreparingProcessDied(OSError):
    """The preparing process ended without a word (killed): the batch stays for resume."""


class _RemoteTraceback(Exception):
    """The traceback of an exception raised in the preparing process (its `__cause__`)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ProcessReader:
    """Prepares chunks in a separate process, up to AHEAD_CHUNKS ahead of the writer.

    A child interpreter reads the file itself and sends
    pickled chunks over a pipe; a task of this process receives them into a bounded queue.
    """

    def __init__(self, ctx: ImportContext, source: Source, path: Path, *, skip: int) -> None:
        # The context travels pickled; the keys of in-file duplicates stay with the writer.
        self._job = {
            "ctx": dataclasses.replace(ctx, seen=set(), seen_before=set()),
            "fmt": source.fmt,
            "path": str(path),
            "filename": source.filename,
            "skip": skip,
            "chunk_rows": CHUNK_ROWS,
        }
        self._proc: asyncio.subprocess.Process | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=AHEAD_CHUNKS)
        self._pump: asyncio.Task[None] | None = None
        self._choices: dict[str, StageChoice] = {}
        self._done = False
        self.total_rows = 0

    async def _start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # the working directory (a data directory) is not searched for modules
            # Not `-m`: run as __main__, the module's classes would pickle under that name.
            "-c",
            "from leadflow.imports.prepare import child_main; child_main()",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_PIPE_LIMIT,
        )
        assert self._proc.stdin is not None
        self._proc.stdin.write(pickle.dumps(self._job, protocol=pickle.HIGHEST_PROTOCOL))
        await self._proc.stdin.drain()
        self._proc.stdin.close()
        self._pump = asyncio.create_task(self._receive())

    async def _receive(self) -> None:
        try:
            await self._receive_all()
        except Exception as exc:  # handed to the writer, which raises it
            await self._queue.put(_Failed(exc))

    async def _receive_all(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        while True:
            try:
                head = await stdout.readexactly(_LENGTH.size)
                size = _LENGTH.unpack(head)[0]
                if size > _MAX_FRAME:
                    raise ValueError(f"a frame of {size} bytes from the preparing process")
                data = await stdout.readexactly(size)
            except asyncio.IncompleteReadError:
                code = await self._proc.wait()
                # Killed (out of memory, a signal) before it could say why: the batch waits
                # for resume like one whose worker died.
                failure = PreparingProcessDied(f"the import's preparing process exited ({code})")
                await self._queue.put(_Failed(failure))
                return
            message = pickle.loads(data)  # noqa: S301 (our own child, over a private pipe)
            await self._queue.put(message)
            if isinstance(message, (_End, _Failed)):
                return

    async def next(self) -> Prepared | None:
        """The next chunk the process prepared."""
        if self._done:
            return None
        if self._proc is None:
            await self._start()
        item = await self._queue.get()
        if isinstance(item, _Failed):
            self._done = True
            if item.traceback:
                raise item.error from _RemoteTraceback(item.traceback)
            raise item.error
        if isinstance(item, _End):
            self._done = True
            self.total_rows, self._choices = item.total_rows, item.choices
            if item.peak_rss_mb is not None:
                log.info(
                    "import prepared %d rows in a child process (peak RSS %.0f MB)",
                    item.total_rows,
                    item.peak_rss_mb,
                    extra={"prepare_peak_rss_mb": item.peak_rss_mb},
                )
            return None
        return item

    async def close(self) -> None:
        """Stop the process (an import that stops early leaves it mid-file)."""
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._proc is not None:
            if self._proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
            await self._proc.wait()

    def stage_choices(self) -> dict[str, StageChoice]:
        """How the process read each status (sent with its last message)."""
        return self._choices


def open_reader(
    ctx: ImportContext,
    source: Source,
    rows: Iterator[list[Any]],
    *,
    skip: int,
    in_process: bool,
) -> Reader:
    """A reader over `rows`; in a process of its own when asked and the file is on disk."""
    if in_process and source.path is not None:
        close = getattr(rows, "close", None)
        if close is not None:
            close()  # the process opens the file itself
        return ProcessReader(ctx, source, source.path, skip=skip)
    return ThreadReader(ctx, rows, skip=skip)
