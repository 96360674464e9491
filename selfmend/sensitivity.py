"""Per-series sensitivity: how many alarms a series' detector should raise, set by a person (CLI,
admin API) or, from their feedback, by the weekly optimizer.

A sensitivity ``s`` means about ``s`` times the default rate of alarms on normal data: 2 twice
as many, 0.5 half. Each detector turns it into a threshold on its own score
(``Detector.threshold_at``). It is not one of the detector's parameters, so a change rebuilds
nothing: the analyze pass reads the settings of its series in one query and compares each
series' scores with that series' threshold, from its next pass, with the learned state as it
was and every other series as it was.

Not in ``selfmend.detect``, and standard library only: the store, the admin API and the CLI use
it without loading a detector, and the application's client, which opens the store, stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from selfmend.errors import InvalidInput

if TYPE_CHECKING:
    from selfmend.store import Store
    from selfmend.store.sensitivities import SensitivitySetting

DEFAULT = 1.0
LOWEST = 0.1
HIGHEST = 10.0
# How fast, near the alarm, alarms on normal data thin out as a detector's statistic rises: about
# as its fourth power (between the tails of Student's t with 3 and 5 degrees of freedom and
# Laplace's). Measured with it (``python -m bench.sensitivity``), alarms at sensitivity 0.5 and 2
# against the default: rolling_mad 0.40-0.61x and 1.6-2.2x on t3, t5 and Laplace noise; stream,
# one alarm per event, 0.29-0.45x and 1.7-2.2x on those and on NAB's points outside its anomaly
# windows. Gaussian noise, whose tail falls far faster, responds more (stream 0.14x and 2.6x).
TAIL_EXPONENT = 4.0


def out_of_bounds(value: float) -> str | None:
    """What is wrong with ``value`` as a sensitivity, or None when it is one (NaN is not)."""
    if LOWEST <= value <= HIGHEST:
        return None
    return (
        f"sensitivity {value:g} is outside [{LOWEST:g}, {HIGHEST:g}]: it is about that many "
        "times the default rate of alarms (2 twice as many, 0.5 half)"
    )


def scaled_threshold(
    threshold: float,
    sensitivity: float,
    statistic_at: Callable[[float], float],
    score_at: Callable[[float], float],
) -> float:
    """The score threshold at ``sensitivity`` of a detector whose score is an increasing function
    (``score_at``, inverse ``statistic_at``) of a statistic: the statistic's alarm level is
    divided by ``sensitivity ** (1 / TAIL_EXPONENT)``, so where alarms on normal data fall off
    as the statistic's fourth power, their rate is multiplied by ``sensitivity``."""
    if sensitivity == DEFAULT:
        return threshold  # exactly, not within a rounding
    return score_at(statistic_at(threshold) * sensitivity ** (-1.0 / TAIL_EXPONENT))


def set_sensitivity(
    store: Store, series: str, value: float, actor: str, reason: str
) -> SensitivitySetting:
    """Set the sensitivity of the series with key ``series``, as ``actor`` for ``reason``: the
    setting and its audit row (``control_changes``, kind ``sensitivity``) in one transaction.
    The CLI, the admin API and the weekly optimizer all come through here."""
    problem = out_of_bounds(value)
    if problem is not None:
        raise InvalidInput(problem)
    return store.sensitivities.set(series, float(value), actor=actor, reason=reason)
