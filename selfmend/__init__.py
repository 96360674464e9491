"""selfmend: keeps a Python service healthy with no human in the loop.

The core (this package) is plain Python and never imports Celery; ``workers/`` and ``tasks/`` run
it on Celery, and ``selfmend.client`` is what the monitored application imports.
"""

__version__ = "0.1.0"
