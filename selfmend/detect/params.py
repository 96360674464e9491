"""The detectors' parameters, apart from the detectors: the settings validate a detector
choice when they load, and loading them must not pull in numpy, numba and the scoring kernels
(the application's client reads the same settings)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class MADParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(120, ge=8, description="Points the median and MAD are taken over.")
    min_points: int = Field(20, ge=2, description="Points seen before any score above 0.")
    min_spread: float = Field(1e-3, gt=0, description="Smallest spread, relative to the median.")
    threshold: float = Field(0.99, gt=0, lt=1, description="The score that is an anomaly.")

    @model_validator(mode="after")
    def _min_points_within_window(self) -> MADParams:
        if self.min_points > self.window:
            raise ValueError(f"min_points ({self.min_points}) exceeds window ({self.window})")
        return self


class StreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bins: int = Field(48, ge=1, le=96, description="Phases of the day in the seasonal baseline.")
    window: int = Field(1230, ge=2, description="Points the level and spreads average over.")
    clip: float = Field(4.6, gt=0, description="Residuals beyond this many spreads are clipped.")
    season_rate: float = Field(0.4, gt=0, le=1, description="How fast a phase's baseline moves.")
    decay: float = Field(0.99982, gt=0, lt=1, description="Per-point decay of the records.")
    floor: float = Field(2.0, gt=0, description="The smallest record a statistic is measured by.")
    record_growth: float = Field(1.43, gt=1, description="How far an event may raise a record.")
    phase_decay: float = Field(0.983, gt=0, lt=1, description="Decay of a phase's level record.")
    warmup: int = Field(52, ge=2, description="Points learned before any score above 0.")
    refractory: int = Field(14, ge=0, description="Points after an alarm held below it.")
    breakthrough: float = Field(3.0, gt=1, description="Times the last alarm's ratio that "
                                "alarms again within the refractory period.")  # fmt: skip
    season_gain: float = Field(0.44, gt=0, description="The seasonal baseline's error must be "
                               "below this fraction of the level's before it is used.")  # fmt: skip
    margin: float = Field(1.18, gt=1, description="Times its record a statistic must exceed.")
    shift_rate: float = Field(0.089, gt=0, lt=1, description="Weight of a point in the EWMA.")
    shift_margin: float = Field(1.0, gt=0, description="The margin of the EWMA statistic.")
    cusum_slack: float = Field(0.5, ge=0, description="Spreads per point the CUSUM forgives.")
    seasonal: bool = Field(True, description="Use the seasonal baseline.")
    weekly: bool = Field(False, description="Adjust the daily baseline by day of the week.")
    week_rate: float = Field(0.005, gt=0, le=1, description="How fast a weekday's offset moves.")
    week_after: float = Field(2.0, ge=0, description="Weeks learned before the offsets count.")
    change_point: bool = Field(True, description="Use the EWMA and CUSUM statistics.")
    threshold: float = Field(0.5, gt=0, lt=1, description="The score that is an anomaly; 0.5 is "
                             "where a statistic exceeds its margin.")  # fmt: skip

    @model_validator(mode="after")
    def _growth_exceeds_margin(self) -> StreamParams:
        if self.record_growth <= self.margin:
            raise ValueError(
                f"record_growth ({self.record_growth}) must exceed margin ({self.margin}), or a "
                "lasting change alarms again after every refractory period"
            )
        return self


DAY = 86400.0


class CalibratedParams(BaseModel):
    """The calibrated detectors' knobs (``spike``, ``shift`` and their ``ensemble``). Each
    default is a time scale, a rate or a textbook constant, the same for every series; none was
    searched on a benchmark. A member ignores the knobs of the others."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tau_level: float = Field(7 * DAY, gt=0, description="Seconds the level forgets over: a "
                             "week, a service's longest cycle; a change it should accept sooner "
                             "restarts it through an alarm.")  # fmt: skip
    tau_season: float = Field(7 * DAY, gt=0, description="Seconds an hour of the day's baseline "
                              "forgets over: a week of days.")  # fmt: skip
    tau_tail: float = Field(7 * DAY, gt=0, description="Seconds the tail of each statistic "
                            "forgets over: what is unusual is judged on the last "
                            "week.")  # fmt: skip
    bins: int = Field(24, ge=1, le=96, description="Phases of the day: hours.")
    clip: float = Field(3.0, gt=0, description="Residuals are clipped at this many spreads "
                        "before they are learned (Huber): one outlier cannot drag the "
                        "level.")  # fmt: skip
    warmup: int = Field(100, ge=2, description="Points learned before any score above 0: about "
                        "ten exceedances of the tail's base, the fewest a fit stands "
                        "on.")  # fmt: skip
    alarm: float = Field(4.0, gt=0, description="The surprise (-log10 tail probability) that "
                         "is an alarm: one point in 10,000 on data that behaves as it "
                         "has.")  # fmt: skip
    hold: int = Field(20, ge=0, description="Points after an alarm held below it: one event, "
                      "one alarm.")  # fmt: skip
    breakthrough: float = Field(3.0, gt=0, description="Surprise beyond the last alarm's "
                                "that alarms within the hold: a thousand times "
                                "rarer.")  # fmt: skip
    ewma_rate: float = Field(0.1, gt=0, lt=1, description="shift: weight of a point in the "
                             "EWMA (Montgomery's 0.05 to 0.25).")  # fmt: skip
    cusum_slack: float = Field(0.5, ge=0, description="shift: spreads per point the CUSUM "
                               "forgives (half the smallest shift worth finding).")  # fmt: skip
    log: bool = Field(False, description="spike: model log(1 + value), for counts and "
                      "multiplicative noise; scores 0 once a value is negative.")  # fmt: skip
    counts: bool = Field(True, description="ensemble: add a log spike member, which watches a "
                         "series until it has a negative value.")  # fmt: skip
    shift: bool = Field(True, description="ensemble: add the shift member (EWMA and "
                        "CUSUM).")  # fmt: skip
