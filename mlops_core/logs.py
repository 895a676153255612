"""Structured logging. The library only emits events; bin/ scripts call ``configure_logging``.

Importing mlops_core never touches the root logger or structlog's global configuration. structlog is
imported on first use (it pulls in rich when installed), keeping ``import mlops_core`` light.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

SECRET_KEYS = frozenset({
    "password", "passwd", "secret", "secrets", "token", "tokens", "credential", "credentials", "authorization",
    "api_key", "apikey", "private_key", "client_secret", "access_token", "refresh_token", "id_token",
    "session_token", "secret_key", "secret_access_key", "aws_secret_access_key", "aws_session_token",
    "secretaccesskey", "sessiontoken", "x_amz_security_token", "cookie", "set_cookie",
})
REDACTED = "***"


def is_secret_key(key: object) -> bool:
    """True for a key named like a secret (exact names, case and ``-``/``_`` ignored): ``password`` is, ``passed``
    or ``token_count`` are not."""
    return isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS


class _LazyLogger:
    """A structlog logger created on its first event, so importing a module that logs costs nothing."""

    def __init__(self, context: dict[str, Any]):
        self._context = context
        self._logger: Any = None

    def bind(self, **values: Any) -> _LazyLogger:
        return _LazyLogger({**self._context, **values})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(**self._context)
        return getattr(self._logger, name)


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name; configuration is decided by the application."""
    return _LazyLogger({"component": name})


def redact(value: Any) -> Any:
    """Copy of ``value`` with anything stored under a secret-looking key replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: dict) -> dict:
    """structlog processor: redact values under secret keys (password, secret, token, credentials, ...)."""
    return redact(event_dict)


def wants_json(stream: TextIO) -> bool:
    """JSON lines in CodeBuild or when the stream is not a terminal; a console renderer otherwise."""
    if os.environ.get("CODEBUILD_BUILD_ID"):
        return True
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(level: str | None = None, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog for a command-line program (level from ``LOG_LEVEL``, default INFO)."""
    import structlog

    stream = stream or sys.stderr
    name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer = (structlog.processors.JSONRenderer() if (wants_json(stream) if json is None else json)
                else structlog.dev.ConsoleRenderer(colors=stream.isatty() if hasattr(stream, "isatty") else False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
