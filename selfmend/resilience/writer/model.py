"""The healer's last step: ask an OpenAI-compatible chat-completions endpoint which column an
input key means.

Off unless ``SELFMEND_WRITER_MODEL_URL`` is set. The call goes through its own circuit
breaker, so a model that is down or slow costs one failed call per reset timeout, not one per
batch. The answer is returned as text and the healer compares it with the inspected column
names; nothing the model says is ever executed or put in a statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx
import structlog

from selfmend.config import Settings

log = structlog.get_logger(__name__)

PROMPT = (
    "A program writes rows to the SQL table {table!r}, whose columns are: {columns}. "
    "It sent the key {key!r}, which is not a column. Which column does it mean? Answer with "
    "the column name alone, or NONE if no column is meant."
)


class ModelUnavailable(Exception):
    """The model could not be asked (down, open breaker, malformed reply)."""


class Breaker(Protocol):
    def call(self, func: Callable[..., Any], *args: Any) -> Any: ...


class ModelNamer:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        breaker: Breaker | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.endpoint = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.breaker = breaker
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = http or httpx.Client(timeout=timeout, headers=headers)

    def column_for(self, table: str, key: str, columns: Sequence[str]) -> str:
        """The model's answer, stripped of quotes; raises ``ModelUnavailable``."""
        try:
            if self.breaker is None:
                return self._ask(table, key, columns)
            return self.breaker.call(self._ask, table, key, columns)
        except Exception as error:
            log.warning("writer.model_unavailable", table=table, key=key, error=repr(error))
            raise ModelUnavailable(str(error)) from error

    def _ask(self, table: str, key: str, columns: Sequence[str]) -> str:
        prompt = PROMPT.format(table=table, key=key, columns=", ".join(columns))
        response = self.http.post(
            self.endpoint,
            json={
                "model": self.model,
                "temperature": 0,
                "max_tokens": 20,
                "messages": [{"role": "user", "content": prompt}],
            },
        )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise ValueError(f"the model's content is {type(content).__name__}, not text")
        return content.strip().strip("`'\"").strip()

    def close(self) -> None:
        self.http.close()


def namer_from_settings(settings: Settings, breaker: Breaker | None = None) -> ModelNamer | None:
    """The model step as configured, or None when ``writer_model_url`` is unset (the default)."""
    if not settings.writer_model_url:
        return None
    api_key = settings.writer_model_api_key
    return ModelNamer(
        settings.writer_model_url,
        settings.writer_model_name,
        api_key=api_key.get_secret_value() if api_key else None,
        timeout=settings.writer_model_timeout_seconds,
        breaker=breaker,
    )
