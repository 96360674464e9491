"""PostgreSQL float8[] results loaded straight into numpy, on a real server: exact values, the
empty array, and a clear refusal of what the loader does not read (2-D arrays, NULLs)."""

import numpy as np
import psycopg
import pytest

from selfmend.store.pg_bulk import FLOAT8_ARRAY_OID, Float8ArrayLoader
from tests.resources import POSTGRES

pytestmark = pytest.mark.integration


@pytest.fixture
def cursor():
    with psycopg.connect(f"{POSTGRES}/postgres") as connection:
        cursor = connection.cursor(binary=True)
        cursor.adapters.register_loader(FLOAT8_ARRAY_OID, Float8ArrayLoader)
        yield cursor


def test_float8_arrays_load_exactly_as_numpy_arrays(cursor):
    values = np.random.default_rng(1).normal(0, 1e6, 500)
    cursor.execute("SELECT %s::float8[], '{}'::float8[], '{-0.0, 1e308}'::float8[]", [list(values)])
    loaded, empty, edges = cursor.fetchone()
    assert loaded.dtype == np.float64 and np.array_equal(loaded, values)
    assert empty.size == 0
    assert edges.tolist() == [-0.0, 1e308]


@pytest.mark.parametrize(
    ("literal", "named"),
    [("'{{1, 2}, {3, 4}}'", "ndim=2"), ("'{1, NULL}'", "has_null=1")],
)
def test_arrays_the_loader_cannot_read_are_refused_by_name(cursor, literal, named):
    cursor.execute(f"SELECT {literal}::float8[]")
    with pytest.raises(ValueError, match=named):
        cursor.fetchone()
