"""Every Redis DB, PostgreSQL database and temp folder the test suite and the benches use comes
from here, and all of them follow from one setting, so two runs on one machine share nothing:

- ``SELFMEND_TEST_SLOT`` (0 or 1, default 0): slot n owns Redis DBs 8n..8n+7 (one role each,
  ``REDIS_ROLES``), the PostgreSQL databases named ``selfmend_s{n}_*`` and temp folders under
  one ``selfmend-s{n}-*`` folder of the run;
- ``SELFMEND_TEST_REDIS`` and ``SELFMEND_TEST_POSTGRES``: the servers, without a database.

What a process took it gives back in ``release()`` (the suite calls it when the session ends, a
bench when it exits): its databases dropped, its Redis DBs emptied, its temp folders removed.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import psycopg
import redis

SLOT_VARIABLE = "SELFMEND_TEST_SLOT"
SLOTS = (0, 1)
REDIS = os.environ.get("SELFMEND_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
POSTGRES = os.environ.get("SELFMEND_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432").rstrip(
    "/"
)

# A slot's Redis DBs in order from 8 * slot; a server has 16, so two slots fit.
REDIS_ROLES = (
    "broker",  # the session worker's broker
    "results",  # its result backend
    "state",  # its push buffer and shared state
    "app",  # an application's own Redis (a cache the actions change)
    "breaker",  # breaker state the processes of one test share
    "side_broker",  # the broker of workers and beats a test starts as processes of their own
    "side_results",  # their result backend
    "side_state",  # their push buffer, or a second System's
)

# The process that first imports this module owns the run: processes it starts (spawned
# multiprocessing children import the test modules again) share its root folder and give back
# nothing at their exit, since the run still uses it.
_OWNER_VARIABLE = "_SELFMEND_TEST_OWNER"
_ROOT_VARIABLE = "_SELFMEND_TEST_ROOT"
_OWNER_FILE = "owner.pid"
_LOCK_SPACE = 0x5E1F  # the advisory lock key is (this, slot)
os.environ.setdefault(_OWNER_VARIABLE, str(os.getpid()))
_redis_dbs: dict[tuple[str, int], None] = {}
_databases: dict[tuple[str, str], None] = {}
_root: Path | None = None
_release_registered = False
_slot_lock: psycopg.Connection | None = None  # held by a test run for the whole session
_slot_refused = False  # another run holds the slot: its databases and Redis DBs are not ours


class SlotError(ValueError):
    """SELFMEND_TEST_SLOT names no slot."""


@functools.cache
def slot() -> int:
    """Read once: the unit tests empty SELFMEND_* from the environment while they run."""
    raw = os.environ.get(SLOT_VARIABLE, "0").strip() or "0"
    if raw not in {str(number) for number in SLOTS}:
        raise SlotError(
            f"{SLOT_VARIABLE}={raw!r}: must be 0 or 1 (each slot owns 8 of the 16 Redis DBs); "
            "unset means 0"
        )
    return int(raw)


def claim_slot(server: str = POSTGRES) -> None:
    """Hold this slot for the run: a session-level advisory lock on the PostgreSQL server,
    released by the server when the run's connection closes, however the run ends. A second run
    on the same slot would empty the first one's Redis DBs and drop its databases; it is refused
    with a ``SlotError`` that says which slot to use instead."""
    global _slot_lock, _slot_refused
    if _slot_lock is not None:
        return
    name = f"selfmend tests slot {slot()}"
    connection = psycopg.connect(
        f"{server}/postgres", autocommit=True, connect_timeout=10, application_name=name
    )
    held = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_SPACE, slot()])
    if held.fetchone()[0]:
        _slot_lock = connection
        return
    connection.close()
    _slot_refused = True
    other = next(number for number in SLOTS if number != slot())
    raise SlotError(
        f"{SLOT_VARIABLE}={slot()}: another test run on this machine holds slot {slot()} (its "
        f"PostgreSQL session is named {name!r}); wait for it, or run with {SLOT_VARIABLE}={other}"
    )


def redis_db(role: str) -> int:
    if role not in REDIS_ROLES:
        raise KeyError(f"no Redis role {role!r}; the roles are {', '.join(REDIS_ROLES)}")
    return 8 * slot() + REDIS_ROLES.index(role)


def redis_url(role: str, server: str = REDIS) -> str:
    """The URL of this slot's Redis DB for ``role``; emptied when the run ends."""
    db = redis_db(role)
    _take()
    _redis_dbs[(server.rstrip("/"), db)] = None
    return f"{server.rstrip('/')}/{db}"


