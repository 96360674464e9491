"""The fault lab's scorer (bench/lab/score.py) on hand-built records: detection and its time,
the fix and its verdict, the objective's recovery before the undo, and false incidents."""

from __future__ import annotations

import math

from bench.lab import score
from bench.lab.score import (
    Execution,
    FaultWindow,
    Hit,
    Incident,
    Objective,
    Verification,
)

FAULT = FaultWindow("cache_flush", started=1000.0, ended=1120.0)
OBJECTIVE = Objective(p95_seconds=0.2, error_rate=0.02)


def traffic(start: float, end: float, latency: float, status: int = 200) -> list[Hit]:
    """Two requests a second over [start, end)."""
    return [Hit(start + i / 2, latency, status) for i in range(int((end - start) * 2))]


def healed_run() -> tuple[list[Incident], list[Execution], list[Verification], list[Hit]]:
    """Detected at +40 s, fix applied at +50 s, verified at +85 s; slow until the fix."""
    incidents = [Incident(1, "cache_hit_ratio_low", "cache", 1040.0)]
    executions = [
        Execution(1, "cache_warm", "planned", 1049.0),
        Execution(1, "cache_warm", "applied", 1050.0),
        Execution(1, "cache_warm", "verified", 1085.0),
    ]
    verifications = [Verification(1, "fixed", 1085.0)]
    hits = traffic(900, 1000, 0.05) + traffic(1000, 1050, 0.9) + traffic(1050, 1200, 0.05)
    return incidents, executions, verifications, hits


def test_a_detected_fixed_and_verified_fault_is_healed():
    result = score.score_fault(FAULT, *healed_run(), OBJECTIVE)
    assert result.detected and result.verified and result.broke and result.recovered
    assert result.healed
    assert result.ttd == 40.0
    assert result.ttf == 85.0
    assert result.actions == ["cache_warm"]
    assert result.fixed_at == 1050.0


def test_an_incident_before_the_fault_or_after_its_grace_is_not_its_detection():
    incidents = [
        Incident(1, "anomaly", "x", FAULT.started - 1),
        Incident(2, "anomaly", "x", FAULT.ended + score.GRACE_SECONDS + 1),
    ]
    mine = score.attribute(incidents, [FAULT])[FAULT.name]
    result = score.score_fault(FAULT, mine, [], [], traffic(1000, 1120, 0.05), OBJECTIVE)
    assert not result.detected and result.ttd is None and not result.healed


def test_an_incident_in_the_grace_after_the_undo_still_counts():
    incidents = [Incident(3, "slow_queries", "db", FAULT.ended + 10)]
    mine = score.attribute(incidents, [FAULT])[FAULT.name]
    result = score.score_fault(FAULT, mine, [], [], [], OBJECTIVE)
    assert result.detected and result.ttd == 130.0


def test_a_grace_reaching_into_the_next_fault_gives_its_incidents_to_the_next_fault():
    following = FaultWindow("slow_dependency", FAULT.ended + 20, FAULT.ended + 140)
    incidents = [
        Incident(1, "cache_hit_ratio_low", "c", FAULT.ended + 5),
        Incident(2, "http_upstream_errors", "d", following.started + 10),
    ]
    owned = score.attribute(incidents, [FAULT, following])
    assert [i.id for i in owned[FAULT.name]] == [1]
    assert [i.id for i in owned[following.name]] == [2]
    assert score.false_incidents_per_hour(incidents, [FAULT, following], 0.0, 3600.0) == 0.0


def test_a_fix_applied_after_the_undo_is_neither_verified_nor_a_recovery():
    incidents = [Incident(1, "slow_queries", "db", 1100.0)]
    executions = [Execution(1, "set_control", "applied", 1130.0)]
    verifications = [Verification(1, "fixed", 1170.0)]
    hits = traffic(1000, 1200, 0.05)
    result = score.score_fault(FAULT, incidents, executions, verifications, hits, OBJECTIVE)
    assert result.detected and result.actions == ["set_control"]
    assert not result.verified and not result.recovered and not result.healed


def test_a_verified_fix_the_users_never_felt_is_not_healed():
    """The verdict says fixed, but the objective still misses in the stretch before the undo."""
    incidents, executions, verifications, _ = healed_run()
    hits = traffic(1000, 1200, 0.9)
    result = score.score_fault(FAULT, incidents, executions, verifications, hits, OBJECTIVE)
    assert result.verified and result.broke and not result.recovered and not result.healed


def test_a_recovery_with_no_verified_fix_is_not_healed():
    incidents, executions, _, hits = healed_run()
    result = score.score_fault(FAULT, incidents, executions, [], hits, OBJECTIVE)
    assert result.recovered and not result.verified and not result.healed
    failed = [Verification(1, "not_fixed", 1085.0)]
    assert not score.score_fault(FAULT, incidents, executions, failed, hits, OBJECTIVE).verified


