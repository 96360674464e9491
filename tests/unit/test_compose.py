"""docker-compose.yml cannot run here (no Docker engine): check it against the code instead."""

from pathlib import Path

import typer
import yaml

from selfmend import cli
from selfmend.config import Settings

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())


def test_services_of_the_production_shape():
    assert {"redis", "postgres", "worker", "beat", "flower", "api"} <= set(COMPOSE["services"])


def test_commands_use_the_celery_app_and_the_cli():
    services = COMPOSE["services"]
    assert services["worker"]["command"][:4] == ["celery", "-A", "workers", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "workers", "beat"]
    assert services["flower"]["command"][:4] == ["celery", "-A", "workers", "flower"]
    assert services["migrate"]["command"] == ["selfmend", "db", "upgrade"]
    assert services["api"]["command"][:2] == ["selfmend", "api"]
    api_options = {o.name for o in typer.main.get_command(cli.app).commands["api"].params}
    flags = services["api"]["command"][2::2]
    assert {flag.removeprefix("--") for flag in flags} <= api_options


def test_environment_names_real_settings_that_parse():
    fields = set(Settings.model_fields)
    for name in ("worker", "beat", "flower", "migrate", "api"):
        environment = {
            key.removeprefix("SELFMEND_").lower(): value
            for key, value in COMPOSE["services"][name]["environment"].items()
            if key.startswith("SELFMEND_")
        }
        unknown = [key for key in environment if key not in fields]
        assert unknown == [], f"{name}: {unknown} are not settings"
        # A value the operator must supply (``${NAME:?…}``) is named, not parsed.
        given = {k: v for k, v in environment.items() if not str(v).startswith("${")}
        settings = Settings(**given)
        assert settings.resolved_broker_url.startswith("redis://")
        assert settings.resolved_store_url.startswith("postgresql")


def test_flower_is_never_started_without_a_password():
    flower = COMPOSE["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["environment"]["SELFMEND_BROKER_URL"].startswith("redis://")


def test_the_api_is_never_started_without_keys():
    api = COMPOSE["services"]["api"]
    assert api["environment"]["SELFMEND_ADMIN_KEYS"].startswith("${SELFMEND_ADMIN_KEYS:?")
