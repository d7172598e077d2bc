"""Files that appear whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PART_SUFFIX", "written_whole"]

#: Suffix of the file being written next to its destination.
PART_SUFFIX = ".part"


@contextmanager
def written_whole(path: Path) -> Iterator[Path]:
    """Yield ``PATH.part`` to write (and check); rename it onto ``path`` if the block completes.

    If the block raises, the partial file is deleted and ``path`` is left as it
    was, so a failed export or download never leaves a truncated file under
    the name the user asked for.
    """
    part = path.with_name(path.name + PART_SUFFIX)
    try:
        yield part
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)
