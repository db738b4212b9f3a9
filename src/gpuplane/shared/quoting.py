"""Quoting an offending value in an error message, bounded (pure)."""

from __future__ import annotations

# The most of an offending value a message quotes: a 100 kB label value must not come
# back as a 100 kB error.
QUOTED_CHARS = 80


def quoted(value: object) -> str:
    """``repr(value)``, cut to its first QUOTED_CHARS characters with the full length said."""
    text = repr(value)
    if len(text) <= QUOTED_CHARS:
        return text
    return f"{text[:QUOTED_CHARS]}... ({len(str(value))} characters)"
