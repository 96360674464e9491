"""Name forms the healer compares: a key's normalised form and its synonym form.

``customerName``, ``Customer-Name`` and ``CUSTOMER_NAME`` share the normalised form
``customername``. The synonym form also replaces each word by the first word of its synonym
group, so ``cust_mail`` and ``customer_email`` meet at ``customeremail``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")

# Each group's first word stands for the group; a word belongs to at most one group.
BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("customer", "cust", "client"),
    ("email", "mail"),
    ("phone", "telephone", "tel", "mobile"),
    ("quantity", "qty"),
    ("amount", "amt"),
    ("number", "num", "no", "nr"),
    ("address", "addr"),
    ("description", "desc", "descr"),
    ("identifier", "id", "ident"),
    ("first", "given"),
    ("last", "family", "sur"),
    ("created", "creation", "inserted"),
    ("updated", "modified", "changed"),
    ("price", "cost"),
    ("postcode", "zip", "zipcode", "postal"),
)


def words(name: str) -> list[str]:
    """The lower-case words of a name, split at separators and camelCase humps."""
    return [word.lower() for word in _WORDS.findall(name)]


def normalised(name: str) -> str:
    return "".join(words(name))


class Synonyms:
    """Word → the word that stands for its group; built-in groups plus the caller's."""

    def __init__(self, extra: Iterable[Iterable[str]] = ()) -> None:
        self.canonical: dict[str, str] = {}
        for group in (*BUILTIN_SYNONYMS, *(tuple(group) for group in extra)):
            members = [normalised(word) for word in group]
            for word in members:
                self.canonical[word] = self.canonical.get(members[0], members[0])

    def form(self, name: str) -> str:
        return "".join(self.canonical.get(word, word) for word in words(name))
