"""selfmend's Celery side: ``celery -A workers worker -B`` finds ``app`` here."""

from workers.app import create_app

app = create_app()

from workers import signals  # noqa: E402,F401  (connects worker signal handlers)

__all__ = ["app"]
