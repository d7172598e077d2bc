"""The services' log lines: text or one JSON object per line, on stderr."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from corridor.logs import LogSettingError, configure_logging


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_pid_and_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging({"CORRIDOR_LOG_FORMAT": "json"})
    logging.getLogger("corridor.test").info("checkpoint of %d entries — 東北虎", 7)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("corridor.test").exception("it failed")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines()
                     if line.startswith("{"))
    assert first["message"] == "checkpoint of 7 entries — 東北虎"
    assert first["level"] == "INFO" and first["logger"] == "corridor.test"
    assert isinstance(first["pid"], int) and first["time"].endswith("+00:00")
    assert "RuntimeError: boom" in second["exception"]


def test_text_is_the_default_and_info_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging({})
    logging.getLogger("corridor.test").info("hello")
    err = capsys.readouterr().err
    assert "INFO corridor.test: hello" in err and not err.lstrip().startswith("{")


def test_configuring_twice_leaves_one_handler() -> None:
    configure_logging({})
    configure_logging({"CORRIDOR_LOG_FORMAT": "json", "CORRIDOR_LOG_LEVEL": "warning"})
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_corridor", False)]
    assert len(ours) == 1 and logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize(("environ", "named"), [
    ({"CORRIDOR_LOG_FORMAT": "xml"}, "CORRIDOR_LOG_FORMAT"),
    ({"CORRIDOR_LOG_LEVEL": "loud"}, "CORRIDOR_LOG_LEVEL"),
])
def test_unknown_settings_are_refused_by_name(environ: dict[str, str], named: str) -> None:
    with pytest.raises(LogSettingError, match=named):
        configure_logging(environ)
