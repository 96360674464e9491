"""The lab's child processes: each in its own session with its output in a log file, stopped
(SIGTERM, then SIGKILL to the whole group) however the lab ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path


class Child:
    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Child:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=Path(__file__).resolve().parents[2],
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        _signal_group(self.process.pid, signal.SIGKILL)  # pool children left behind, too
        self.process.wait()
        self.process = None


def _signal_group(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, number)
