"""Telling a user which encoding a CSV file that is not UTF-8 was probably saved in.

Spreadsheet programs still save CSV in the computer's legacy code page: on the
region's machines Windows-1251 (Russian, Mongolian), GB18030/GBK (Chinese),
Shift_JIS (Japanese), EUC-KR (Korean) and Windows-1252 (Western European).
Each of these decodes most byte strings, so the guess weighs what the bytes
become: letters of the code page's own script, standing in words of that
script, count for it; letters of that script wedged into a Latin word
("remarquйe"), or symbols, count against it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: (codec, name people know it by, script its non-ASCII letters belong to).
CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("cp1252", "Windows-1252 (Western European, often called Latin-1)", "LATIN"),
    ("cp1251", "Windows-1251 (Cyrillic: Russian, Mongolian)", "CYRILLIC"),
    ("gb18030", "GB18030 / GBK (Chinese)", "CJK"),
    ("shift_jis", "Shift_JIS (Japanese)", "JAPANESE"),
    ("euc_kr", "EUC-KR (Korean)", "HANGUL"),
)
#: Chinese GB18030 and Korean EUC-KR share a byte range (Hanzi level 1 and Hangul):
#: without word frequencies a line cannot tell them apart.
_TWINS = frozenset({"gb18030", "euc_kr"})
#: The name ``iconv -f`` knows each codec by.
ICONV = {"cp1252": "WINDOWS-1252", "cp1251": "WINDOWS-1251", "gb18030": "GB18030",
         "shift_jis": "SHIFT_JIS", "euc_kr": "EUC-KR"}


@dataclass(frozen=True)
class BadByte:
    """Where a file stops being UTF-8, and what it probably is instead."""

    line: int  # 1-based physical line
    column: int  # 1-based byte position in that line
    byte: int
    guess: str | None  # the codec (a key of ICONV) it probably is, or None

    def message(self) -> str:
        """The problem as an import reports it: where, what, and how to fix it."""
        names = {codec: label for codec, label, _ in CANDIDATES}
        if self.guess in _TWINS:
            guess = f"it looks like {names['gb18030']} or {names['euc_kr']}"
        elif self.guess:
            guess = f"it looks like {names[self.guess]}"
        else:
            guess = "it was saved in another encoding"
        source = ICONV.get(self.guess or "", "WINDOWS-1252")
        return (f"not UTF-8: byte 0x{self.byte:02X} at byte {self.column} of this line; "
                f"{guess}. Re-save the file as UTF-8 (Excel: Save As 'CSV UTF-8'; "
                "LibreOffice: Save As, character set 'Unicode (UTF-8)'), or convert it: "
                f"iconv -f {source} -t UTF-8 in.csv > out.csv. Nothing after this line "
                "was checked")


def _script(char: str) -> str:
    name = unicodedata.name(char, "")
    if name.startswith("LATIN"):
        return "LATIN"
    if name.startswith("CYRILLIC"):
        return "CYRILLIC"
    if name.startswith(("HIRAGANA", "KATAKANA")):
        return "JAPANESE"
    if name.startswith("CJK"):
        return "CJK"
    if name.startswith("HANGUL"):
        return "HANGUL"
    return "OTHER"


def _score(text: str, codec: str, script: str) -> int:
    """How well ``text`` (decoded with ``codec``) reads as ``script``, per byte decoded."""
    score = 0
    for i, char in enumerate(text):
        if ord(char) < 128:
            continue
        weight = len(char.encode(codec))
        found = _script(char)
        matches = found == script or (script == "JAPANESE" and found == "CJK")
        near = text[max(i - 1, 0):i] + text[i + 1:i + 2]
        in_latin_word = any(c.isascii() and c.isalpha() for c in near)
        if not matches or not char.isalpha() or in_latin_word != (script == "LATIN"):
            # An accented letter stands in a Latin word ("été"); a Cyrillic or CJK
            # one does not ("remarquйe"), nor a word of accents ("Ìîíãîë").
            score -= 2 * weight
            continue
        # Kana say more than Han characters, which several code pages yield.
        score += weight + (1 if found == "JAPANESE" else 0)
    return score


def guess_encoding(line: bytes) -> str | None:
    """The likeliest codec of :data:`CANDIDATES` for a line that is not UTF-8, or None.

    ``gb18030`` or ``euc_kr`` is returned for either when both read plausibly
    (:attr:`BadByte.message` then names both).
    """
    scores: dict[str, int] = {}
    for codec, _, script in CANDIDATES:
        try:
            scores[codec] = _score(line.decode(codec), codec, script)
        except UnicodeDecodeError:
            continue
    plausible = {codec: score for codec, score in scores.items() if score > 0}
    if not plausible:
        return None
    return max(plausible, key=lambda codec: plausible[codec])


def bad_byte(line: bytes, number: int, error: UnicodeDecodeError) -> BadByte:
    """Describe the first byte of ``line`` (physical line ``number``) that is not UTF-8."""
    return BadByte(number, error.start + 1, line[error.start], guess_encoding(line))
