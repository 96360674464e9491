"""Detection: streaming detectors score each series; pattern rules match known conditions.

Import what you need from its module (``selfmend.detect.choice``, ``selfmend.detect.base``):
this package imports nothing, so the settings can name a detector without loading one.
"""
