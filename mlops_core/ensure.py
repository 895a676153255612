"""What an ``ensure_*`` or ``delete_*`` call did, so callers (and --dry-run plans) can report it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


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
    import json
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
