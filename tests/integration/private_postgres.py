"""A PostgreSQL server of a test's own, on a free loopback port with its files in a temp
folder, that the test may restart without touching the machine's cluster (which every other
PostgreSQL client on the machine uses)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.resources import temp_folder

from .private_redis import free_port


def postgres_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder (initdb, pg_ctl), or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return None
    newest = max(found, key=lambda path: int(Path(path).parts[-3].split(".")[0]))
    return Path(newest).parent


class PrivatePostgres:
    """A PostgreSQL cluster made with initdb in a temp folder, trust authentication, listening
    on a free loopback port (and a socket in its own folder). PostgreSQL refuses to run as root,
    so as root it runs as the ``postgres`` user, which then owns the folder."""

    def __init__(self) -> None:
        binaries = postgres_binaries()
        if binaries is None:
            pytest.skip("needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb)")
        self.binaries = binaries
        self.folder = temp_folder("postgres")
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        self.start()

    def _run(self, program: str, *args: str) -> None:
        # Output to a file, not a pipe: the server pg_ctl starts must not hold our pipe open.
        output = self.folder / "commands.log"
        with output.open("a") as log:
            done = subprocess.run(
                [*self.as_owner, str(self.binaries / program), *args], stdout=log, stderr=log
            )
        if done.returncode != 0:
            tail = output.read_text()[-2000:]
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n{tail}")

    def _pg_ctl(self, *args: str) -> None:
        log = str(self.folder / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", *args)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """Fast mode: sessions are ended, as a supervisor's restart ends them."""
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._pg_ctl("stop", "-m", "immediate")

    def create_database(self, name: str) -> str:
        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        return f"{self.url}/{name}"

    def remove(self) -> None:
        """Stopped if it runs, and its folder removed."""
        with contextlib.suppress(RuntimeError):  # not running: nothing to stop
            self.stop()
        shutil.rmtree(self.folder)
