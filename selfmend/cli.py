"""The ``selfmend`` command: demo, status, incidents, patterns, approve, resolve, kill-switch,
sensitivity, api, db.

Every command but ``demo`` talks to the store only. ``demo`` is the one place that starts Celery
in this process, so it imports ``workers`` when it runs, never at import.
"""

from __future__ import annotations

import getpass
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from selfmend.config import Settings
from selfmend.errors import ConfigurationError, SelfmendError
from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts, make_engine
from selfmend.store.migrate import upgrade
from selfmend.store.missing import check_database

console = Console()
errors = Console(stderr=True)


class _OneLineErrors(TyperGroup):
    """Every command's ``SelfmendError`` (a bad setting, a missing incident) is one unwrapped
    line on stderr and exit status 2: what to change is the whole message, with no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except SelfmendError as error:
            errors.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(2) from None


app = typer.Typer(
    cls=_OneLineErrors,
    help="selfmend: keeps a Python service healthy with no human in the loop.",
    no_args_is_help=True,
)
db = typer.Typer(help="The store's schema.")
app.add_typer(db, name="db")


def _store() -> Store:
    settings = Settings()
    timeouts = DatabaseTimeouts.from_settings(settings)
    check_database(settings.resolved_store_url, timeouts)
    return Store.for_service(settings.resolved_store_url, schema_wait=0, timeouts=timeouts)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the store's tables to the latest version."""
    settings = Settings()
    timeouts = DatabaseTimeouts.from_settings(settings)
    check_database(settings.resolved_store_url, timeouts)
    engine = make_engine(settings.resolved_store_url, timeouts)
    try:
        upgrade(engine, statement_timeout=settings.index_build_timeout_seconds)
    finally:
        engine.dispose()
    console.print(f"store at [bold]{engine.url.render_as_string()}[/] is up to date")


@app.command()
def status() -> None:
    """Mode, kill switch, open incidents and live settings."""
    settings, store = Settings(), _store()
    open_incidents = [i for i in store.incidents.list(limit=1000) if not i.status.closed]
    console.print(
        f"mode [bold]{settings.mode}[/]   kill switch "
        f"[bold]{'ON' if store.controls.kill_switch() else 'off'}[/]   "
        f"open incidents [bold]{len(open_incidents)}[/]"
    )
    table = Table("live setting", "value")
    for key, value in sorted(store.controls.all().items()):
        table.add_row(key, repr(value))
    console.print(table)


@app.command()
def incidents(
    limit: int = 20,
    audit: Annotated[int | None, typer.Option(help="Show the audit log of this incident.")] = None,
) -> None:
    """Recent incidents, or one incident's audit log."""
    store = _store()
    if audit is not None:
        store.incidents.get(audit)  # a missing incident is an error, not an empty table
        table = Table("when", "action", "state", "actor", "reason", title=f"incident {audit}")
        for step in store.executions.history(audit):
            table.add_row(
                _when(step.created_at), step.action, str(step.state), step.actor, step.reason
            )
        console.print(table)
        return
    table = Table("id", "opened", "pattern", "target", "severity", "status", "root cause")
    for incident in store.incidents.list(limit=limit):
        table.add_row(
            str(incident.id),
            _when(incident.opened_at),
            incident.pattern,
            incident.target,
            str(incident.severity),
            str(incident.status),
            incident.root_cause or "",
        )
    console.print(table)


@app.command()
def patterns() -> None:
    """The patterns in use: the built-in catalogue with SELFMEND_PATTERNS_FILE laid over it."""
    from selfmend.system import System

    table = Table("pattern", "condition", "severity", "fix", "why")
    for pattern in System.from_settings(Settings()).patterns:
        table.add_row(
            pattern.name,
            pattern.condition.describe(),
            pattern.severity,
            pattern.describe_fix(),
            pattern.why,
        )
    console.print(table)


