"""Reading the YAML files people write (policies, narrowed terms, mappings).

A syntax error names the file, line and column, quotes the line, and says
in plain words what is wrong instead of the parser's own account ("expected
<block end>, but found '<block mapping start>'").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from corridor.errors import BadRequest

__all__ = ["YamlFileError", "read_yaml_file"]

#: The parser's wording -> what to tell a person (first match wins).
_PLAIN = (
    ("found character '\\t'", "a tab: indent with spaces only"),
    ("expected <block end>", "this line is not indented like the lines above it: keys of "
                             "one level must start in the same column"),
    ("mapping values are not allowed", "a ':' where a value was expected: put text that "
                                       "contains ': ' in quotes"),
    ("could not find expected ':'", "a key without its ':' (or a line that should be "
                                    "part of the one above)"),
    ("expected ',' or ']'", "a list in [ ] is not closed, or its items are not separated "
                            "by commas"),
    ("expected ',' or '}'", "a mapping in { } is not closed, or its items are not "
                            "separated by commas"),
    ("found unexpected end of stream", "a quote is not closed"),
    ("while scanning a quoted scalar", "a quote is not closed"),
)


class YamlFileError(BadRequest, ValueError):
    """A YAML file cannot be read or parsed; the message says where and why."""


def _explain(error: yaml.YAMLError, text: str, path: Path) -> str:
    mark = getattr(error, "problem_mark", None)
    said = " ".join(str(getattr(error, part, "") or "") for part in ("context", "problem"))
    plain = next((advice for wording, advice in _PLAIN if wording in said), None)
    reason = plain or str(getattr(error, "problem", None) or error).strip()
    if mark is None:
        return f"{path}: not valid YAML: {reason}"
    lines = text.splitlines()
    quoted = lines[mark.line].rstrip().replace("\t", " ") if mark.line < len(lines) else ""
    return (f"{path}, line {mark.line + 1}, column {mark.column + 1}: not valid YAML: "
            f"{reason}\n    {quoted}\n    {' ' * mark.column}^")


def read_yaml_file(path: Path) -> Any:
    """The document in a YAML (or JSON) file.

    :raises YamlFileError: the file cannot be read, is not UTF-8, or is not YAML.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise YamlFileError(f"{path}: not UTF-8 text (byte {e.start + 1}); save it as "
                            "UTF-8") from e
    except OSError as e:
        raise YamlFileError(f"{path}: cannot read it ({e.strerror or e})") from e
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise YamlFileError(_explain(e, text, path)) from e
