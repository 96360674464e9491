"""Detection: streaming detectors score each series; pattern rules match known conditions."""

from __future__ import annotations

from selfmend.detect.base import Detector, Point
from selfmend.detect.choice import DetectorChoice, default_detector, detector_for

__all__ = ["Detector", "DetectorChoice", "Point", "default_detector", "detector_for"]
