"""Text folding for the rule checks: "Café  OUVERT" and "cafe ouvert" compare equal."""

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def strip_accents(text: str) -> str:
    """NFKD, then every combining mark removed ("é" -> "e", "ﬁ" -> "fi")."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Accents stripped, case folded, runs of whitespace made one space, ends trimmed."""
    return _SPACES.sub(" ", strip_accents(text).casefold()).strip()
