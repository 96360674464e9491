"""The integration check: task names an application calls that no worker has registered.

Names are gathered from three places: worker logs and error events (Celery logs ``Received
unregistered task of type 'x'`` and records ``NotRegistered('x')``), the beat schedule, and the
application's modules, read with ``ast`` and never imported. Each unknown name gets the closest
registered name, if one is close enough, and with it the ``task_alias`` parameters a person may
approve. The real fix is to correct the caller; the places it was seen say where.

    found = chain(in_log(worker_log, "worker.log"), in_schedule(app.conf.beat_schedule),
                  in_source(["shop/"]))
    for call in check(registered_names, found): ...
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Protocol

from selfmend.errors import InvalidInput

SIMILARITY_CUTOFF = 0.8
MAX_SIGHTINGS = 10

# The name is quoted by repr(): Celery formats the KeyError, or the NotRegistered exception.
_UNREGISTERED = re.compile(
    r"""(?:Received unregistered task of type |NotRegistered(?:\(|: ))(['"])(?P<name>[^'"\s]+)\1"""
)
# Calls whose first argument (or ``name=`` / ``task=``) is a task name.
_NAMING_CALLS = frozenset({"send_task", "signature", "Signature", "subtask"})
_NAME_KEYWORDS = frozenset({"name", "task"})
_SKIPPED_FOLDERS = frozenset({"__pycache__", "site-packages", "node_modules"})


class TaskRegistry(Protocol):
    def registered(self) -> dict[str, set[str]]:
        """Task names registered on each worker node that answered."""


@dataclass(frozen=True)
class Sighting:
    """A task name seen in one place: ``source`` is log, beat or code."""

    name: str
    source: str
    where: str


@dataclass(frozen=True)
class MisroutedCall:
    """A name no worker has registered, the closest registered name, and where it was seen."""

    name: str
    suggestion: str | None
    similarity: float
    sightings: tuple[Sighting, ...]
    count: int

    @property
    def alias_params(self) -> dict[str, str] | None:
        """The ``task_alias`` parameters that route this name to the suggestion, if any."""
        return None if self.suggestion is None else {"name": self.name, "target": self.suggestion}


def in_log(text: str, origin: str = "log") -> Iterator[Sighting]:
    """Unregistered names in log text or error events; ``where`` is ``origin:line``."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _UNREGISTERED.finditer(line):
            yield Sighting(match["name"], "log", f"{origin}:{number}")


def in_schedule(schedule: Mapping[str, Any]) -> Iterator[Sighting]:
    """The task name of every beat schedule entry (``{entry: {"task": name, ...}}``)."""
    if not isinstance(schedule, Mapping):
        raise InvalidInput(
            "beat schedule: expected a mapping of entry name to {'task': name, ...}, "
            f"got {type(schedule).__name__}"
        )
    for entry, spec in schedule.items():
        task = spec.get("task") if isinstance(spec, Mapping) else None
        if not isinstance(task, str) or not task:
            raise InvalidInput(f"beat schedule entry {entry!r}: no 'task' name in {spec!r}")
        yield Sighting(task, "beat", f"beat_schedule[{entry!r}]")


def in_source(paths: Iterable[str | Path]) -> Iterator[Sighting]:
    """Task names given as string literals to ``send_task`` and ``signature`` calls.

    A folder is scanned for ``*.py`` files, skipping hidden folders and installed packages.
    """
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.py") if not _skipped(p.relative_to(path)))
        elif path.is_file():
            files = [path]
        else:
            raise InvalidInput(f"{path}: no such file or folder to scan")
        for file in files:
            yield from _calls_in(file)


def _skipped(relative: Path) -> bool:
    folders = relative.parts[:-1]
    return any(part.startswith(".") or part in _SKIPPED_FOLDERS for part in folders)


def _calls_in(file: Path) -> Iterator[Sighting]:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except SyntaxError as error:
        raise InvalidInput(f"{file}:{error.lineno}: not valid Python: {error.msg}") from None
    except ValueError as error:  # null bytes, or an encoding the file does not follow
        raise InvalidInput(f"{file}: not valid Python: {error}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _callee(node.func) in _NAMING_CALLS:
            name = _literal_name(node)
            if name is not None:
                yield Sighting(name, "code", f"{file}:{node.lineno}")


def _callee(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _literal_name(call: ast.Call) -> str | None:
    """The task name if the call spells it as a string literal; a computed name is unknowable."""
    candidates = call.args[:1] + [k.value for k in call.keywords if k.arg in _NAME_KEYWORDS]
    for argument in candidates:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
    return None


def closest(
    name: str, registered: Iterable[str], cutoff: float = SIMILARITY_CUTOFF
) -> tuple[str, float] | None:
    """The registered name most like ``name`` (case aside) and its similarity, if ≥ ``cutoff``.

    A moved module (``shop.tasks.send_invoice`` for ``shop.send_invoice``) and a typo both
    score above 0.8; two different tasks of one module usually score well below.
    """
    matcher = SequenceMatcher(b=name.lower(), autojunk=False)
    best: tuple[str, float] | None = None
    for candidate in sorted(set(registered)):
        matcher.set_seq1(candidate.lower())
        if matcher.real_quick_ratio() < cutoff or matcher.quick_ratio() < cutoff:
            continue
        similarity = matcher.ratio()
        if similarity >= cutoff and (best is None or similarity > best[1]):
            best = (candidate, similarity)
    return None if best is None else (best[0], round(best[1], 3))


def check(
    registered: Iterable[str], sightings: Iterable[Sighting], cutoff: float = SIMILARITY_CUTOFF
) -> list[MisroutedCall]:
    """One finding per unregistered name, sorted by name, each place it was seen listed once."""
    known = set(registered)
    if not known:
        raise InvalidInput(
            "no registered task names to check against: ask the running workers first "
            "(celery inspect registered)"
        )
    seen: dict[str, dict[Sighting, None]] = {}
    counts: dict[str, int] = {}
    for sighting in sightings:
        if sighting.name in known:
            continue
        places = seen.setdefault(sighting.name, {})
        if len(places) < MAX_SIGHTINGS:
            places[sighting] = None
        counts[sighting.name] = counts.get(sighting.name, 0) + 1
    findings = []
    for name in sorted(seen):
        suggestion, similarity = closest(name, known, cutoff) or (None, 0.0)
        findings.append(
            MisroutedCall(name, suggestion, similarity, tuple(seen[name]), counts[name])
        )
    return findings