def test_errors_break_the_objective_as_latency_does():
    hits = traffic(1000, 1120, 0.01, status=503)
    assert score.broken(hits, OBJECTIVE, 1000, 1120)
    assert not score.broken(traffic(1000, 1120, 0.01), OBJECTIVE, 1000, 1120)
    assert Hit(0, 10.0, 0).failed  # no answer at all


def test_a_bucket_with_too_few_requests_is_not_judged():
    hits = [Hit(1000.0, 5.0, 500)] * (score.MIN_REQUESTS - 1)
    assert not score.broken(hits, OBJECTIVE, 1000, 1010)


def test_the_objective_is_twice_the_usual_with_floors():
    usual = [Hit(float(i), 0.1, 200) for i in range(100)]
    assert score.objective_from(usual) == Objective(0.2, 0.02)
    fast = [Hit(float(i), 0.01, 200) for i in range(100)]
    assert math.isclose(score.objective_from(fast).p95_seconds, 0.06)
    flaky = [Hit(float(i), 0.1, 500 if i < 5 else 200) for i in range(100)]
    assert math.isclose(score.objective_from(flaky).error_rate, 0.1)


def test_p95_of_known_latencies():
    hits = [Hit(0, latency / 100, 200) for latency in range(1, 101)]
    assert score.p95(hits) == 0.95
    assert score.p95([]) == 0.0


def test_false_incidents_are_counted_per_fault_free_hour():
    faults = [FaultWindow("a", 3600.0, 3600.0 + 1740.0)]  # with its grace, half an hour
    incidents = [
        Incident(1, "anomaly", "x", 100.0),  # fault-free: false
        Incident(2, "cache_hit_ratio_low", "c", 3700.0),  # the fault's
        Incident(3, "anomaly", "x", 5500.0),  # fault-free: false
        Incident(4, "anomaly", "x", 9000.0),  # after the run: not counted
    ]
    per_hour = score.false_incidents_per_hour(incidents, faults, 0.0, 7200.0)
    assert math.isclose(per_hour, 2 / 1.5)


def test_no_false_incidents_and_no_fault_free_time():
    faults = [FaultWindow("a", 0.0, 100.0)]
    assert score.false_incidents_per_hour([], faults, 0.0, 100.0) == 0.0


def test_the_summary_line():
    healed = score.score_fault(FAULT, *healed_run(), OBJECTIVE)
    missed = score.score_fault(FaultWindow("b", 5000.0, 5100.0), [], [], [], [], OBJECTIVE)
    line = score.summary_line([healed, missed], 1.5)
    assert line == (
        "faults=2 detected=1 healed=1 false_incidents_per_hour=1.50 "
        "median_ttd_s=40.0 median_ttf_s=85.0"
    )
    assert score.summary_line([missed], 0.0).endswith("median_ttd_s=nan median_ttf_s=nan")


def test_the_report_names_incidents_and_actions():
    text = score.report(score.score_fault(FAULT, *healed_run(), OBJECTIVE))
    assert "#1 cache_hit_ratio_low" in text and "cache_warm" in text and "healed=yes" in text


def test_the_report_gives_each_fix_its_last_state_and_what_users_saw():
    incidents, executions, verifications, hits = healed_run()
    executions += [
        Execution(1, "breaker_force", "applied", 1060.0),
        Execution(1, "breaker_force", "uncredited", 1090.0, "the breaker was open already"),
    ]
    result = score.score_fault(FAULT, incidents, executions, verifications, hits, OBJECTIVE)
    assert result.outcomes == [
        "#1 cache_warm: verified",
        "#1 breaker_force: uncredited (the breaker was open already)",
    ]
    # 12 buckets of 10 s: slow (900 ms) until the fix at +50 s, 50 ms after it.
    assert [round(p95, 2) for p95, _ in result.timeline] == [0.9] * 5 + [0.05] * 7
    assert "900/0% 900/0%" in score.report(result)


def test_a_fault_name_the_lab_does_not_have_is_refused_with_the_names_it_has():
    from bench.lab.faults import unknown

    assert unknown(("long_query", "memory_leak")) is None
    refused = unknown(("long_qery",))
    assert refused.startswith("--faults: no fault named long_qery; the faults are cache_flush")


def test_a_verdict_given_after_the_undo_does_not_make_the_fault_healed():
    incidents, executions, _, hits = healed_run()
    late = [Verification(1, "fixed", FAULT.ended + 5)]
    result = score.score_fault(FAULT, incidents, executions, late, hits, OBJECTIVE)
    assert not result.verified and not result.healed
