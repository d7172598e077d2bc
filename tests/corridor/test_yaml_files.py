"""YAML files people write: a syntax error says where, and what to change, in plain words."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.yaml_files import YamlFileError, read_yaml_file


@pytest.mark.parametrize(("text", "where", "advice"), [
    ("tiers:\n  generalized:\n    default_precision: 0.1\n   coarsen_time: day\n",
     "line 4, column 4", "not indented like the lines above it"),
    ("tiers:\n\tgeneralized: {}\n", "line 2, column 1", "a tab: indent with spaces only"),
    ("purposes: [research\npartners: ['*']\n", "line 2, column 9", "a list in [ ] is not closed"),
    ("purpose: note: this\n", "line 1, column 14", "put text that contains ': ' in quotes"),
    ("reason: 'unfinished\n", "line 2, column 1", "a quote is not closed"),
])
def test_a_syntax_error_names_the_line_and_says_what_to_change(
        tmp_path: Path, text: str, where: str, advice: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(YamlFileError) as error:
        read_yaml_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}, {where}: not valid YAML: "), message
    assert advice in message and "<block" not in message and "<unicode string>" not in message
    column = int(where.rsplit(" ", 1)[1])
    assert message.splitlines()[-1] == "    " + " " * (column - 1) + "^"


def test_unreadable_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(YamlFileError, match="cannot read it"):
        read_yaml_file(tmp_path / "missing.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("reason: été\n".encode("latin-1"))
    with pytest.raises(YamlFileError, match="not UTF-8 text"):
        read_yaml_file(latin)
    good = tmp_path / "good.json"
    good.write_text('{"tiers": {"aggregate": {"aggregate_only": true}}}')
    assert read_yaml_file(good) == {"tiers": {"aggregate": {"aggregate_only": True}}}
