"""User actions through the ``selfmend.actions`` entry point group: a distribution on sys.path
(its dist-info written here, as pip would) declares an action; the workers load it at start
and refuse one that is malformed, naming the entry point."""

import textwrap

import pytest

from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.system import System

ACTIONS = """
from selfmend.models import Risk
from selfmend.remedy.base import Plan


class PurgeCDN:
    name = "purge_cdn"
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, store):
        self.controls = store.controls

    def plan(self, params):
        return Plan(self.name, params["zone"], params, {}, f"purge {params['zone']}")

    def apply(self, plan):
        self.controls.set("cdn.purged", plan.target, "purge_cdn")
        return {"changed": True}

    def rollback(self, plan):
        return {"changed": False}


class Misnamed(PurgeCDN):
    name = "purge"


class Riskless(PurgeCDN):
    risk = "whatever"
"""


def install(tmp_path, monkeypatch, entry: str) -> None:
    """What ``pip install`` of the application's ops package leaves on sys.path."""
    (tmp_path / "shop_ops.py").write_text(ACTIONS)
    info = tmp_path / "shop_ops-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-ops\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[selfmend.actions]\n{entry}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_an_installed_action_joins_the_allow_list_and_a_pattern_may_name_it(tmp_path, monkeypatch):
    install(tmp_path, monkeypatch, "purge_cdn = shop_ops:PurgeCDN")
    patterns_file = tmp_path / "patterns.toml"
    patterns_file.write_text(
        textwrap.dedent("""
        [[patterns]]
        name = "cdn_stale"
        severity = "low"
        condition = { series = "cdn.stale_ratio", aggregate = "min", window = 60, op = ">", \
        threshold = 0.5 }
        action = { name = "purge_cdn", params = { zone = "eu" } }
        why = "purge: the CDN serves stale pages."
        """)
    )
    system = System.from_settings(Settings(home=tmp_path / "home", patterns_file=patterns_file))

    action = system.catalogue.get("purge_cdn")
    action.apply(action.plan({"zone": "eu"}))
    assert system.store.controls.get("cdn.purged") == "eu"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("purge_cdn = shop_ops:Misnamed", "the action's name is 'purge'; it must be 'purge_cdn'"),
        ("purge_cdn = shop_ops:Riskless", "risk must be a selfmend.models.Risk"),
        ("purge_cdn = shop_ops:Missing", "could not load"),
        ("set_control = shop_ops:PurgeCDN", "the action's name is 'purge_cdn'"),
    ],
)
def test_a_malformed_action_stops_the_start_naming_its_entry_point(
    tmp_path, monkeypatch, entry, message
):
    install(tmp_path, monkeypatch, entry)
    with pytest.raises(ConfigurationError, match="entry point") as refused:
        System.from_settings(Settings(home=tmp_path / "home"))
    assert message in str(refused.value)
