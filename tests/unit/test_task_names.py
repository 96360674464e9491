from itertools import chain

import pytest

from selfmend.detect.task_names import (
    MAX_SIGHTINGS,
    Sighting,
    check,
    closest,
    in_log,
    in_schedule,
    in_source,
)
from selfmend.errors import InvalidInput

REGISTERED = {"shop.send_invoice", "shop.send_receipt", "shop.refund", "billing.charge"}

# What a Celery 5 worker logs, and records, for a message whose task it does not know.
WORKER_LOG = """\
[2026-11-22 10:00:01,120: INFO/MainProcess] celery@shop ready.
[2026-11-22 10:00:03,551: ERROR/MainProcess] Received unregistered task of type 'shop.send_invoce'.
The message has been ignored and discarded.
[2026-11-22 10:00:04,002: ERROR/MainProcess] Received unregistered task of type 'shop.send_invoce'.
{"event": "Received unregistered task of type 'shop.refnd'.\\nThe message has been ignored"}
task-failed exception=NotRegistered('billing.charg')
celery.exceptions.NotRegistered: 'shop.unheard_of'
"""


def test_log_lines_give_the_unregistered_names_and_where_they_were_seen():
    sightings = list(in_log(WORKER_LOG, "worker.log"))

    assert [(s.name, s.where) for s in sightings] == [
        ("shop.send_invoce", "worker.log:2"),
        ("shop.send_invoce", "worker.log:4"),
        ("shop.refnd", "worker.log:5"),
        ("billing.charg", "worker.log:6"),
        ("shop.unheard_of", "worker.log:7"),
    ]
    assert {s.source for s in sightings} == {"log"}


def test_a_log_without_unregistered_tasks_gives_nothing():
    assert list(in_log("Task shop.send_invoice[1] succeeded in 0.01s: None\n")) == []


def test_the_beat_schedule_names_each_entry_task():
    schedule = {
        "nightly-invoices": {"task": "shop.send_invoices", "schedule": 86400.0},
        "refunds": {"task": "shop.refund", "schedule": 60.0, "args": (1,)},
    }

    assert list(in_schedule(schedule)) == [
        Sighting("shop.send_invoices", "beat", "beat_schedule['nightly-invoices']"),
        Sighting("shop.refund", "beat", "beat_schedule['refunds']"),
    ]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ([{"task": "shop.refund"}], "expected a mapping of entry name"),
        ({"refunds": {"schedule": 60.0}}, "entry 'refunds': no 'task' name"),
        ({"refunds": "shop.refund"}, "entry 'refunds': no 'task' name"),
        ({"refunds": {"task": 3}}, "entry 'refunds': no 'task' name"),
    ],
)
def test_a_malformed_beat_schedule_is_refused_naming_the_entry(schedule, message):
    with pytest.raises(InvalidInput, match=message):
        list(in_schedule(schedule))


APP_MODULE = """\
from celery import current_app, signature

def checkout(app, order_id, task_name):
    app.send_task("shop.send_invoce", args=[order_id])
    current_app.send_task(name="shop.send_receipt", args=[order_id])
    signature("shop.refnd", args=(order_id,)).delay()
    app.signature("billing.charge").delay()
    app.send_task(task_name)  # computed: cannot be known without running the code
    app.send_task(f"shop.{task_name}")
    print("shop.not_a_task_call")
"""


def test_the_source_scan_finds_literal_names_in_send_task_and_signature(tmp_path):
    module = tmp_path / "shop" / "orders.py"
    module.parent.mkdir()
    module.write_text(APP_MODULE)

    sightings = list(in_source([tmp_path]))

    assert [(s.name, s.where) for s in sightings] == [
        ("shop.send_invoce", f"{module}:4"),
        ("shop.send_receipt", f"{module}:5"),
        ("shop.refnd", f"{module}:6"),
        ("billing.charge", f"{module}:7"),
    ]


def test_the_source_scan_never_runs_the_code_and_skips_installed_packages(tmp_path):
    (tmp_path / "app.py").write_text(
        "raise SystemExit('imported!')\napp.send_task('shop.send_invoce')\n"
    )
    vendored = tmp_path / ".venv" / "lib" / "site-packages"
    vendored.mkdir(parents=True)
    (vendored / "other.py").write_text("app.send_task('their.task')\n")

    assert [s.name for s in in_source([tmp_path])] == ["shop.send_invoce"]


def test_source_that_does_not_parse_is_refused_naming_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("app.send_task('shop.x')\ndef (:\n")

    with pytest.raises(InvalidInput, match=r"broken\.py:2: not valid Python"):
        list(in_source([broken]))


def test_a_missing_path_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="no such file or folder"):
        list(in_source([tmp_path / "nowhere"]))


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("shop.send_invoce", "shop.send_invoice"),  # a typo
        ("shop.tasks.send_invoice", "shop.send_invoice"),  # the module moved
        ("Shop.Send_Invoice", "shop.send_invoice"),  # case
        ("shop.send_receit", "shop.send_receipt"),
    ],
)
def test_closest_suggests_the_registered_name_meant(name, suggestion):
    found = closest(name, REGISTERED)

    assert found is not None
    assert found[0] == suggestion
    assert 0.8 <= found[1] <= 1.0


@pytest.mark.parametrize("name", ["shop.reorder", "inventory.restock", "x"])
def test_closest_suggests_nothing_for_an_unrelated_name(name):
    assert closest(name, REGISTERED) is None


def test_check_reports_each_unregistered_name_once_with_every_place_seen(tmp_path):
    module = tmp_path / "orders.py"
    module.write_text(APP_MODULE)
    schedule = {"refunds": {"task": "shop.refund"}, "charge": {"task": "billing.charge"}}

    findings = check(
        REGISTERED,
        chain(in_log(WORKER_LOG, "worker.log"), in_schedule(schedule), in_source([module])),
    )

    by_name = {finding.name: finding for finding in findings}
    assert sorted(by_name) == [
        "billing.charg",
        "shop.refnd",
        "shop.send_invoce",
        "shop.unheard_of",
    ]
    invoice = by_name["shop.send_invoce"]
    assert invoice.suggestion == "shop.send_invoice"
    assert invoice.alias_params == {"name": "shop.send_invoce", "target": "shop.send_invoice"}
    assert [s.where for s in invoice.sightings] == ["worker.log:2", "worker.log:4", f"{module}:4"]
    assert invoice.count == 3
    assert by_name["shop.refnd"].suggestion == "shop.refund"
    assert by_name["shop.unheard_of"].suggestion is None
    assert by_name["shop.unheard_of"].alias_params is None


def test_check_keeps_a_bounded_list_of_places_but_counts_them_all():
    lines = "\n".join(["Received unregistered task of type 'shop.send_invoce'."] * 500)

    (finding,) = check(REGISTERED, in_log(lines))

    assert len(finding.sightings) == MAX_SIGHTINGS
    assert finding.count == 500


def test_check_without_registered_names_is_refused():
    with pytest.raises(InvalidInput, match="no registered task names"):
        check([], in_log(WORKER_LOG))
