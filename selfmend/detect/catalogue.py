"""The pattern catalogue: the built-in patterns, and the user's patterns file laid over them.

The built-ins are data, ``catalogue.toml`` beside this module, read by the same code that reads
the user's file. ``docs/patterns.md`` is generated from them by ``selfmend.detect.catalogue_doc``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from selfmend.detect.pattern_file import read_patterns
from selfmend.detect.patterns import Pattern

CATALOGUE_FILE = Path(__file__).with_name("catalogue.toml")

BUILTIN_PATTERNS: tuple[Pattern, ...] = read_patterns(CATALOGUE_FILE)


def with_user_patterns(patterns: Iterable[Pattern], user: Iterable[Pattern]) -> tuple[Pattern, ...]:
    """``patterns`` with each user pattern in place of the one of its name; new names follow."""
    replacing = {pattern.name: pattern for pattern in user}
    kept = [replacing.pop(pattern.name, pattern) for pattern in patterns]
    return (*kept, *replacing.values())
