"""A file written through ``written_whole`` appears complete or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.files import written_whole


def test_a_completed_write_lands_under_the_name_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "package.zip"
    with written_whole(out) as part:
        assert part.name == "package.zip.part"
        part.write_bytes(b"whole")
        assert not out.exists()
    assert out.read_bytes() == b"whole"
    assert not part.exists()


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path: Path) -> None:
    out = tmp_path / "package.zip"
    out.write_bytes(b"previous season")
    with pytest.raises(RuntimeError, match="connection lost"), written_whole(out) as part:
        part.write_bytes(b"trunc")
        raise RuntimeError("connection lost")
    assert out.read_bytes() == b"previous season"
    assert list(tmp_path.iterdir()) == [out]
