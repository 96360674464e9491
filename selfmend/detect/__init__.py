"""Detection: streaming detectors score each series; pattern rules match known conditions."""

from __future__ import annotations

from selfmend.detect.base import Detector
from selfmend.detect.mad import RollingMAD


def default_detector(series: str) -> Detector:
    """The detector a series gets unless the user configured another for its name."""
    return RollingMAD(window=120)
