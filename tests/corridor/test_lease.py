"""The lease that lets one process of several run a service's background work.

Holders are real OS processes (as gunicorn workers are), killed with SIGKILL
to show that a dead holder frees the lease however it died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corridor.lease import Lease

pytestmark = pytest.mark.storage

_HOLDER = """
import sys, time
from pathlib import Path
from corridor.lease import Lease
lease = Lease("work", Path(sys.argv[1]), sys.argv[2])
print("held" if lease.held() else "not held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def hold(started: list[subprocess.Popen[str]], directory: Path, database_url: str) -> str:
    """Start a process that tries the lease and keeps running; what it said."""
    process = subprocess.Popen([sys.executable, "-c", _HOLDER, str(directory), database_url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(process)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line, process.stderr.read() if process.stderr else ""
    return line


def test_one_process_holds_and_a_survivor_takes_over_after_kill_9(
        tmp_path: Path, database_url: str, holders: list[subprocess.Popen[str]]) -> None:
    assert hold(holders, tmp_path, database_url) == "held"
    assert hold(holders, tmp_path, database_url) == "not held"
    mine = Lease("work", tmp_path, database_url)
    assert not mine.held()
    os.kill(holders[0].pid, signal.SIGKILL)
    holders[0].wait()
    deadline = time.monotonic() + 10
    while not mine.held():  # the kernel (and PostgreSQL) free a dead holder's locks
        assert time.monotonic() < deadline, "the lease was not freed by the holder's death"
        time.sleep(0.1)
    assert mine.held(), "held stays held"
    assert (tmp_path / "run" / "work.lock").stat().st_mode & 0o777 == 0o600
    mine.release()
    assert hold(holders, tmp_path, database_url) == "held"


def test_leases_of_other_names_or_directories_do_not_collide(tmp_path: Path,
                                                               database_url: str) -> None:
    first = Lease("work", tmp_path, database_url)
    other_name = Lease("other", tmp_path, database_url)
    assert first.held() and other_name.held()
    if not database_url.startswith("postgresql"):
        other_directory = Lease("work", tmp_path / "elsewhere", database_url)
        assert other_directory.held()   # two services' directories on one machine
        other_directory.release()
    first.release()
    other_name.release()


@pytest.mark.skipif(not os.environ.get("CORRIDOR_TEST_DATABASE_URL"),
                    reason="needs PostgreSQL (CORRIDOR_TEST_DATABASE_URL)")
def test_on_postgresql_one_holder_across_directories(
        tmp_path: Path, database_url: str, holders: list[subprocess.Popen[str]]) -> None:
    # Two replicas on two machines share the database, not the directory.
    assert hold(holders, tmp_path / "a", database_url) == "held"
    assert hold(holders, tmp_path / "b", database_url) == "not held"
    os.kill(holders[0].pid, signal.SIGKILL)
    holders[0].wait()
    replica = Lease("work", tmp_path / "c", database_url)
    deadline = time.monotonic() + 10
    while not replica.held():
        assert time.monotonic() < deadline, "PostgreSQL did not free the dead holder's lock"
        time.sleep(0.1)
    replica.release()


def test_a_lock_file_that_cannot_be_made_is_no_lease(tmp_path: Path, database_url: str) -> None:
    blocked = tmp_path / "run"
    blocked.write_text("not a directory")  # mkdir of DIR/run fails
    lease = Lease("work", tmp_path, database_url)
    assert not lease.held()
    blocked.unlink()
    assert lease.held()   # the next turn can take it
    lease.release()
