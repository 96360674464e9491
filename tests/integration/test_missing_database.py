"""A store whose PostgreSQL database does not exist: the CLI names it in one line, without the
password, with the command that creates it (PostgreSQL at SELFMEND_TEST_POSTGRES; nothing is
created, the database is only connected to)."""

from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from selfmend.cli import app as cli
from tests.resources import POSTGRES, database_name


def test_a_missing_database_is_one_line_saying_how_to_create_it(monkeypatch):
    name = database_name("never_created")
    url = make_url(POSTGRES).set(password="hunter2-secret", database=name)
    monkeypatch.setenv("SELFMEND_STORE_URL", url.render_as_string(hide_password=False))

    for command in (["db", "upgrade"], ["status"]):
        refused = CliRunner().invoke(cli, command)

        assert refused.exit_code == 2, refused.output
        assert refused.stderr.count("\n") == 1
        assert "hunter2-secret" not in refused.stderr
        assert f'database "{name}" does not exist; create it with `createdb' in refused.stderr
        assert "then run `selfmend db upgrade`" in refused.stderr
