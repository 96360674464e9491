"""`make flower` listens on loopback only and never without a password: Flower shows every
task's arguments and can revoke tasks and shut workers down."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_flower(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    celery = bin_dir / "celery"
    celery.write_text('#!/bin/sh\necho "celery $*"\n')
    celery.chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: nothing is installed
    return subprocess.run(
        ["make", "--no-print-directory", "flower", f"BIN={bin_dir}", f"STAMP={stamp}"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_make_flower_needs_a_password(tmp_path):
    refused = make_flower(tmp_path)
    assert refused.returncode != 0
    assert "FLOWER_BASIC_AUTH" in refused.stderr
    assert "celery" not in refused.stdout


def test_make_flower_binds_to_loopback_with_the_password(tmp_path):
    started = make_flower(tmp_path, FLOWER_BASIC_AUTH="ops:a-long-secret")
    assert started.returncode == 0, started.stderr
    command = started.stdout.strip().splitlines()[-1]
    assert command.startswith("celery -A workers flower")
    assert "--address=127.0.0.1" in command.split()
    assert "--basic-auth=ops:a-long-secret" in command.split()
