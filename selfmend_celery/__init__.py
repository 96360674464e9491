"""selfmend's hooks for the application's own Celery app; the ``selfmend`` core never imports
Celery, and ``workers`` is selfmend's app, whose import would set up its own logging."""

from selfmend_celery.task_aliases import install_task_aliases

__all__ = ["install_task_aliases"]
