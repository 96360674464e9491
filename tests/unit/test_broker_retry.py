"""The worker and the beat wait out a broker restart of any length (issue 14)."""

from selfmend.config import Settings
from workers.app import create_app


def test_the_broker_connection_is_retried_without_end(tmp_path):
    conf = create_app(Settings(home=tmp_path, broker_url="redis://127.0.0.1:6379/0")).conf
    assert conf.broker_connection_retry is True
    assert conf.broker_connection_max_retries is None  # Celery's default, 100, gives up
