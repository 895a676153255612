"""Deterministic resource names: ``{model}-{step}-{executionId}``, valid for SageMaker."""

from __future__ import annotations

import hashlib
import re
import uuid

MAX_NAME_LENGTH = 63
HASH_LENGTH = 10
_INVALID = re.compile(r"[^a-zA-Z0-9-]+")
_HYPHENS = re.compile(r"-{2,}")


def _clean(part: str) -> str:
    return _HYPHENS.sub("-", _INVALID.sub("-", part)).strip("-")


def resource_name(*parts: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Join ``parts`` with hyphens into a name of at most ``max_length`` chars of ``[a-zA-Z0-9-]``.

    Characters outside that set become hyphens. A name that had to be cleaned or shortened ends with a
    hash of the original parts, so two different inputs never share a name and the same input always
    gives the same one.
    """
    if not parts or not any(str(p) for p in parts):
        raise ValueError("resource_name needs at least one non-empty part")
    raw = [str(p) for p in parts]
    cleaned = "-".join(c for c in (_clean(p) for p in raw) if c)
    if cleaned == "-".join(raw) and 0 < len(cleaned) <= max_length:
        return cleaned
    digest = hashlib.sha256("\x1f".join(raw).encode()).hexdigest()[:HASH_LENGTH]
    head = cleaned[: max_length - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}" if head else digest


def job_name(model: str, step: str, execution_id: str) -> str:
    """The name of one step's job in one release: ``{model}-{step}-{executionId}``."""
    return resource_name(model, step, execution_id)


def new_execution_id() -> str:
    """A fresh execution id for local runs (same shape as a CodePipeline execution id)."""
    return str(uuid.uuid4())
