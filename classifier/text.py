"""Text clean-up applied identically before training and scoring.

The encoder's vocabulary is English and has almost no emoji, so emoji become their Unicode names
("face with tears of joy"), which carry most of their sentiment. Links and handles are masked the
way the training tweets were (`http`, `@user`).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
_SPACES = re.compile(r"\s+")
_REPEAT = re.compile(r"(\S)\1{3,}")
_DROP = {"\u200d", "\ufe0e", "\ufe0f"}

# Posts are cut here before cleaning: a 20 kB post must not cost more than a long tweet.
MAX_CHARS = 2000


@lru_cache(maxsize=4096)
def _symbol_name(char: str) -> str:
    name = unicodedata.name(char, "")
    if not name or name.startswith(("EMOJI MODIFIER", "REGIONAL INDICATOR", "VARIATION")):
        return ""
    name = name.lower().replace(" sign", "").replace("heavy ", "").replace("black ", "")
    return f" {name} "


def _is_symbol(char: str) -> bool:
    return ord(char) >= 0x2190 and unicodedata.category(char) in ("So", "Sk")


def normalise(text: str) -> str:
    """The text as the model sees it."""
    text = text[:MAX_CHARS]
    text = _URL.sub(" http ", text)
    text = _HANDLE.sub("@user", text)
    out: list[str] = []
    previous = ""
    for char in text:
        if char in _DROP:
            continue
        if _is_symbol(char):
            if char == previous:  # "😂😂😂😂" says no more than "😂"
                continue
            out.append(_symbol_name(char))
        else:
            out.append(char)
        previous = char
    cleaned = _REPEAT.sub(r"\1\1\1", "".join(out))
    return _SPACES.sub(" ", cleaned).strip()
