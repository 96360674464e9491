"""PostgreSQL's bulk paths, below SQLAlchemy: COPY in, binary arrays in and out.

An analyze pass reads every new point of every series and writes every series' detector state;
as rows and parameter sets, each point and each series costs Python objects that SQLAlchemy and
the text protocol then process one by one. Here rows go in by binary COPY, a batch update goes
in as a few binary arrays (``unnest``), and points come out as one ``float8[]`` per series
loaded with ``numpy.frombuffer``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from psycopg import Cursor, pq
from psycopg.adapt import Loader
from sqlalchemy import Connection, Select

FLOAT8_ARRAY_OID = 1022
FLOAT8_OID = 701
# The binary array format: ndim, has-nulls flag and element type, then per dimension its length
# and lower bound, then each element as its byte length (4 bytes) and its big-endian value.
_HEADER = struct.Struct(">iiI")
_DIMENSION = struct.Struct(">ii")
_LENGTH_BYTES = 4


class Float8ArrayLoader(Loader):
    format = pq.Format.BINARY

    def load(self, data: Any) -> np.ndarray:
        ndim, has_null, element = _HEADER.unpack_from(data)
        if ndim == 0:
            return np.zeros(0)
        if ndim != 1 or has_null or element != FLOAT8_OID:
            raise ValueError(
                f"expected a one-dimensional float8[] without NULLs, got ndim={ndim}, "
                f"has_null={has_null}, element type {element}"
            )
        size, _ = _DIMENSION.unpack_from(data, _HEADER.size)
        values = np.ndarray(
            (size,),
            dtype=">f8",
            buffer=data,
            offset=_HEADER.size + _DIMENSION.size + _LENGTH_BYTES,
            strides=(_LENGTH_BYTES + 8,),
        )
        return values.astype(np.float64)


def _cursor(connection: Connection, binary: bool = False) -> Cursor[Any]:
    return connection.connection.driver_connection.cursor(binary=binary)


def fetch(connection: Connection, query: Select[Any]) -> list[tuple[Any, ...]]:
    """All rows of ``query``, in binary, with its ``float8[]`` columns as numpy arrays."""
    compiled = query.compile(dialect=connection.dialect)
    with _cursor(connection, binary=True) as cursor:
        cursor.adapters.register_loader(FLOAT8_ARRAY_OID, Float8ArrayLoader)
        cursor.execute(str(compiled), compiled.params)
        return cursor.fetchall()


def execute(connection: Connection, statement: str, arrays: Sequence[list[Any]]) -> None:
    """Run ``statement`` with each list bound as one binary array (its ``%b`` placeholders)."""
    with _cursor(connection) as cursor:
        cursor.execute(statement, arrays)


def returning(connection: Connection, statement: str, parameters: Sequence[Any]) -> list[Any]:
    """Run ``statement`` with its ``%b`` placeholders bound in binary (lists as arrays); the
    first column of each row it returns."""
    with _cursor(connection) as cursor:
        cursor.execute(statement, parameters)
        return [row[0] for row in cursor.fetchall()]


def copy_in(
    connection: Connection, statement: str, types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append ``rows`` with ``COPY ... FROM STDIN (FORMAT BINARY)``, columns typed as ``types``."""
    with _cursor(connection) as cursor, cursor.copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
