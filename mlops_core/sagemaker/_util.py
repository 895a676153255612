"""Small helpers shared by the SageMaker modules."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from mlops_core.aws import error_code, is_not_found
from mlops_core.ensure import Action, Ensured
from mlops_core.logs import get_logger

log = get_logger("sagemaker")

ALREADY_EXISTS_CODES = frozenset({"ConflictException", "ResourceInUse", "ResourceInUseException",
                                  "AlreadyExistsException"})


def tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``."""
    return [{"Key": k, "Value": str(v)} for k, v in (tags or {}).items()]


def is_already_exists(exc: BaseException) -> bool:
    """True when a create call lost a race: the resource already exists."""
    if not isinstance(exc, ClientError):
        return False
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return error_code(exc) in ALREADY_EXISTS_CODES or (
        error_code(exc) == "ValidationException"
        and any(p in message for p in ("already exist", "must be unique")))


def describe_or_none(describe: Callable[..., dict], **kwargs: Any) -> dict | None:
    """``describe(**kwargs)``, or None when the resource does not exist."""
    try:
        return describe(**kwargs)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def definition_hash(definition: Any, length: int = 8) -> str:
    """A short stable hash of a JSON-able definition (used to name immutable resources)."""
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def delete_tolerant(kind: str, name: str, delete: Callable[..., Any], *, exists: Callable[[], bool],
                    gone: Callable[[BaseException], bool] = is_not_found, **kwargs: Any) -> Ensured:
    """``delete(**kwargs)`` when ``exists()``; ABSENT without a delete call when it does not, and when
    the delete call says it is already gone (``gone(error)``)."""
    if not exists():
        return Ensured(Action.ABSENT, kind, name)
    try:
        delete(**kwargs)
    except ClientError as exc:
        if gone(exc):
            return Ensured(Action.ABSENT, kind, name)
        raise
    log.info("deleted", kind=kind, name=name)
    return Ensured(Action.DELETED, kind, name)
