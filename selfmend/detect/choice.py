"""Which detector a series gets: the user's choices by series-name pattern, else the default.

A choice is ``{"series": "redis.*", "detector": "rolling_mad", "params": {"window": 60}}``
(``SELFMEND_DETECTORS`` holds a JSON list of them); the first whose glob matches the series
name wins. Parameters are validated when the settings load, so a typo fails at start-up with
the choice and the field named, not on the first analyze pass.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from importlib import import_module
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from selfmend.detect.params import CalibratedParams, MADParams, StreamParams

if TYPE_CHECKING:
    from selfmend.detect.base import Detector

# Each detector's parameters, and where its class lives: the class (numpy, numba) is imported
# when a detector is built, so the settings that name a detector stay light to load.
PARAMS: dict[str, type[BaseModel]] = {
    "ensemble": CalibratedParams,
    "spike": CalibratedParams,
    "shift": CalibratedParams,
    "stream": StreamParams,
    "rolling_mad": MADParams,
}
CLASSES = {
    "ensemble": "selfmend.detect.ensemble:EnsembleDetector",
    "spike": "selfmend.detect.spike:SpikeDetector",
    "shift": "selfmend.detect.shift:ShiftDetector",
    "stream": "selfmend.detect.stream:StreamDetector",
    "rolling_mad": "selfmend.detect.mad:RollingMAD",
}


def detector_class(name: str) -> type[Any]:
    module, _, attribute = CLASSES[name].partition(":")
    return getattr(import_module(module), attribute)


class DetectorChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    series: str = Field(min_length=1, description="Glob over series names, e.g. 'postgres.*'.")
    detector: Literal["ensemble", "spike", "shift", "stream", "rolling_mad"]
    params: dict[str, Any] = Field(default_factory=dict)
    _validated: BaseModel = PrivateAttr()

    @model_validator(mode="after")
    def _params_are_valid(self) -> DetectorChoice:
        try:
            self._validated = PARAMS[self.detector].model_validate(self.params)
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"params.{field}: {first['msg']}") from None
        return self

    def build(self) -> Detector:
        return detector_class(self.detector)(self._validated)

    def restore(self, state: dict[str, Any] | None) -> Detector:
        """The saved detector if it is this choice with these parameters, else a new one: a
        changed choice starts learning anew rather than misread the old state."""
        if not state or state.get("detector") != self.detector:
            return self.build()
        restored = detector_class(self.detector).from_state(state)
        return restored if restored.params == self._validated else self.build()


DEFAULT = DetectorChoice(series="*", detector="ensemble")


def default_detector(series: str) -> Detector:
    """The detector a series gets unless the user configured another for its name."""
    return DEFAULT.build()


def choice_for(series: str, choices: tuple[DetectorChoice, ...] = ()) -> DetectorChoice:
    return next((c for c in choices if fnmatchcase(series, c.series)), DEFAULT)


def detector_for(series: str, choices: tuple[DetectorChoice, ...] = ()) -> Detector:
    return choice_for(series, choices).build()
