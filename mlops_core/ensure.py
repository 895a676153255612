"""What an ``ensure_*`` or ``delete_*`` call did, and the helpers every service module uses to be idempotent:
describe-or-None, "already exists" detection, tolerant deletes, and a retry while a new IAM role propagates."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from mlops_core.aws import error_code, is_not_found
from mlops_core.logs import get_logger

log = get_logger("ensure")


class Action(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    ABSENT = "absent"


@dataclass(frozen=True)
class Ensured:
    """The result of ensure/delete: the action taken, the resource's kind and name, its ARN if known."""

    action: Action
    kind: str
    name: str
    arn: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.action in (Action.CREATED, Action.UPDATED, Action.DELETED)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action.value}"


def contains(current: Any, desired: Any) -> bool:
    """True when ``current`` (what AWS describes) has everything ``desired`` sets.

    Dicts compare key by key on the desired keys only (AWS adds defaults and read-only fields), lists
    element by element with equal lengths, anything else by equality. ensure_* functions call update
    only when this is False.
    """
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(k in current and contains(current[k], v)
                                                 for k, v in desired.items())
    if isinstance(desired, (list, tuple)):
        return (isinstance(current, (list, tuple)) and len(current) == len(desired)
                and all(contains(c, d) for c, d in zip(current, desired, strict=True)))
    return current == desired


def normalize_document(document: Any) -> Any:
    """A JSON document (IAM/S3/ECR policy) as a comparable value: strings (even URL-encoded) are parsed."""
    from urllib.parse import unquote

    if isinstance(document, (bytes, bytearray)):
        document = document.decode()
    if isinstance(document, str):
        text = document.strip()
        document = json.loads(text if text.startswith(("{", "[")) else unquote(text))
    return json.loads(json.dumps(document, sort_keys=True))


def result(kind: str, name: str, *, created: bool = False, changes: list[str] | None = None,
           arn: str | None = None, dry_run: bool = False, **details: Any) -> Ensured:
    """The Ensured of an ensure_* call: created, updated (``changes`` lists what) or unchanged."""
    action = Action.CREATED if created else Action.UPDATED if changes else Action.UNCHANGED
    if changes:
        details["changes"] = changes
    if dry_run:
        details["dry_run"] = True
    return Ensured(action, kind, name, arn, details)


def tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``."""
    return [{"Key": k, "Value": str(v)} for k, v in (tags or {}).items()]


ALREADY_EXISTS_CODES = frozenset({"ConflictException", "ResourceInUse", "ResourceInUseException",
                                  "AlreadyExistsException"})


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


def delete_tolerant(kind: str, name: str, delete: Callable[..., Any], *, exists: Callable[[], bool] | None = None,
                    gone: Callable[[BaseException], bool] = is_not_found, **kwargs: Any) -> Ensured:
    """``delete(**kwargs)``: DELETED, or ABSENT when the delete call says it is already gone (``gone(error)``).

    With ``exists``, ABSENT without any delete call when ``exists()`` is False."""
    if exists is not None and not exists():
        return Ensured(Action.ABSENT, kind, name)
    try:
        delete(**kwargs)
    except ClientError as exc:
        if gone(exc):
            return Ensured(Action.ABSENT, kind, name)
        raise
    log.info("deleted", kind=kind, name=name)
    return Ensured(Action.DELETED, kind, name)


T = TypeVar("T")

ROLE_NOT_READY_CODES = ("InvalidInputException", "InvalidStructureException")  # CodeBuild, CodePipeline
# Step Functions: AccessDeniedException "Neither the global service principal states.amazonaws.com, nor the
# regional one is authorized to assume the provided role." (the caller's own denial says "to perform").
STATES_ROLE_NOT_READY = "authorized to assume the provided role"


def is_role_not_ready(exc: BaseException) -> bool:
    """A service's "cannot assume the role" answer (a new role), not the caller's own AccessDenied."""
    code, text = error_code(exc), str(exc)
    return ((code in ROLE_NOT_READY_CODES and "AssumeRole" in text)
            or (code == "AccessDeniedException" and STATES_ROLE_NOT_READY in text))


def retry_until_role_usable(call: Callable[[], T], *, timeout: float = 90.0,
                            sleep: Callable[[float], Any] = time.sleep) -> T:
    """``call()``, retried while a service says it cannot assume a role yet (new IAM roles take seconds)."""
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

    return Retrying(retry=retry_if_exception(is_role_not_ready), stop=stop_after_delay(timeout),
                    wait=wait_exponential(multiplier=1, max=10), sleep=sleep, reraise=True)(call)
