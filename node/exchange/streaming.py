"""Turn a writer that pushes bytes into an iterator a WSGI server can pull (memory bounded).

The package writer writes into a file-like object; an HTTP response wants an
iterator. :func:`pipe` runs the writer in a thread that hands chunks over a
bounded queue, so at most ``depth`` chunks are in memory whatever the size of
the package. If the writer fails, the iterator raises: the server drops the
connection and the client sees a truncated download, which ``verify``
refuses (fail closed: nothing half-written ever looks complete).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Generator
from typing import BinaryIO, cast

from corridor.errors import CorridorError

log = logging.getLogger(__name__)

CHUNK = 64 * 1024


class _QueueWriter:
    """A write-only file object that batches bytes into chunks on a queue."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None],
                 cancelled: threading.Event) -> None:
        self.chunks = chunks
        self.cancelled = cancelled
        self.buffer = bytearray()

    def write(self, data: bytes, /) -> int:
        if self.cancelled.is_set():
            raise BrokenPipeError("the client went away")
        self.buffer += data
        if len(self.buffer) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self._put(bytes(self.buffer))
            self.buffer.clear()

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self.cancelled.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise BrokenPipeError("the client went away")


class StreamFailed(CorridorError):
    """The writer failed after the response had started."""

    title = "Stream failed"


def pipe(write: Callable[[BinaryIO], object], *, depth: int = 8
         ) -> Generator[bytes, None, None]:
    """Run ``write(fileobj)`` in a thread and yield what it writes, chunk by chunk."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
    cancelled = threading.Event()
    writer = _QueueWriter(chunks, cancelled)

    def run() -> None:
        try:
            write(cast(BinaryIO, writer))
            writer.flush()
            writer._put(None)
        except BrokenPipeError:
            pass
        except BaseException as e:  # handed to the reader, which raises it
            log.exception("streamed response failed")
            with contextlib.suppress(BrokenPipeError):
                writer._put(e)

    thread = threading.Thread(target=run, name="corridor-stream", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise StreamFailed("the package could not be completed") from item
            yield item
    finally:
        cancelled.set()