@app.command()
def approve(incident_id: int, reason: str = "approved from the CLI") -> None:
    """Approve the action an incident waits on; the next analyze pass runs it."""
    from selfmend.remedy.approvals import approve as record_approval

    step = record_approval(
        _store(),
        incident_id,
        actor=f"cli:{getpass.getuser()}",
        reason=reason,
        timeout_seconds=Settings().approval_timeout_seconds,
    )
    console.print(f"approved [bold]{step.action}[/] on {step.target} for incident {incident_id}")


@app.command()
def resolve(
    incident_id: int,
    reason: Annotated[str, typer.Option(help="What was done, for the audit log.")],
) -> None:
    """Close an incident a person dealt with (escalated, waiting, or open)."""
    from selfmend.remedy.closing import close_incident

    close_incident(_store(), incident_id, actor=f"cli:{getpass.getuser()}", reason=reason)
    console.print(f"incident {incident_id} is [bold]resolved[/]")


@app.command("kill-switch")
def kill_switch(
    state: Annotated[str, typer.Argument(help="on or off")],
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
    reason: str = "set from the CLI",
) -> None:
    """Stop (on) or allow (off) every apply, or one action's."""
    from selfmend.remedy.switches import set_kill_switch
    from selfmend.system import System

    if state not in ("on", "off"):
        raise typer.BadParameter("must be on or off", param_hint="STATE")
    store = _store()
    set_kill_switch(
        store,
        System(Settings(), store).catalogue.names(),
        state == "on",
        action=action,
        actor=f"cli:{getpass.getuser()}",
        reason=reason,
    )
    console.print(f"kill switch for {action or 'all actions'} is [bold]{state}[/]")


@app.command()
def sensitivity(
    series: Annotated[
        str, typer.Argument(help='The series\' key, e.g. db.query_ms{service="shop"}')
    ],
    value: Annotated[
        float | None, typer.Argument(help="About this many times the default alarms, 0.1 to 10.")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
) -> None:
    """Show a series' sensitivity, or set it (with --reason) from the next analyze pass."""
    from selfmend.sensitivity import set_sensitivity

    if value is not None and not reason:
        raise typer.BadParameter("a new sensitivity needs a reason", param_hint="--reason")
    store = _store()
    if value is None:
        setting = store.sensitivities.get(series)
    else:
        actor = f"cli:{getpass.getuser()}"
        setting = set_sensitivity(store, series, value, actor=actor, reason=reason)
    console.print(f"{escape(series)}: {escape(setting.describe())}")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the admin API (OpenAPI at /api-docs) and /metrics."""
    import uvicorn

    from selfmend.api.app import create_app

    settings = Settings()
    if not settings.admin_keys:
        raise ConfigurationError(
            "SELFMEND_ADMIN_KEYS is empty: the admin API would refuse every request; set it to "
            'a JSON list of {"name", "role": viewer|operator|admin, "key"}'
        )
    # A long-running service like the worker and beat: create_app opens the store waiting up to
    # schema_wait_seconds for the migrate job, where the short commands' _store() refuses at once.
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


DEMO_FAULTS = (("cache_flush", 20.0), ("connection_spike", 40.0), ("slow_queries", 60.0))
DEMO_SPEED = 3.0


@app.command()
def demo(
    seconds: Annotated[float, typer.Option(help="Give up after this long.")] = 180.0,
    home: Annotated[Path | None, typer.Option(help="Folder for the demo's store.")] = None,
) -> None:
    """Run the real loop (worker and beat in this process) against a simulated application."""
    home = home or Path(tempfile.mkdtemp(prefix="selfmend-demo-"))
    os.environ.update(
        {
            "SELFMEND_HOME": str(home),
            "SELFMEND_MODE": "auto",
            "SELFMEND_COLLECT_INTERVAL": "1",
            "SELFMEND_ANALYZE_INTERVAL": "2",
            "SELFMEND_SETTLE_SECONDS": "3",
            "SELFMEND_VERIFY_WINDOW_SECONDS": "6",
            "SELFMEND_COOLDOWN_SECONDS": "60",
        }
    )
    from workers.demo import run_demo

    run_demo(console, faults=DEMO_FAULTS, speed=DEMO_SPEED, deadline=seconds)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