def empty_redis(role: str, server: str = REDIS) -> str:
    """``redis_url(role)``, emptied first of what an earlier test left."""
    url = redis_url(role, server)
    with redis.Redis.from_url(url) as client:
        client.flushdb()
    return url


def database_name(name: str, server: str = POSTGRES) -> str:
    """This slot's name for database ``name``; dropped, if it exists, when the run ends."""
    full = f"selfmend_s{slot()}_{name}"
    _take()
    _databases[(server.rstrip("/"), full)] = None
    return full


def database_url(name: str, server: str = POSTGRES) -> str:
    return f"{server.rstrip('/')}/{database_name(name, server)}"


def fresh_database(name: str, server: str = POSTGRES) -> str:
    """The URL of database ``name`` created empty (dropped first if an earlier run left it)."""
    url = database_url(name, server)
    full = url.rsplit("/", 1)[1]
    with psycopg.connect(f"{server.rstrip('/')}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {full}")
    return url


def run_root() -> Path:
    """The one folder of this run that holds all its temp folders."""
    global _root
    if _root is None and not _owner() and _ROOT_VARIABLE in os.environ:
        _root = Path(os.environ[_ROOT_VARIABLE])
    if _root is None:
        _take()
        _remove_roots_of_dead_runs()
        _root = Path(tempfile.mkdtemp(prefix=f"selfmend-s{slot()}-"))
        # Traversable, so a server run as another user (PostgreSQL) can use a folder inside.
        _root.chmod(0o711)
        (_root / _OWNER_FILE).write_text(str(os.getpid()))
        os.environ[_ROOT_VARIABLE] = str(_root)
    return _root


def _remove_roots_of_dead_runs() -> None:
    """A run killed before it could clean up (SIGKILL) leaves its root; the next run removes
    it once the process that made it is gone."""
    for root in Path(tempfile.gettempdir()).glob("selfmend-s[0-9]-*"):
        try:
            owner = int((root / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not one of ours, or still being made
        if not _alive(owner):
            _give_back(f"folder {root} of a dead run", shutil.rmtree, root)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_folder(name: str) -> Path:
    """A new empty folder under the run's root, removed with it when the run ends."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=run_root()))


def release() -> None:
    """Drop the databases, empty the Redis DBs and remove the temp folders this process took.
    A failure is printed and the rest still given back."""
    global _root, _slot_lock
    if not _owner():
        return
    if _slot_refused:  # they are the other run's
        _databases.clear()
        _redis_dbs.clear()
    for server, name in list(_databases):
        _give_back(f"database {name}", _drop_database, server, name)
    for server, db in list(_redis_dbs):
        _give_back(f"Redis DB {db}", _empty_redis_db, server, db)
    if _root is not None:
        _give_back(f"folder {_root}", shutil.rmtree, _root)
    _databases.clear()
    _redis_dbs.clear()
    _root = None
    if _slot_lock is not None:
        _slot_lock.close()
        _slot_lock = None


def _owner() -> bool:
    return os.environ.get(_OWNER_VARIABLE) == str(os.getpid())


def _take() -> None:
    """The first thing taken arranges for everything to be given back at exit (benches)."""
    global _release_registered
    if not _release_registered:
        atexit.register(release)
        _release_registered = True


def _drop_database(server: str, name: str) -> None:
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=10) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _empty_redis_db(server: str, db: int) -> None:
    with redis.Redis.from_url(f"{server}/{db}", socket_timeout=10) as client:
        client.flushdb()


def _give_back(what: str, step, *args) -> None:
    try:
        step(*args)
    except Exception as error:  # the rest is still given back; the user hears what was not
        print(f"selfmend tests: could not give back {what}: {error}", file=sys.stderr)
