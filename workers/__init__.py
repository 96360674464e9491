"""selfmend's Celery side: ``celery -A workers worker -B`` finds ``app`` here."""

import sys

from selfmend.detect.pattern_file import read_patterns
from selfmend.errors import ConfigurationError
from workers.app import create_app

try:
    app = create_app()
    if app.selfmend_settings.patterns_file:
        read_patterns(app.selfmend_settings.patterns_file)
except ConfigurationError as error:
    # A bad SELFMEND_* variable or patterns file: the one line that names it, at start, not a
    # traceback through Celery (or, for the patterns, at the first analyze pass).
    sys.exit(f"selfmend: {error}")

from workers import signals  # noqa: F401  (connects worker signal handlers)

__all__ = ["app"]
