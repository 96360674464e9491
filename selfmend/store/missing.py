"""A store whose PostgreSQL database is not there yet: said in one line, with how to create it.

``selfmend db upgrade`` creates the tables, not the database (that needs a role allowed to
create databases), so a newcomer's first command must name the database, the server (without
its password) and the command that makes it, not show a driver traceback. SQLite needs nothing:
``make_engine`` creates the file's folder and SQLite the file.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from selfmend.errors import ConfigurationError
from selfmend.store.engine import DatabaseTimeouts, make_engine

_NO_DATABASE = re.compile(r'database "([^"]+)" does not exist')


def check_database(url: str, timeouts: DatabaseTimeouts | None = None) -> None:
    """Raise ``ConfigurationError`` when the database at ``url`` (or, for SQLite, the folder of
    its file) does not exist; any other connection failure is left to what connects next."""
    engine = make_engine(url, timeouts)
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        missing = missing_database(engine, error)
        if missing is not None:
            raise ConfigurationError(missing) from None
    finally:
        engine.dispose()


def missing_database(engine: Engine, error: OperationalError) -> str | None:
    """What to say when ``error`` is that the database does not exist, else None."""
    url = engine.url
    where = f"the store at {url.render_as_string(hide_password=True)}"
    found = _NO_DATABASE.search(str(error.orig or error))
    if found is None:
        return None
    flags = [f"-h {url.host}" if url.host else "", f"-p {url.port}" if url.port else ""]
    flags.append(f"-U {url.username}" if url.username else "")
    createdb = " ".join(["createdb", *[flag for flag in flags if flag], found[1]])
    return (
        f'{where}: database "{found[1]}" does not exist; create it with `{createdb}` '
        f'(or CREATE DATABASE "{found[1]}"), then run `selfmend db upgrade`'
    )
