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
